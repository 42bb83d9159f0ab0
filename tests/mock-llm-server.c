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
 *   patch          X-Mock-Arg "EVENT PATH=JSON": the fixture with one member
 *                  of one event (from 0) changed, or removed without =JSON;
 *                  PATH is names and array indices joined by dots
 *   redirect       X-Mock-Arg "STATUS[,LOCATION]": a 3xx redirect
 *   encoded        X-Mock-Arg "ENCODING[,STATUS]": the fixture (or an error
 *                  for STATUS) with an unasked-for Content-Encoding
 *   big-headers    X-Mock-Arg "N[,single]": N more bytes of response
 *                  headers before the fixture, in 1 KiB lines or in one
 *   turns          X-Mock-Arg "FIXTURE,FIXTURE,...": the fixture of the
 *                  request's turn, 1 plus the assistant messages it holds
 *                  (an agent's tool call first, its answer once the tool
 *                  results are back)
 *
 * N is X-Mock-Arg (1 when absent for stall, disconnect and error-event).
 *
 * Every connection gets its own thread and blocking I/O, which keeps the
 * fault scenarios (sleeping, stalling, hanging up) straight-line code.
 * Each response ends the connection ("Connection: close"); streams use
 * chunked transfer encoding, as the real APIs do, so that a connection
 * closed mid-stream is visible to the client as a truncated body. */
#include "config.h"

#include "mock-llm-server.h"

#include <glib-unix.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

/* Requests larger than this are refused (413) rather than buffered. */
#define MAX_BODY_SIZE (64 * 1024 * 1024)
#define MAX_HEADERS 200
/* How long an idle client may hold a connection before it is dropped. */
#define READ_TIMEOUT_S 30

Server server;

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

const char *
request_header (Request    *request,
                const char *lower_name)
{
  return g_hash_table_lookup (request->headers, lower_name);
}

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
  gboolean logging;

  /* Under the lock: main() closes the log while connections may still be
   * answered (after --max-requests, or a signal). */
  g_mutex_lock (&server.lock);
  logging = server.log != NULL;
  g_mutex_unlock (&server.lock);
  if (!logging)
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
  if (server.log != NULL)
    {
      fprintf (server.log, "%s\n", line);
      fflush (server.log);
    }
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
      g_printerr ("mock-llm-server: malformed request line '%s'\n", request_line);
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
          g_printerr ("mock-llm-server: malformed header field '%s'\n", line);
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
      /* Said on stderr too: a test that sees a 400 it did not ask for
       * can then tell why. */
      g_printerr ("mock-llm-server: malformed Content-Length '%s'\n", header);
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
  ScenarioFunc func;
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
  context.body = json;
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
  func = find_scenario (scenario);
  if (func == NULL)
    {
      send_mock_error (exchange, "unknown X-Mock-Scenario '%s'", scenario);
      return;
    }
  func (exchange, &context);
}

static void
count_answered (void)
{
  if (server.max_requests > 0 && g_atomic_int_add (&server.n_answered, 1) + 1 == server.max_requests)
    g_main_loop_quit (server.loop);
}

/* A connection's own thread (started by on_incoming): answers it, then
 * drops the thread's reference. */
static gpointer
answer_connection (gpointer data)
{
  g_autoptr (GSocketConnection) connection = data;
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
  return NULL;
}

/* Every connection gets a thread of its own, started here rather than
 * taken from GThreadedSocketService's pool: the thread's creation orders
 * what the main thread made for the connection (the accepted socket, its
 * objects) before the thread's use of it, where the pool's queue inside
 * libgio orders it by locks that ThreadSanitizer cannot see. No limit:
 * stalled streams hold a thread until their client gives up, and must
 * not starve the other connections. */
static gboolean
on_incoming (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source_object,
             gpointer           user_data)
{
  /* The connection makes its streams on first use, and frees them on
   * whichever thread drops its last reference, maybe this one (the
   * service's). Made here, before the connection's thread exists, they
   * are ordered before that thread's use; made on that thread, nothing
   * TSan sees would order their free here after it. */
  g_io_stream_get_input_stream (G_IO_STREAM (connection));
  g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_thread_unref (g_thread_new ("mock-connection", answer_connection, g_object_ref (connection)));
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

  service = g_socket_service_new ();
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
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), NULL);
  g_socket_service_start (service);

  printf ("PORT %u\n", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  fflush (stdout);

  g_unix_signal_add (SIGTERM, on_quit_signal, NULL);
  g_unix_signal_add (SIGINT, on_quit_signal, NULL);
  g_main_loop_run (server.loop);

  /* Stopping the service does not wait for the connections it is still
   * answering: their threads may be logging a request. */
  g_socket_service_stop (service);
  g_mutex_lock (&server.lock);
  if (server.log != NULL)
    fclose (server.log);
  server.log = NULL;
  g_mutex_unlock (&server.lock);
  return 0;
}
