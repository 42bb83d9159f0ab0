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
};

ScenarioFunc
find_scenario (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (scenario_table); i++)
    if (g_str_equal (name, scenario_table[i].name))
      return scenario_table[i].func;
  return NULL;
}
