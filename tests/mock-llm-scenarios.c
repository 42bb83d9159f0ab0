/* mock-llm-server: the scenarios X-Mock-Scenario picks, each reading its
 * argument from X-Mock-Arg (see mock-llm-server.c for the list). */
#include "config.h"

#include "mock-llm-server.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Scenarios                                                          */
/* ------------------------------------------------------------------ */

gboolean
parse_uint (const char *text,
            guint64     min,
            guint64     max,
            guint64    *out)
{
  guint64 value = 0;

  /* Digits only, by hand. GLib 2.74's g_ascii_string_to_unsigned() can
   * refuse a plain "133" when threads make their first calls at once: one
   * waits for the C locale's one-time set-up, the futex wait leaves errno
   * set, and errno is what it checks. This server's threads serve requests
   * at once from the start, and a 400 to a good request fails a test that
   * did nothing wrong. (chime reads its configuration, and so makes its
   * first call, on one thread.) */
  if (text == NULL || *text == '\0')
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    {
      if (!g_ascii_isdigit (*p) || value > (G_MAXUINT64 - (guint64) (*p - '0')) / 10)
        return FALSE;
      value = value * 10 + (guint64) (*p - '0');
    }
  if (value < min || value > max)
    return FALSE;
  *out = value;
  return TRUE;
}

/* The count argument of stall, disconnect and error-event: 1 by default. */
static gboolean
parse_count (Exchange   *exchange,
             const char *arg,
             guint      *out)
{
  guint64 value = 1;

  if (arg != NULL && !parse_uint (arg, 0, G_MAXUINT, &value))
    {
      send_mock_error (exchange, "X-Mock-Arg must be a count, not '%s'", arg);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

static void
scenario_ok (Exchange              *exchange,
             const ScenarioContext *context)
{
  Replay plan = { context->fixture, G_MAXUINT, 0, FALSE, REPLAY_END_NORMAL };

  replay (exchange, &plan);
}

/* The model's turn a request asks for: 1 plus the assistant messages it
 * carries (both APIs send the conversation so far, so no state is kept
 * between requests, as with the fake model's scripted tool_calls). */
static guint
request_turn (json_t *body)
{
  json_t *messages = json_object_get (body, "messages");
  json_t *message;
  gsize i;
  guint turn = 1;

  json_array_foreach (messages, i, message)
    if (g_strcmp0 (json_string_value (json_object_get (message, "role")), "assistant") == 0)
      turn++;
  return turn;
}

/* X-Mock-Arg `FIXTURE,FIXTURE,...`: the fixture of the request's turn
 * (see request_turn), so that one set of headers plays a whole agent run:
 * a tool call first, the answer once the tool results are back. */
static void
scenario_turns (Exchange              *exchange,
                const ScenarioContext *context)
{
  g_auto (GStrv) fixtures = g_strsplit (context->arg != NULL ? context->arg : "", ",", -1);
  guint turn = request_turn (context->body);
  Replay plan = { NULL, G_MAXUINT, 0, FALSE, REPLAY_END_NORMAL };

  if (context->arg == NULL || context->arg[0] == '\0')
    {
      send_mock_error (exchange, "turns needs X-Mock-Arg: the fixtures of the turns, comma-separated");
      return;
    }
  if (turn > g_strv_length (fixtures))
    {
      send_mock_error (exchange, "the request is turn %u, but X-Mock-Arg '%s' names fixtures for %u",
                       turn, context->arg, g_strv_length (fixtures));
      return;
    }
  plan.fixture = g_strstrip (fixtures[turn - 1]);
  replay (exchange, &plan);
}

static void
scenario_status (Exchange              *exchange,
                 const ScenarioContext *context)
{
  guint64 status;

  if (!parse_uint (context->arg, 400, 599, &status))
    {
      send_mock_error (exchange, "X-Mock-Arg must be an error status (400-599), not '%s'",
                       context->arg ? context->arg : "");
      return;
    }
  send_error (exchange, (guint) status, NULL, NULL);
}

/* An HTTP-date (RFC 9110, IMF-fixdate) @seconds from now, built by hand
 * because strftime() names days and months in the current locale. */
static char *
http_date_from_now (guint64 seconds)
{
  static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
  static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) then = g_date_time_add_seconds (now, (gdouble) seconds);

  return g_strdup_printf ("%s, %02d %s %04d %02d:%02d:%02d GMT",
                          days[g_date_time_get_day_of_week (then) - 1],
                          g_date_time_get_day_of_month (then),
                          months[g_date_time_get_month (then) - 1],
                          g_date_time_get_year (then),
                          g_date_time_get_hour (then),
                          g_date_time_get_minute (then),
                          g_date_time_get_second (then));
}

/* X-Mock-Arg: comma-separated `key=value`: `s=N` (retry-after seconds),
 * `ms=N` (retry-after-ms), `date=N` (retry-after as an HTTP-date N seconds
 * ahead), `should-retry=true|false` (x-should-retry), `status=429|503|...`
 * (default 429). */
static void
scenario_retry_after (Exchange              *exchange,
                      const ScenarioContext *context)
{
  g_auto (GStrv) items = g_strsplit (context->arg ? context->arg : "", ",", -1);
  g_autoptr (GPtrArray) headers = g_ptr_array_new_with_free_func (g_free);
  guint64 status = 429;

  for (guint i = 0; items[i] != NULL; i++)
    {
      char *item = g_strstrip (items[i]);
      char *value = strchr (item, '=');
      guint64 number;

      if (*item == '\0')
        continue;
      if (value == NULL)
        {
          send_mock_error (exchange, "retry-after: '%s' is not key=value", item);
          return;
        }
      *value++ = '\0';
      if (g_str_equal (item, "should-retry") && (g_str_equal (value, "true") || g_str_equal (value, "false")))
        g_ptr_array_add (headers, g_strdup_printf ("x-should-retry: %s", value));
      else if (!parse_uint (value, 0, G_MAXUINT32, &number))
        {
          send_mock_error (exchange, "retry-after: bad value '%s' for '%s'", value, item);
          return;
        }
      else if (g_str_equal (item, "s"))
        g_ptr_array_add (headers, g_strdup_printf ("retry-after: %" G_GUINT64_FORMAT, number));
      else if (g_str_equal (item, "ms"))
        g_ptr_array_add (headers, g_strdup_printf ("retry-after-ms: %" G_GUINT64_FORMAT, number));
      else if (g_str_equal (item, "date"))
        {
          g_autofree char *date = http_date_from_now (number);

          g_ptr_array_add (headers, g_strdup_printf ("retry-after: %s", date));
        }
      else if (g_str_equal (item, "status") && number >= 400 && number <= 599)
        status = number;
      else
        {
          send_mock_error (exchange, "retry-after: unknown key '%s'", item);
          return;
        }
    }
  g_ptr_array_add (headers, NULL);
  send_error (exchange, (guint) status, NULL, (const char *const *) headers->pdata);
}

/* X-Mock-Arg `K,S[,MS]`: the first K requests carrying the same
 * X-Mock-Key get status S (asking for a retry after MS ms when given),
 * later ones the fixture. */
static void
scenario_flaky (Exchange              *exchange,
                const ScenarioContext *context)
{
  g_auto (GStrv) parts = g_strsplit (context->arg ? context->arg : "", ",", 3);
  const char *key = request_header (exchange->request, "x-mock-key");
  g_autofree char *retry_after = NULL;
  const char *headers[2] = { NULL, NULL };
  guint64 failures, status, delay_ms;
  guint count;

  if (g_strv_length (parts) < 2 ||
      !parse_uint (g_strstrip (parts[0]), 0, G_MAXUINT, &failures) ||
      !parse_uint (g_strstrip (parts[1]), 400, 599, &status) ||
      (parts[2] != NULL && !parse_uint (g_strstrip (parts[2]), 0, G_MAXUINT32, &delay_ms)))
    {
      send_mock_error (exchange, "flaky: X-Mock-Arg must be 'K,S' or 'K,S,MS', not '%s'",
                       context->arg ? context->arg : "");
      return;
    }
  if (parts[2] != NULL)
    headers[0] = retry_after = g_strdup_printf ("retry-after-ms: %" G_GUINT64_FORMAT, delay_ms);

  g_mutex_lock (&server.lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (server.flaky_counts, key ? key : "")) + 1;
  g_hash_table_insert (server.flaky_counts, g_strdup (key ? key : ""), GUINT_TO_POINTER (count));
  g_mutex_unlock (&server.lock);

  if (count <= failures)
    send_error (exchange, (guint) status, NULL, headers);
  else
    scenario_ok (exchange, context);
}

static void
scenario_slow (Exchange              *exchange,
               const ScenarioContext *context)
{
  guint64 pause_ms;
  Replay plan = { context->fixture, G_MAXUINT, 0, FALSE, REPLAY_END_NORMAL };

  if (!parse_uint (context->arg, 0, 600000, &pause_ms))
    {
      send_mock_error (exchange, "slow: X-Mock-Arg must be milliseconds");
      return;
    }
  plan.pause_ms = (guint) pause_ms;
  replay (exchange, &plan);
}

static void
scenario_stall (Exchange              *exchange,
                const ScenarioContext *context)
{
  Replay plan = { context->fixture, 0, 0, FALSE, REPLAY_END_STALL };

  if (parse_count (exchange, context->arg, &plan.limit))
    replay (exchange, &plan);
}

static void
scenario_disconnect (Exchange              *exchange,
                     const ScenarioContext *context)
{
  Replay plan = { context->fixture, 0, 0, FALSE, REPLAY_END_DISCONNECT };

  if (parse_count (exchange, context->arg, &plan.limit))
    replay (exchange, &plan);
}

static void
scenario_no_terminator (Exchange              *exchange,
                        const ScenarioContext *context)
{
  Replay plan = { context->fixture, G_MAXUINT, 0, TRUE, REPLAY_END_NORMAL };

  replay (exchange, &plan);
}

static void
scenario_error_event (Exchange              *exchange,
                      const ScenarioContext *context)
{
  /* The terminator is dropped: a stream that failed does not also end
   * well. */
  Replay plan = { context->fixture, 0, 0, TRUE, REPLAY_END_ERROR_EVENT };

  if (parse_count (exchange, context->arg, &plan.limit))
    replay (exchange, &plan);
}

static void
scenario_delay (Exchange              *exchange,
                const ScenarioContext *context)
{
  guint64 delay_ms;

  if (!parse_uint (context->arg, 0, 600000, &delay_ms))
    {
      send_mock_error (exchange, "delay: X-Mock-Arg must be milliseconds");
      return;
    }
  g_usleep ((gulong) delay_ms * 1000);
  scenario_ok (exchange, context);
}

static void
scenario_huge (Exchange              *exchange,
               const ScenarioContext *context)
{
  guint64 n;

  if (!parse_uint (context->arg, 0, G_MAXUINT32 - 1, &n))
    {
      send_mock_error (exchange, "huge: X-Mock-Arg must be a number of chunks");
      return;
    }
  send_huge (exchange, (guint) n);
}

/* X-Mock-Arg `EVENT PATH=JSON`: the fixture with the member PATH (names
 * and array indices joined by dots) of event EVENT (from 0) set to JSON;
 * `EVENT PATH` alone removes the member. */
static void
scenario_patch (Exchange              *exchange,
                const ScenarioContext *context)
{
  const char *arg = context->arg != NULL ? context->arg : "";
  const char *space = strchr (arg, ' ');
  const char *equals = space != NULL ? strchr (space, '=') : NULL;
  g_autofree char *event = space != NULL ? g_strndup (arg, space - arg) : NULL;
  g_autofree char *path = space != NULL ? g_strndup (space + 1, equals != NULL ? (gsize) (equals - space - 1)
                                                                                : strlen (space + 1)) : NULL;
  g_auto (GStrv) names = path != NULL ? g_strsplit (path, ".", -1) : NULL;
  g_autoptr (json_t) value = equals != NULL ? json_loads (equals + 1, JSON_DECODE_ANY, NULL) : NULL;
  guint64 index;
  Patch patch;
  Replay plan = { context->fixture, G_MAXUINT, 0, FALSE, REPLAY_END_NORMAL, &patch, NULL };

  if (event == NULL || !parse_uint (event, 0, G_MAXUINT32, &index) || path[0] == '\0' ||
      (equals != NULL && value == NULL))
    {
      send_mock_error (exchange, "patch: X-Mock-Arg must be 'EVENT PATH=JSON' or 'EVENT PATH', not '%s'", arg);
      return;
    }
  patch = (Patch) { (guint) index, names, value };
  replay (exchange, &plan);
}

/* X-Mock-Arg `STATUS[,LOCATION]`: a redirect (301, 302, 303, 307 or 308)
 * to LOCATION, without a Location header when none is given, with the
 * small HTML body web servers send. */
static void
scenario_redirect (Exchange              *exchange,
                   const ScenarioContext *context)
{
  g_auto (GStrv) parts = g_strsplit (context->arg ? context->arg : "", ",", 2);
  g_autofree char *location = NULL;
  g_autofree char *body = NULL;
  const char *headers[2] = { NULL, NULL };
  guint64 status;

  if (!parse_uint (parts[0], 301, 308, &status) || (status > 303 && status < 307))
    {
      send_mock_error (exchange, "redirect: X-Mock-Arg must be 'STATUS[,LOCATION]' with a redirect status, "
                       "not '%s'", context->arg ? context->arg : "");
      return;
    }
  if (parts[1] != NULL)
    headers[0] = location = g_strdup_printf ("Location: %s", parts[1]);
  body = g_strdup_printf ("<html>\r\n<head><title>%u</title></head>\r\n<body>\r\n<center><h1>%u</h1></center>\r\n"
                          "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                          (guint) status, (guint) status);
  send_complete (exchange, (guint) status, "text/html", body, headers);
}

/* @data compressed as Content-Encoding @encoding says, when it is gzip or
 * deflate; as it is otherwise. */
static GBytes *
encode (const char *encoding,
        const char *data,
        gsize       length)
{
  g_autoptr (GZlibCompressor) compressor = NULL;
  g_autoptr (GOutputStream) memory = NULL;
  g_autoptr (GOutputStream) out = NULL;

  if (g_strcmp0 (encoding, "gzip") != 0 && g_strcmp0 (encoding, "deflate") != 0)
    return g_bytes_new (data, length);
  compressor = g_zlib_compressor_new (g_str_equal (encoding, "gzip") ? G_ZLIB_COMPRESSOR_FORMAT_GZIP
                                                                     : G_ZLIB_COMPRESSOR_FORMAT_ZLIB, -1);
  memory = g_memory_output_stream_new_resizable ();
  out = g_converter_output_stream_new (memory, G_CONVERTER (compressor));
  g_output_stream_write_all (out, data, length, NULL, NULL, NULL);
  g_output_stream_close (out, NULL, NULL);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (memory));
}

/* X-Mock-Arg `ENCODING[,STATUS]`: the fixture (or the provider's error
 * for STATUS) with `Content-Encoding: ENCODING`, unasked; gzip and deflate
 * are really compressed, other encodings (br, zstd) only named. */
static void
scenario_encoded (Exchange              *exchange,
                  const ScenarioContext *context)
{
  g_auto (GStrv) parts = g_strsplit (context->arg ? context->arg : "", ",", 2);
  g_autofree char *header = g_strdup_printf ("Content-Encoding: %s", parts[0] ? parts[0] : "");
  const char *headers[] = { header, NULL };
  g_autoptr (GBytes) plain = NULL;
  g_autoptr (GBytes) body = NULL;
  guint64 status = 200;

  if (parts[0] == NULL || parts[0][0] == '\0' || (parts[1] != NULL && !parse_uint (parts[1], 400, 599, &status)))
    {
      send_mock_error (exchange, "encoded: X-Mock-Arg must be 'ENCODING[,STATUS]', not '%s'",
                       context->arg ? context->arg : "");
      return;
    }
  if (parts[1] != NULL)
    {
      char *text = error_body (exchange->provider, (guint) status, NULL);

      plain = g_bytes_new_take (text, strlen (text));
    }
  else if ((plain = load_fixture_or_answer (exchange, context->fixture)) == NULL)
    return;
  body = encode (parts[0], g_bytes_get_data (plain, NULL), g_bytes_get_size (plain));
  send_head (exchange, (guint) status, parts[1] != NULL ? "application/json" : "text/event-stream; charset=utf-8",
             (gssize) g_bytes_get_size (body), headers);
  send_piece (exchange, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* X-Mock-Arg `N[,single]`: the fixture after N more bytes of response
 * headers, in lines of 1 KiB or, with `single`, in one line. */
static void
scenario_big_headers (Exchange              *exchange,
                      const ScenarioContext *context)
{
  g_auto (GStrv) parts = g_strsplit (context->arg ? context->arg : "", ",", 2);
  /* Plain arrays and strings, not GPtrArray and GString: their structs
   * come from GSlice, whose reuse across threads ThreadSanitizer cannot
   * follow (GLib is not instrumented), and this scenario runs on many
   * connection threads at once. */
  g_auto (GStrv) headers = NULL;
  guint n_headers = 0;
  gboolean single = parts[0] != NULL && g_strcmp0 (parts[1], "single") == 0;
  gsize line_size = single ? G_MAXSIZE : 1024;
  Replay plan = { context->fixture, G_MAXUINT, 0, FALSE, REPLAY_END_NORMAL, NULL, NULL };
  guint64 size;

  if (!parse_uint (parts[0], 64, 64 * 1024 * 1024, &size) || (parts[1] != NULL && !single))
    {
      send_mock_error (exchange, "big-headers: X-Mock-Arg must be 'N[,single]' with N from 64, not '%s'",
                       context->arg ? context->arg : "");
      return;
    }
  /* Each line is "X-Mock-Padding-NNNNN: aaa…" and its CRLF; a last bit
   * too short for a line of its own goes to the one before. */
  headers = g_new0 (char *, (single ? 1 : size / 1024 + 1) + 1);
  for (gsize left = size; left > 0;)
    {
      gsize length = left - MIN (left, line_size) < 32 ? left : line_size;
      g_autofree char *name = g_strdup_printf ("X-Mock-Padding-%05u: ", n_headers);
      gsize name_length = strlen (name);
      gsize text_length = MAX (name_length, length >= 2 ? length - 2 : 0);
      char *line = g_malloc (text_length + 1);

      memcpy (line, name, name_length);
      memset (line + name_length, 'a', text_length - name_length);
      line[text_length] = '\0';
      headers[n_headers++] = line;
      left -= length;
    }
  plan.extra_headers = (const char *const *) headers;
  replay (exchange, &plan);
}

static const struct
{
  const char  *name;
  ScenarioFunc func;
} scenario_table[] = {
  { "ok", scenario_ok },
  { "status", scenario_status },
  { "retry-after", scenario_retry_after },
  { "flaky", scenario_flaky },
  { "slow", scenario_slow },
  { "stall", scenario_stall },
  { "disconnect", scenario_disconnect },
  { "no-terminator", scenario_no_terminator },
  { "error-event", scenario_error_event },
  { "delay", scenario_delay },
  { "huge", scenario_huge },
  { "patch", scenario_patch },
  { "redirect", scenario_redirect },
  { "encoded", scenario_encoded },
  { "big-headers", scenario_big_headers },
  { "turns", scenario_turns },
};

ScenarioFunc
find_scenario (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (scenario_table); i++)
    if (g_str_equal (name, scenario_table[i].name))
      return scenario_table[i].func;
  return NULL;
}
