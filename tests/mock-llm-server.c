/* mock-llm-server: a small HTTP/1.1 server that speaks the wire protocols
 * of the OpenAI Chat Completions and Anthropic Messages APIs, for tests
 * and benchmarks that need real sockets.
 *
 *   mock-llm-server [--fixture-dir DIR] [--log FILE] [--max-requests N] [--port N]
 *
 * It listens on 127.0.0.1 (an ephemeral port unless --port is given),
 * prints "PORT <n>" as its first line of output and serves until killed,
 * or until N requests have been answered. Recorded streams are replayed
 * byte for byte from the fixture directory. Each request picks its own
 * fault with the X-Mock-Scenario header (argument in X-Mock-Arg), so one
 * server can serve a whole test suite:
 *
 *   ok (default)   replay the fixture (X-Mock-Fixture, else the provider's
 *                  stream or, without "stream": true, its JSON reply)
 *   status         answer status X-Mock-Arg with the provider's error body
 *   retry-after    an error carrying retry headers; X-Mock-Arg is a list of
 *                  s=N, ms=N, date=N, should-retry=true|false, status=N
 *   flaky          X-Mock-Arg "K,S[,MS]": the first K requests with the same
 *                  X-Mock-Key get status S (with retry-after-ms: MS when
 *                  given), later ones the fixture
 *   slow           pause X-Mock-Arg ms between events
 *   stall          send the first N events, then nothing; the connection
 *                  stays open until the client gives up
 *   disconnect     send the first N events, then hang up mid-body
 *   no-terminator  everything but `data: [DONE]` / `message_stop`
 *   error-event    N events, then the provider's mid-stream error event
 *   delay          wait X-Mock-Arg ms, then as ok
 *   huge           N synthetic token events as fast as possible
 *
 * N is X-Mock-Arg (1 when absent for stall, disconnect and error-event).
 *
 * Every connection gets its own thread and blocking I/O, which keeps the
 * fault scenarios (sleeping, stalling, hanging up) straight-line code.
 * Each response ends the connection ("Connection: close"); streams use
 * chunked transfer encoding, as the real APIs do, so that a connection
 * closed mid-stream is visible to the client as a truncated body. */
#include "config.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

/* Requests larger than this are refused (413) rather than buffered. */
#define MAX_BODY_SIZE (64 * 1024 * 1024)
#define MAX_HEADERS 200
/* How long an idle client may hold a connection before it is dropped. */
#define READ_TIMEOUT_S 30
/* How long a stalled stream waits for the client to give up. */
#define STALL_TIMEOUT_S 600
/* `huge` streams are written in chunks of about this size. */
#define HUGE_BATCH_SIZE (64 * 1024)

typedef enum
{
  PROVIDER_NONE,
  PROVIDER_OPENAI,
  PROVIDER_ANTHROPIC,
} Provider;

typedef struct
{
  char       *fixture_dir;
  GMutex      lock;
  /* Both guarded by lock. */
  FILE       *log;
  GHashTable *flaky_counts;
  guint64     seq;
  gint        max_requests;
  gint        n_answered;
  GMainLoop  *loop;
} Server;

static Server server;

typedef struct
{
  guint64     seq;
  char       *method;
  char       *target;
  char       *path;
  char       *version;
  /* Lower-cased names in arrival order; repeated headers are joined with
   * ", " as HTTP allows. */
  GPtrArray  *header_names;
  GHashTable *headers;
  GBytes     *body;
} Request;

typedef struct
{
  GSocket           *socket;
  GDataInputStream  *in;
  GOutputStream     *out;
  Request           *request;
  Provider           provider;
  gboolean           chunked;
  /* FALSE once a write failed: the client has gone. */
  gboolean           alive;
} Exchange;

static void
request_free (Request *request)
{
  g_free (request->method);
  g_free (request->target);
  g_free (request->path);
  g_free (request->version);
  g_ptr_array_unref (request->header_names);
  g_hash_table_unref (request->headers);
  g_clear_pointer (&request->body, g_bytes_unref);
  g_free (request);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Request, request_free)

static const char *
request_header (Request    *request,
                const char *lower_name)
{
  return g_hash_table_lookup (request->headers, lower_name);
}

/* ------------------------------------------------------------------ */
/* Writing responses                                                  */
/* ------------------------------------------------------------------ */

static const char *
reason_phrase (guint status)
{
  switch (status)
    {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return status < 500 ? "Client Error" : "Server Error";
    }
}

static gboolean
write_vectors (Exchange      *exchange,
               GOutputVector *vectors,
               gsize          n_vectors)
{
  g_autoptr (GError) error = NULL;

  if (!exchange->alive)
    return FALSE;
  if (!g_output_stream_writev_all (exchange->out, vectors, n_vectors, NULL, NULL, &error))
    {
      /* The client hung up; that is its right, not our failure. */
      exchange->alive = FALSE;
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_bytes (Exchange   *exchange,
             const char *data,
             gsize       length)
{
  GOutputVector vector = { data, length };

  return write_vectors (exchange, &vector, 1);
}

/* Sends the status line and headers. @content_length < 0 means a chunked
 * body. @extra_headers holds complete "Name: value" lines. */
static void
send_head (Exchange          *exchange,
           guint              status,
           const char        *content_type,
           gssize             content_length,
           const char *const *extra_headers)
{
  g_autoptr (GString) head = g_string_new (NULL);

  g_string_append_printf (head, "HTTP/1.1 %u %s\r\n", status, reason_phrase (status));
  g_string_append_printf (head, "Content-Type: %s\r\n", content_type);
  if (content_length >= 0)
    g_string_append_printf (head, "Content-Length: %" G_GSSIZE_FORMAT "\r\n", content_length);
  else
    g_string_append (head, "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n");
  g_string_append (head, "Connection: close\r\n");
  /* Each provider names its request id header differently. */
  if (exchange->provider == PROVIDER_ANTHROPIC)
    g_string_append_printf (head, "request-id: req_mock_%" G_GUINT64_FORMAT "\r\n", exchange->request->seq);
  else
    g_string_append_printf (head, "x-request-id: req_mock_%" G_GUINT64_FORMAT "\r\n", exchange->request->seq);
  for (guint i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
    g_string_append_printf (head, "%s\r\n", extra_headers[i]);
  g_string_append (head, "\r\n");

  exchange->chunked = content_length < 0;
  write_bytes (exchange, head->str, head->len);
}

/* Sends part of the body: one HTTP chunk when the body is chunked. */
static gboolean
send_piece (Exchange   *exchange,
            const char *data,
            gsize       length)
{
  char size_line[32];
  GOutputVector vectors[3];

  if (length == 0)
    return exchange->alive;
  if (!exchange->chunked)
    return write_bytes (exchange, data, length);

  g_snprintf (size_line, sizeof size_line, "%" G_GSIZE_MODIFIER "x\r\n", length);
  vectors[0] = (GOutputVector) { size_line, strlen (size_line) };
  vectors[1] = (GOutputVector) { data, length };
  vectors[2] = (GOutputVector) { "\r\n", 2 };
  return write_vectors (exchange, vectors, G_N_ELEMENTS (vectors));
}

static void
send_end (Exchange *exchange)
{
  if (exchange->chunked)
    write_bytes (exchange, "0\r\n\r\n", 5);
}

static void
send_complete (Exchange          *exchange,
               guint              status,
               const char        *content_type,
               const char        *body,
               const char *const *extra_headers)
{
  gsize length = strlen (body);

  send_head (exchange, status, content_type, (gssize) length, extra_headers);
  send_piece (exchange, body, length);
}

static char *
json_to_text (json_t *json)
{
  char *dumped = json_dumps (json, JSON_COMPACT | JSON_PRESERVE_ORDER);
  char *text = g_strdup (dumped);

  free (dumped);
  return text;
}

/* ------------------------------------------------------------------ */
/* Provider-shaped errors                                             */
/* ------------------------------------------------------------------ */

typedef struct
{
  guint       status;
  const char *type;
  const char *code;
  const char *message;
} ErrorShape;

/* OpenAI: {"error":{"message","type","param","code"}}. Messages follow the
 * ones observed from the real API where the reference quotes them. */
static const ErrorShape openai_errors[] = {
  { 400, "invalid_request_error", NULL, "We could not parse the JSON body of your request." },
  { 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided." },
  { 403, "invalid_request_error", "unsupported_country_region_territory",
    "Country, region, or territory not supported" },
  { 404, "invalid_request_error", "model_not_found",
    "The model does not exist or you do not have access to it." },
  { 429, "requests", "rate_limit_exceeded",
    "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1." },
  { 500, "server_error", NULL,
    "The server had an error while processing your request. Sorry about that!" },
  { 503, "server_error", NULL, "The server is overloaded or not ready yet." },
};

/* Anthropic: {"type":"error","error":{"type","message"}}, one error type per
 * status as listed in the API's errors page; other 4xx statuses use
 * invalid_request_error, other 5xx api_error. */
static const ErrorShape anthropic_errors[] = {
  { 400, "invalid_request_error", NULL, "Invalid request." },
  { 401, "authentication_error", NULL, "invalid x-api-key" },
  { 402, "billing_error", NULL, "Your credit balance is too low to access the Anthropic API." },
  { 403, "permission_error", NULL, "Your API key does not have permission to use the specified resource." },
  { 404, "not_found_error", NULL, "Not found." },
  { 413, "request_too_large", NULL, "Request exceeds the maximum allowed number of bytes." },
  { 429, "rate_limit_error", NULL, "Number of requests has exceeded your rate limit." },
  { 500, "api_error", NULL, "Internal server error" },
  { 504, "timeout_error", NULL, "Request timed out." },
  { 529, "overloaded_error", NULL, "Overloaded" },
};

static ErrorShape
find_error_shape (Provider provider,
                  guint    status)
{
  const ErrorShape *table = provider == PROVIDER_ANTHROPIC ? anthropic_errors : openai_errors;
  gsize n = provider == PROVIDER_ANTHROPIC ? G_N_ELEMENTS (anthropic_errors) : G_N_ELEMENTS (openai_errors);
  ErrorShape shape = { status, NULL, NULL, reason_phrase (status) };

  for (gsize i = 0; i < n; i++)
    if (table[i].status == status)
      return table[i];
  if (provider == PROVIDER_ANTHROPIC)
    shape.type = status < 500 ? "invalid_request_error" : "api_error";
  else
    shape.type = status < 500 ? "invalid_request_error" : "server_error";
  return shape;
}

/* The JSON body a provider answers @status with; @message overrides the
 * usual one when not NULL. */
static char *
error_body (Provider    provider,
            guint       status,
            const char *message)
{
  ErrorShape shape = find_error_shape (provider, status);
  g_autoptr (json_t) json = NULL;

  if (message == NULL)
    message = shape.message;
  if (provider == PROVIDER_ANTHROPIC)
    json = json_pack ("{s:s, s:{s:s, s:s}}", "type", "error",
                      "error", "type", shape.type, "message", message);
  else
    json = json_pack ("{s:{s:s, s:s, s:n, s:o}}", "error", "message", message, "type", shape.type,
                      "param", "code", shape.code ? json_string (shape.code) : json_null ());
  return json_to_text (json);
}

static void
send_error (Exchange          *exchange,
            guint              status,
            const char        *message,
            const char *const *extra_headers)
{
  g_autofree char *body = error_body (exchange->provider, status, message);

  send_complete (exchange, status, "application/json", body, extra_headers);
}

/* What OpenAI answers for a path it does not serve. */
static void
send_unknown_url (Exchange *exchange)
{
  g_autofree char *message = g_strdup_printf ("Invalid URL (%s %s)", exchange->request->method,
                                              exchange->request->path);
  g_autoptr (json_t) json = json_pack ("{s:{s:s, s:s, s:n, s:n}}", "error", "message", message,
                                       "type", "invalid_request_error", "param", "code");
  g_autofree char *body = json_to_text (json);

  send_complete (exchange, 404, "application/json", body, NULL);
}

/* A mistake in how a test drove the mock, as opposed to a provider error:
 * shaped unlike any provider's error so that it cannot pass for one. */
static void
send_mock_error (Exchange   *exchange,
                 const char *format,
                 ...) G_GNUC_PRINTF (2, 3);

static void
send_mock_error (Exchange   *exchange,
                 const char *format,
                 ...)
{
  g_autofree char *message = NULL;
  g_autofree char *body = NULL;
  g_autoptr (json_t) json = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  json = json_pack ("{s:s}", "mock_error", message);
  body = json_to_text (json);
  send_complete (exchange, 400, "application/json", body, NULL);
}

/* ------------------------------------------------------------------ */
/* Replaying streams                                                  */
/* ------------------------------------------------------------------ */

typedef struct
{
  const char *data;
  gsize       length;
} Piece;

/* Cuts an SSE stream into events, each ending just after its blank line
 * (any of LF, CR, CRLF); bytes after the last blank line form one more
 * piece. */
static GArray *
split_events (const char *text,
              gsize       length)
{
  GArray *pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
  gsize start = 0;
  gsize line_start = 0;
  gsize i = 0;

  while (i < length)
    {
      gboolean blank;

      if (text[i] != '\r' && text[i] != '\n')
        {
          i++;
          continue;
        }
      blank = i == line_start;
      i += text[i] == '\r' && i + 1 < length && text[i + 1] == '\n' ? 2 : 1;
      line_start = i;
      if (blank)
        {
          Piece piece = { text + start, i - start };

          g_array_append_val (pieces, piece);
          start = i;
        }
    }
  if (start < length)
    {
      Piece piece = { text + start, length - start };

      g_array_append_val (pieces, piece);
    }
  return pieces;
}

static gboolean
has_line (const Piece *piece,
          const char  *wanted)
{
  gsize wanted_len = strlen (wanted);
  const char *p = piece->data;
  const char *end = piece->data + piece->length;

  while (p < end)
    {
      const char *eol = p;

      while (eol < end && *eol != '\n' && *eol != '\r')
        eol++;
      if ((gsize) (eol - p) == wanted_len && memcmp (p, wanted, wanted_len) == 0)
        return TRUE;
      p = eol + 1;
    }
  return FALSE;
}

/* The event that ends a successful stream: `data: [DONE]` for OpenAI,
 * `event: message_stop` for Anthropic. */
static gboolean
is_terminator (const Piece *piece)
{
  return has_line (piece, "data: [DONE]") || has_line (piece, "event: message_stop");
}

typedef enum
{
  REPLAY_END_NORMAL,
  REPLAY_END_STALL,
  REPLAY_END_DISCONNECT,
  REPLAY_END_ERROR_EVENT,
} ReplayEnd;

typedef struct
{
  const char *fixture;
  /* Send at most this many events. */
  guint       limit;
  guint       pause_ms;
  gboolean    drop_terminator;
  ReplayEnd   end;
} Replay;

static gboolean
fixture_name_is_safe (const char *name)
{
  return name[0] != '\0' && name[0] != '.' && strchr (name, '/') == NULL && strchr (name, '\\') == NULL;
}

static GBytes *
load_fixture (const char *name,
              GError    **error)
{
  g_autofree char *path = g_build_filename (server.fixture_dir, name, NULL);
  char *contents;
  gsize length;

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;
  return g_bytes_new_take (contents, length);
}

/* Blocks until the client closes the connection (or a long timeout), for
 * streams that stop sending but keep the connection open. */
static void
wait_for_client_close (Exchange *exchange)
{
  char buffer[4096];

  g_socket_set_timeout (exchange->socket, STALL_TIMEOUT_S);
  while (g_input_stream_read (G_INPUT_STREAM (exchange->in), buffer, sizeof buffer, NULL, NULL) > 0)
    ;
}

static void
replay (Exchange     *exchange,
        const Replay *replay)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GBytes) error_event = NULL;
  g_autoptr (GArray) pieces = NULL;
  gboolean is_json = g_str_has_suffix (replay->fixture, ".json");
  const char *data;
  gsize length;
  guint sent = 0;

  if (!fixture_name_is_safe (replay->fixture))
    {
      send_mock_error (exchange, "bad fixture name '%s'", replay->fixture);
      return;
    }
  bytes = load_fixture (replay->fixture, &error);
  if (bytes == NULL)
    {
      send_mock_error (exchange, "%s", error->message);
      return;
    }
  if (replay->end == REPLAY_END_ERROR_EVENT)
    {
      const char *name = exchange->provider == PROVIDER_ANTHROPIC ?
                         "anthropic-error-event.sse" : "openai-error-event.sse";

      error_event = load_fixture (name, &error);
      if (error_event == NULL)
        {
          send_mock_error (exchange, "%s", error->message);
          return;
        }
    }
  if (is_json && (replay->drop_terminator || replay->end == REPLAY_END_ERROR_EVENT))
    {
      send_mock_error (exchange, "this scenario needs a stream, not '%s'", replay->fixture);
      return;
    }

  data = g_bytes_get_data (bytes, &length);
  if (is_json)
    {
      Piece whole = { data, length };

      pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
      g_array_append_val (pieces, whole);
      send_head (exchange, 200, "application/json", (gssize) length, NULL);
    }
  else
    {
      pieces = split_events (data, length);
      send_head (exchange, 200, "text/event-stream; charset=utf-8", -1, NULL);
    }

  for (guint i = 0; i < pieces->len && sent < replay->limit && exchange->alive; i++)
    {
      const Piece *piece = &g_array_index (pieces, Piece, i);

      if (replay->drop_terminator && is_terminator (piece))
        continue;
      if (sent > 0 && replay->pause_ms > 0)
        g_usleep ((gulong) replay->pause_ms * 1000);
      send_piece (exchange, piece->data, piece->length);
      sent++;
    }

  switch (replay->end)
    {
    case REPLAY_END_NORMAL:
      send_end (exchange);
      break;
    case REPLAY_END_STALL:
      wait_for_client_close (exchange);
      break;
    case REPLAY_END_DISCONNECT:
      /* No final chunk: the client sees the body cut short. */
      break;
    case REPLAY_END_ERROR_EVENT:
      data = g_bytes_get_data (error_event, &length);
      send_piece (exchange, data, length);
      send_end (exchange);
      break;
    }
}

/* `huge`: @n token chunks of synthetic but well-formed provider events,
 * written in large batches so that the server is never the bottleneck. */
static void
send_huge (Exchange *exchange,
           guint     n)
{
  g_autoptr (GString) batch = g_string_sized_new (HUGE_BATCH_SIZE + 1024);
  gboolean anthropic = exchange->provider == PROVIDER_ANTHROPIC;
  const char *openai_prefix =
    "data: {\"id\":\"chatcmpl-mock-huge\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[";

  send_head (exchange, 200, "text/event-stream; charset=utf-8", -1, NULL);
  if (anthropic)
    g_string_append (batch,
                     "event: message_start\n"
                     "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_huge\",\"type\":\"message\","
                     "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-mock\",\"stop_reason\":null,"
                     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
                     "event: content_block_start\n"
                     "data: {\"type\":\"content_block_start\",\"index\":0,"
                     "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
  else
    g_string_append_printf (batch, "%s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                            "\"logprobs\":null,\"finish_reason\":null}]}\n\n", openai_prefix);

  for (guint i = 0; i < n && exchange->alive; i++)
    {
      if (anthropic)
        g_string_append (batch,
                         "event: content_block_delta\n"
                         "data: {\"type\":\"content_block_delta\",\"index\":0,"
                         "\"delta\":{\"type\":\"text_delta\",\"text\":\" tok\"}}\n\n");
      else
        g_string_append_printf (batch, "%s{\"index\":0,\"delta\":{\"content\":\" tok\"},"
                                "\"logprobs\":null,\"finish_reason\":null}]}\n\n", openai_prefix);
      if (batch->len >= HUGE_BATCH_SIZE)
        {
          send_piece (exchange, batch->str, batch->len);
          g_string_truncate (batch, 0);
        }
    }

  if (anthropic)
    g_string_append_printf (batch,
                            "event: content_block_stop\n"
                            "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                            "event: message_delta\n"
                            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                            "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%u}}\n\n"
                            "event: message_stop\n"
                            "data: {\"type\":\"message_stop\"}\n\n", n);
  else
    g_string_append_printf (batch,
                            "%s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
                            "%s],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":%u,\"total_tokens\":%u}}\n\n"
                            "data: [DONE]\n\n", openai_prefix, openai_prefix, n, n + 1);
  send_piece (exchange, batch->str, batch->len);
  send_end (exchange);
}

/* ------------------------------------------------------------------ */
/* Scenarios                                                          */
/* ------------------------------------------------------------------ */

typedef struct
{
  const char *fixture;
  const char *arg;
} ScenarioContext;

static gboolean
parse_uint (const char *text,
            guint64     min,
            guint64     max,
            guint64    *out)
{
  return text != NULL && g_ascii_string_to_unsigned (text, 10, min, max, out, NULL);
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

typedef void (*ScenarioFunc) (Exchange              *exchange,
                              const ScenarioContext *context);

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

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

static void
log_request (Request *request)
{
  g_autoptr (json_t) entry = NULL;
  json_t *headers = json_object ();
  json_t *body;
  g_autofree char *line = NULL;
  gsize body_len;
  const char *body_data = g_bytes_get_data (request->body, &body_len);

  if (server.log == NULL)
    {
      json_decref (headers);
      return;
    }

  for (guint i = 0; i < request->header_names->len; i++)
    {
      const char *name = g_ptr_array_index (request->header_names, i);

      json_object_set_new (headers, name, json_string (request_header (request, name)));
    }
  /* JSON strings must be UTF-8; other bodies are logged in base64. */
  body = json_stringn (body_data ? body_data : "", body_len);
  entry = json_pack ("{s:I, s:s, s:s, s:s, s:o}", "seq", (json_int_t) request->seq,
                     "method", request->method, "path", request->target,
                     "version", request->version, "headers", headers);
  if (body != NULL)
    json_object_set_new (entry, "body", body);
  else
    {
      g_autofree char *encoded = g_base64_encode ((const guchar *) body_data, body_len);

      json_object_set_new (entry, "body_base64", json_string (encoded));
    }
  line = json_to_text (entry);

  g_mutex_lock (&server.lock);
  fprintf (server.log, "%s\n", line);
  fflush (server.log);
  g_mutex_unlock (&server.lock);
}

static gboolean
is_token_char (char c)
{
  return g_ascii_isalnum (c) || strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

static gboolean
add_header_line (Request *request,
                 char    *line)
{
  char *colon = strchr (line, ':');
  char *value;
  const char *previous;
  g_autofree char *name = NULL;

  if (colon == NULL || colon == line)
    return FALSE;
  for (char *p = line; p < colon; p++)
    if (!is_token_char (*p))
      return FALSE;
  name = g_ascii_strdown (line, colon - line);
  value = g_strstrip (colon + 1);
  previous = g_hash_table_lookup (request->headers, name);
  if (previous != NULL)
    {
      g_hash_table_insert (request->headers, g_strdup (name), g_strdup_printf ("%s, %s", previous, value));
      return TRUE;
    }
  g_ptr_array_add (request->header_names, g_strdup (name));
  g_hash_table_insert (request->headers, g_steal_pointer (&name), g_strdup (value));
  return TRUE;
}

/* A line without its line end (CRLF, or a bare LF from lax clients). */
static char *
read_line (Exchange *exchange)
{
  gsize length;
  char *line = g_data_input_stream_read_line (exchange->in, &length, NULL, NULL);

  if (line != NULL && length > 0 && line[length - 1] == '\r')
    line[length - 1] = '\0';
  return line;
}

/* Reads one request. Returns NULL when the client went away or sent
 * something that is not HTTP; in the latter case a 400 has been sent. */
static Request *
read_request (Exchange *exchange)
{
  g_autoptr (Request) request = g_new0 (Request, 1);
  g_autofree char *request_line = NULL;
  g_auto (GStrv) parts = NULL;
  const char *header;
  guint64 content_length = 0;
  gsize got = 0;
  char *body;

  request->header_names = g_ptr_array_new_with_free_func (g_free);
  request->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  /* send_head() reads the request id from it. */
  exchange->request = request;

  request_line = read_line (exchange);
  if (request_line == NULL)
    return NULL;
  parts = g_strsplit (request_line, " ", 3);
  if (g_strv_length (parts) != 3 || !g_str_has_prefix (parts[2], "HTTP/1."))
    {
      send_complete (exchange, 400, "text/plain", "malformed request line\n", NULL);
      return NULL;
    }
  request->method = g_strdup (parts[0]);
  request->target = g_strdup (parts[1]);
  request->path = g_strndup (parts[1], strcspn (parts[1], "?"));
  request->version = g_strdup (parts[2]);

  for (guint n = 0;; n++)
    {
      g_autofree char *line = read_line (exchange);

      if (line == NULL)
        return NULL;
      if (line[0] == '\0')
        break;
      if (n == MAX_HEADERS)
        {
          send_complete (exchange, 431, "text/plain", "too many header fields\n", NULL);
          return NULL;
        }
      if (!add_header_line (request, line))
        {
          send_complete (exchange, 400, "text/plain", "malformed header field\n", NULL);
          return NULL;
        }
    }

  if (request_header (request, "transfer-encoding") != NULL)
    {
      send_complete (exchange, 411, "text/plain", "send a Content-Length, not a chunked body\n", NULL);
      return NULL;
    }
  header = request_header (request, "content-length");
  if (header != NULL && !parse_uint (header, 0, G_MAXUINT64, &content_length))
    {
      send_complete (exchange, 400, "text/plain", "malformed Content-Length\n", NULL);
      return NULL;
    }
  if (content_length > MAX_BODY_SIZE)
    {
      send_complete (exchange, 413, "text/plain", "request body too large\n", NULL);
      return NULL;
    }
  /* Without this, curl waits a second before sending a large body. */
  header = request_header (request, "expect");
  if (header != NULL && g_ascii_strcasecmp (header, "100-continue") == 0)
    write_bytes (exchange, "HTTP/1.1 100 Continue\r\n\r\n", 25);

  body = g_malloc (content_length + 1);
  if (!g_input_stream_read_all (G_INPUT_STREAM (exchange->in), body, content_length, &got, NULL, NULL) ||
      got != content_length)
    {
      g_free (body);
      return NULL;
    }
  body[content_length] = '\0';
  request->body = g_bytes_new_take (body, content_length);

  g_mutex_lock (&server.lock);
  request->seq = ++server.seq;
  g_mutex_unlock (&server.lock);
  return g_steal_pointer (&request);
}

static gboolean
has_bearer_token (Request *request)
{
  const char *authorization = request_header (request, "authorization");

  return authorization != NULL &&
         g_ascii_strncasecmp (authorization, "Bearer ", 7) == 0 &&
         authorization[7 + strspn (authorization + 7, " ")] != '\0';
}

static gboolean
has_value (Request    *request,
           const char *name)
{
  const char *value = request_header (request, name);

  return value != NULL && value[0] != '\0';
}

/* The headers the real APIs insist on. Anthropic also takes a bearer
 * token in place of x-api-key. `X-Mock-Auth: none` plays a local server
 * that wants no key (llama.cpp, Ollama). */
static const char *
missing_auth (Exchange *exchange)
{
  Request *request = exchange->request;

  if (g_strcmp0 (request_header (request, "x-mock-auth"), "none") == 0 &&
      exchange->provider == PROVIDER_OPENAI)
    return NULL;
  if (exchange->provider == PROVIDER_OPENAI)
    return has_bearer_token (request) ? NULL :
           "You didn't provide an API key. You need to provide your API key in an Authorization "
           "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
  if (!has_value (request, "x-api-key") && !has_bearer_token (request))
    return "x-api-key header is required";
  if (!has_value (request, "anthropic-version"))
    return "anthropic-version: header is required";
  return NULL;
}

static void
answer (Exchange *exchange)
{
  Request *request = exchange->request;
  g_autoptr (json_t) json = NULL;
  const char *scenario = request_header (request, "x-mock-scenario");
  const char *missing;
  ScenarioContext context;
  gboolean stream;

  if (g_str_equal (request->path, "/v1/chat/completions"))
    exchange->provider = PROVIDER_OPENAI;
  else if (g_str_equal (request->path, "/v1/messages"))
    exchange->provider = PROVIDER_ANTHROPIC;
  else
    {
      send_unknown_url (exchange);
      return;
    }
  if (!g_str_equal (request->method, "POST"))
    {
      const char *allow[] = { "Allow: POST", NULL };

      send_error (exchange, 405, "Method not allowed; use POST.", allow);
      return;
    }

  missing = missing_auth (exchange);
  if (missing != NULL)
    {
      send_error (exchange, 401, missing, NULL);
      return;
    }

  json = json_loadb (g_bytes_get_data (request->body, NULL), g_bytes_get_size (request->body), 0, NULL);
  if (!json_is_object (json))
    {
      send_error (exchange, 400, NULL, NULL);
      return;
    }
  stream = json_is_true (json_object_get (json, "stream"));

  context.arg = request_header (request, "x-mock-arg");
  context.fixture = request_header (request, "x-mock-fixture");
  if (context.fixture == NULL)
    {
      if (exchange->provider == PROVIDER_OPENAI)
        context.fixture = stream ? "openai-stream.sse" : "openai-completion.json";
      else
        context.fixture = stream ? "anthropic-stream.sse" : "anthropic-message.json";
    }

  if (scenario == NULL)
    scenario = "ok";
  for (gsize i = 0; i < G_N_ELEMENTS (scenario_table); i++)
    if (g_str_equal (scenario, scenario_table[i].name))
      {
        scenario_table[i].func (exchange, &context);
        return;
      }
  send_mock_error (exchange, "unknown X-Mock-Scenario '%s'", scenario);
}

static void
count_answered (void)
{
  if (server.max_requests > 0 && g_atomic_int_add (&server.n_answered, 1) + 1 == server.max_requests)
    g_main_loop_quit (server.loop);
}

static gboolean
on_run (GThreadedSocketService *service,
        GSocketConnection      *connection,
        GObject                *source_object,
        gpointer                user_data)
{
  Exchange exchange = { 0 };
  g_autoptr (GDataInputStream) in = NULL;
  g_autoptr (Request) request = NULL;

  exchange.socket = g_socket_connection_get_socket (connection);
  exchange.out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  exchange.alive = TRUE;
  /* Events are small writes that must leave at once. */
  g_socket_set_option (exchange.socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_socket_set_timeout (exchange.socket, READ_TIMEOUT_S);

  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  g_data_input_stream_set_newline_type (in, G_DATA_STREAM_NEWLINE_TYPE_LF);
  exchange.in = in;

  request = read_request (&exchange);
  exchange.request = request;
  if (request != NULL)
    {
      log_request (request);
      answer (&exchange);
    }
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  if (request != NULL)
    count_answered ();
  return TRUE;
}

static gboolean
on_quit_signal (gpointer user_data)
{
  g_main_loop_quit (server.loop);
  return G_SOURCE_CONTINUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *fixture_dir = NULL;
  g_autofree char *log_path = NULL;
  gint max_requests = 0;
  gint port = 0;
  const GOptionEntry entries[] = {
    { "fixture-dir", 0, 0, G_OPTION_ARG_FILENAME, &fixture_dir, "Where the recorded streams are", "DIR" },
    { "log", 0, 0, G_OPTION_ARG_FILENAME, &log_path, "Append each request to FILE as a JSON line", "FILE" },
    { "max-requests", 0, 0, G_OPTION_ARG_INT, &max_requests, "Exit after answering N requests", "N" },
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "Listen on this port (default: any free one)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("- mock OpenAI/Anthropic HTTP server");
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketService) service = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocketAddress) bound = NULL;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("mock-llm-server: %s\n", error->message);
      return 2;
    }
  if (port < 0 || port > 65535 || max_requests < 0)
    {
      g_printerr ("mock-llm-server: --port and --max-requests must be in range\n");
      return 2;
    }

  g_mutex_init (&server.lock);
  server.fixture_dir = fixture_dir ? g_strdup (fixture_dir) : g_strdup (FIXTURE_DIR);
  server.flaky_counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  server.max_requests = max_requests;
  server.loop = g_main_loop_new (NULL, FALSE);
  if (log_path != NULL)
    {
      server.log = fopen (log_path, "a");
      if (server.log == NULL)
        {
          g_printerr ("mock-llm-server: cannot open %s: %s\n", log_path, g_strerror (errno));
          return 1;
        }
    }

  /* No thread limit: stalled streams hold a thread until their client
   * gives up, and must not starve the other connections. */
  service = g_threaded_socket_service_new (-1);
  /* The default backlog of 10 makes bursts of connections wait for SYN
   * retransmits; it must be set before the address is added. */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (service), 512);
  address = g_inet_socket_address_new (loopback, (guint16) port);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error))
    {
      g_printerr ("mock-llm-server: cannot listen: %s\n", error->message);
      return 1;
    }
  g_signal_connect (service, "run", G_CALLBACK (on_run), NULL);
  g_socket_service_start (service);

  printf ("PORT %u\n", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  fflush (stdout);

  g_unix_signal_add (SIGTERM, on_quit_signal, NULL);
  g_unix_signal_add (SIGINT, on_quit_signal, NULL);
  g_main_loop_run (server.loop);

  g_socket_service_stop (service);
  if (server.log != NULL)
    fclose (server.log);
  return 0;
}
