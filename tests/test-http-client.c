/* The libcurl multi client on the GLib main loop, against the mock LLM
 * server over real sockets: many transfers at once on one loop, bytes
 * intact through pauses and partial consumption, cancellation, the idle
 * and connect timeouts, connection failures, response headers and their
 * limit, and one client per main context. */
#include "test-helpers.h"

#include "http/http-client.h"

#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>

#define OPENAI_BODY "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]," \
                    "\"stream\":true,\"stream_options\":{\"include_usage\":true}}"

static GSubprocess *server;
static guint port;

static int
start_server (void **state)
{
  const char *args[] = { "--fixture-dir", FIXTURE_DIR, NULL };

  server = test_mock_server_start (MOCK_SERVER_PATH, args, &port);
  return 0;
}

static int
stop_server (void **state)
{
  test_mock_server_stop (&server);
  return 0;
}

/* ------------------------------------------------------------------ */
/* A transfer and what it received                                    */
/* ------------------------------------------------------------------ */

typedef enum {
  CONSUME_ALL,
  /* Take half of what is offered, pause, resume from an idle source. */
  CONSUME_HALF_AND_PAUSE,
  /* Pause at the first bytes and never resume. */
  PAUSE_FOREVER,
} Consumer;

typedef struct {
  Consumer           consumer;
  GMainContext      *context;
  ChimeHttpTransfer *transfer;
  GString           *body;
  guint              status;
  char              *request_id;
  char              *retry_after;
  GError            *error;
  gboolean           done;
  guint              pauses;
  guint              response_calls;
  gint64             started;
  gdouble            elapsed;
  guint             *remaining;
  GMainLoop         *loop;
} Fetch;

static void
fetch_free (Fetch *fetch)
{
  g_string_free (fetch->body, TRUE);
  g_free (fetch->request_id);
  g_free (fetch->retry_after);
  g_clear_error (&fetch->error);
  g_free (fetch);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fetch, fetch_free)

static void
on_response (ChimeHttpTransfer *transfer,
             guint              status,
             gpointer           user_data)
{
  Fetch *fetch = user_data;

  fetch->status = status;
  fetch->response_calls++;
  assert_int_equal (chime_http_transfer_get_status (transfer), status);
  fetch->request_id = g_strdup (chime_http_transfer_get_header (transfer, "X-Request-Id"));
  fetch->retry_after = g_strdup (chime_http_transfer_get_header (transfer, "retry-after"));
}

static gboolean
resume_later (gpointer data)
{
  Fetch *fetch = data;

  chime_http_transfer_resume (fetch->transfer);
  return G_SOURCE_REMOVE;
}

static gboolean
on_data (ChimeHttpTransfer *transfer,
         const char        *data,
         gsize              length,
         gsize             *consumed,
         gpointer           user_data)
{
  Fetch *fetch = user_data;
  gsize take = length;
  GSource *idle;

  switch (fetch->consumer)
    {
    case CONSUME_ALL:
      g_string_append_len (fetch->body, data, (gssize) length);
      *consumed = length;
      return TRUE;
    case PAUSE_FOREVER:
      *consumed = 0;
      fetch->pauses++;
      return FALSE;
    case CONSUME_HALF_AND_PAUSE:
    default:
      /* Half, but at least one byte, so that it moves on. */
      take = MAX (length / 2, 1);
      g_string_append_len (fetch->body, data, (gssize) take);
      *consumed = take;
      fetch->pauses++;
      idle = g_idle_source_new ();
      g_source_set_callback (idle, resume_later, fetch, NULL);
      g_source_attach (idle, fetch->context);
      g_source_unref (idle);
      return FALSE;
    }
}

static void
on_done (ChimeHttpTransfer *transfer,
         const GError      *error,
         gpointer           user_data)
{
  Fetch *fetch = user_data;

  assert_false (fetch->done);
  fetch->done = TRUE;
  fetch->error = error != NULL ? g_error_copy (error) : NULL;
  fetch->elapsed = (g_get_monotonic_time () - fetch->started) / (gdouble) G_USEC_PER_SEC;
  fetch->transfer = NULL;
  if (fetch->remaining != NULL && --*fetch->remaining == 0)
    g_main_loop_quit (fetch->loop);
}

static const ChimeHttpCallbacks callbacks = {
  .on_response = on_response,
  .on_data = on_data,
  .on_done = on_done,
};

typedef struct {
  const char *path;          /* default: the OpenAI endpoint */
  const char *url;           /* instead of the mock server */
  const char *scenario;
  const char *arg;
  Consumer    consumer;
  gdouble     idle_timeout_s;
  gdouble     connect_timeout_s;
} FetchSpec;

static Fetch *
fetch_start (const FetchSpec *spec,
             GMainContext    *context)
{
  Fetch *fetch = g_new0 (Fetch, 1);
  g_autofree char *url = spec->url != NULL ? g_strdup (spec->url)
                                           : g_strdup_printf ("http://127.0.0.1:%u%s", port,
                                                              spec->path ? spec->path : "/v1/chat/completions");
  g_autofree char *scenario = g_strdup_printf ("X-Mock-Scenario: %s", spec->scenario ? spec->scenario : "ok");
  g_autofree char *arg = g_strdup_printf ("X-Mock-Arg: %s", spec->arg ? spec->arg : "");
  const char *headers[] = { "Content-Type: application/json", "Authorization: Bearer sk-test",
                            "x-api-key: sk-test", "anthropic-version: 2023-06-01", scenario, arg, NULL };
  /* The body is body_length bytes, not a string: an exact-size copy
   * without a NUL, so that a transfer reading past it fails under
   * AddressSanitizer. */
  g_autofree char *body = g_memdup2 (OPENAI_BODY, strlen (OPENAI_BODY));
  ChimeHttpRequest request = {
    .url = url,
    .headers = headers,
    .body = body,
    .body_length = strlen (OPENAI_BODY),
    .connect_timeout_s = spec->connect_timeout_s > 0 ? spec->connect_timeout_s : 5,
    .idle_timeout_s = spec->idle_timeout_s > 0 ? spec->idle_timeout_s : 10,
  };

  fetch->consumer = spec->consumer;
  fetch->context = context;
  fetch->body = g_string_new (NULL);
  fetch->started = g_get_monotonic_time ();
  fetch->transfer = chime_http_transfer_start (context, &request, &callbacks, fetch);
  return fetch;
}

/* Runs @n fetches at once on @context until all are done. */
static void
wait_all (Fetch       **fetches,
          guint         n,
          GMainContext *context)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (context, FALSE);
  guint remaining = 0;

  for (guint i = 0; i < n; i++)
    if (!fetches[i]->done)
      {
        fetches[i]->remaining = &remaining;
        fetches[i]->loop = loop;
        remaining++;
      }
  if (remaining > 0)
    g_main_loop_run (loop);
}

static Fetch *
fetch (const FetchSpec *spec)
{
  Fetch *result = fetch_start (spec, NULL);

  wait_all (&result, 1, NULL);
  return result;
}

static char *
fixture (const char *name)
{
  g_autofree char *path = g_build_filename (FIXTURE_DIR, name, NULL);
  char *text = NULL;

  assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

#define N_CONCURRENT 64
#define DELAY_MS 500

/* CHIME_TEST_TIME_SCALE multiplies the time bound below: ThreadSanitizer
 * makes each transfer's work several times slower, and its pass of
 * .ci/run sets 4 (still far from the 64 delays of transfers one after
 * another; docs/reliability.md). */
static guint
time_scale (void)
{
  const char *text = g_getenv ("CHIME_TEST_TIME_SCALE");
  guint64 scale;

  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, 100, &scale, NULL))
    return 1;
  return (guint) scale;
}

static void
test_many_transfers_on_one_loop (void **state)
{
  g_autofree char *expected = fixture ("openai-stream.sse");
  Fetch *fetches[N_CONCURRENT];
  ChimeHttpStats stats;
  gint64 started = g_get_monotonic_time ();
  gdouble elapsed;

  chime_http_reset_stats ();
  for (guint i = 0; i < N_CONCURRENT; i++)
    fetches[i] = fetch_start (&(FetchSpec) { .scenario = "delay", .arg = G_STRINGIFY (DELAY_MS) }, NULL);
  wait_all (fetches, N_CONCURRENT, NULL);
  elapsed = (g_get_monotonic_time () - started) / (gdouble) G_USEC_PER_SEC;
  chime_http_get_stats (&stats);

  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      if (fetches[i]->error != NULL)
        fail_msg ("transfer %u: %s", i, fetches[i]->error->message);
      if (fetches[i]->status != 200)
        fail_msg ("transfer %u: HTTP %u: %s", i, fetches[i]->status, fetches[i]->body->str);
      assert_string_equal (fetches[i]->body->str, expected);
      fetch_free (fetches[i]);
    }
  /* All at once: about one delay, not 64 (nor 64 / a thread pool). */
  if (elapsed > 2.0 * time_scale () * DELAY_MS / 1000.0)
    fail_msg ("%d transfers of %d ms took %.3f s", N_CONCURRENT, DELAY_MS, elapsed);
  assert_true (elapsed >= DELAY_MS / 1000.0);
  assert_int_equal (stats.max_active, N_CONCURRENT);
  assert_int_equal (stats.finished, N_CONCURRENT);
  assert_int_equal (stats.active, 0);
  g_print ("# %d concurrent %d ms transfers on one loop: %.3f s\n", N_CONCURRENT, DELAY_MS, elapsed);
}

static void
test_pausing_keeps_every_byte (void **state)
{
  g_autofree char *expected = fixture ("anthropic-stream.sse");
  g_autoptr (Fetch) whole = fetch (&(FetchSpec) { .scenario = "huge", .arg = "3000" });
  g_autoptr (Fetch) halves = fetch (&(FetchSpec) { .scenario = "huge", .arg = "3000",
                                                   .consumer = CONSUME_HALF_AND_PAUSE });
  g_autoptr (Fetch) slow = fetch (&(FetchSpec) { .path = "/v1/messages", .scenario = "slow", .arg = "20",
                                                 .consumer = CONSUME_HALF_AND_PAUSE });
  ChimeHttpStats stats;

  chime_http_get_stats (&stats);
  assert_null (whole->error);
  assert_null (halves->error);
  assert_null (slow->error);
  /* Byte for byte, although every piece was taken in two goes or more. */
  assert_true (whole->body->len > 500 * 1000);
  assert_int_equal (halves->body->len, whole->body->len);
  assert_memory_equal (halves->body->str, whole->body->str, whole->body->len);
  assert_true (halves->pauses > 20);
  assert_string_equal (slow->body->str, expected);
  assert_true (slow->pauses >= 10);
  /* Never more than one write callback's worth kept aside. */
  assert_true (stats.max_pending <= 64 * 1024);
}

static void
test_cancel_paused_transfer (void **state)
{
  g_autoptr (Fetch) paused = fetch_start (&(FetchSpec) { .scenario = "huge", .arg = "100000",
                                                         .consumer = PAUSE_FOREVER, .idle_timeout_s = 0.2 }, NULL);
  g_autoptr (Fetch) waiting = fetch_start (&(FetchSpec) { .scenario = "delay", .arg = "5000" }, NULL);
  Fetch *both[] = { paused, waiting };

  /* A paused transfer is not idle: its timeout does not run. */
  while (paused->pauses == 0)
    g_main_context_iteration (NULL, TRUE);
  g_usleep (400 * 1000);
  for (guint i = 0; i < 5; i++)
    g_main_context_iteration (NULL, FALSE);
  assert_false (paused->done);
  chime_http_transfer_cancel (paused->transfer);
  chime_http_transfer_cancel (waiting->transfer);
  /* Callbacks never come from inside cancel(). */
  assert_false (paused->done);
  wait_all (both, 2, NULL);
  assert_true (g_error_matches (paused->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CANCELLED));
  assert_true (g_error_matches (waiting->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CANCELLED));
  assert_true (waiting->elapsed < 2.0);
}

static void
test_idle_timeout (void **state)
{
  g_autoptr (Fetch) stalled = fetch (&(FetchSpec) { .scenario = "stall", .arg = "2", .idle_timeout_s = 0.3 });
  g_autoptr (Fetch) silent = fetch (&(FetchSpec) { .scenario = "delay", .arg = "3000", .idle_timeout_s = 0.3 });

  assert_true (g_error_matches (stalled->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_IDLE_TIMEOUT));
  assert_string_equal (stalled->error->message, "nothing received for 0.3 s");
  assert_int_equal (stalled->status, 200);
  assert_true (stalled->body->len > 0);
  assert_true (stalled->elapsed >= 0.3 && stalled->elapsed < 2.0);
  /* Waiting for the response counts too. */
  assert_true (g_error_matches (silent->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_IDLE_TIMEOUT));
  assert_int_equal (silent->status, 0);
  assert_true (silent->elapsed < 2.0);
}

static void
test_connection_failures (void **state)
{
  g_autoptr (GSocket) listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                               G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autofree char *url = NULL;
  g_autoptr (Fetch) refused = NULL;
  g_autoptr (Fetch) unresolved = fetch (&(FetchSpec) { .url = "http://chime-test.invalid/v1" });
  g_autoptr (Fetch) bad = fetch (&(FetchSpec) { .url = "ftp://127.0.0.1/" });

  assert_true (g_socket_bind (listener, any, TRUE, NULL));
  bound = g_socket_get_local_address (listener, NULL);
  g_socket_close (listener, NULL);
  url = g_strdup_printf ("http://127.0.0.1:%u/", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  refused = fetch (&(FetchSpec) { .url = url });

  assert_true (g_error_matches (refused->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CONNECT));
  assert_true (g_error_matches (unresolved->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CONNECT));
  assert_string_contains (unresolved->error->message, "chime-test.invalid");
  assert_true (g_error_matches (bad->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_INVALID));
  assert_int_equal (refused->response_calls, 0);
}

/* A listener whose accept queue is full and never drained: the SYN of
 * the next connection goes unanswered, as with an unreachable host. */
static void
test_connect_timeout (void **state)
{
  int listener = socket (AF_INET, SOCK_STREAM, 0);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GPtrArray) fillers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *url = NULL;
  g_autoptr (Fetch) hung = NULL;

  socket = g_socket_new_from_fd (listener, NULL);
  assert_non_null (socket);
  assert_true (g_socket_bind (socket, any, TRUE, NULL));
  g_socket_set_listen_backlog (socket, 0);
  assert_true (g_socket_listen (socket, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  /* Fill the queue: connections that complete but are never accepted. */
  for (guint i = 0; i < 4; i++)
    {
      GSocket *filler = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

      g_socket_set_blocking (filler, FALSE);
      g_socket_connect (filler, bound, NULL, NULL);
      g_ptr_array_add (fillers, filler);
    }
  g_usleep (100 * 1000);
  url = g_strdup_printf ("http://127.0.0.1:%u/", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  hung = fetch (&(FetchSpec) { .url = url, .connect_timeout_s = 0.3, .idle_timeout_s = 10 });

  if (hung->error != NULL && hung->error->code == CHIME_HTTP_ERROR_IDLE_TIMEOUT)
    fail_msg ("the idle timeout fired first");
  if (!g_error_matches (hung->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CONNECT_TIMEOUT))
    {
      /* Some kernels answer a full queue with a reset: nothing to time. */
      if (hung->error != NULL && hung->error->code == CHIME_HTTP_ERROR_CONNECT)
        skip ();
      fail_msg ("expected a connect timeout, got %s", hung->error ? hung->error->message : "success");
    }
  assert_true (hung->elapsed >= 0.29 && hung->elapsed < 3.0);
}

static void
test_status_and_headers (void **state)
{
  g_autoptr (Fetch) ok = fetch (&(FetchSpec) { NULL });
  g_autoptr (Fetch) limited = fetch (&(FetchSpec) { .scenario = "retry-after", .arg = "s=7" });

  assert_null (ok->error);
  assert_int_equal (ok->status, 200);
  assert_int_equal (ok->response_calls, 1);
  assert_true (g_str_has_prefix (ok->request_id, "req_mock_"));
  /* An error status is still a completed transfer; its body arrives. */
  assert_null (limited->error);
  assert_int_equal (limited->status, 429);
  assert_string_equal (limited->retry_after, "7");
  assert_string_contains (limited->body->str, "rate_limit_exceeded");
}

/* Response headers are taken up to CHIME_HTTP_MAX_HEADER_SIZE: beyond,
 * the transfer fails with an error that names the limit and the size,
 * before any body; also for one line over libcurl's own limit, which
 * libcurl reports as "Out of memory". */
static void
test_header_limit (void **state)
{
  g_autoptr (Fetch) under = fetch (&(FetchSpec) { .scenario = "big-headers", .arg = "64000" });
  g_autoptr (Fetch) many = fetch (&(FetchSpec) { .scenario = "big-headers", .arg = "70000" });
  g_autoptr (Fetch) single = fetch (&(FetchSpec) { .scenario = "big-headers", .arg = "200000,single" });
  g_autofree char *expected = fixture ("openai-stream.sse");
  g_autoptr (GRegex) regex = g_regex_new ("^the response headers exceed the HTTP client's limit of 65536 bytes "
                                          "\\(CHIME_HTTP_MAX_HEADER_SIZE\\): ([0-9]+) bytes so far, in "
                                          "([0-9]+) lines$", 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *bytes = NULL;
  g_autofree char *lines = NULL;

  assert_null (under->error);
  assert_int_equal (under->status, 200);
  assert_string_equal (under->body->str, expected);

  assert_true (g_error_matches (many->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_FAILED));
  if (!g_regex_match (regex, many->error->message, 0, &match))
    fail_msg ("%s", many->error->message);
  bytes = g_match_info_fetch (match, 1);
  lines = g_match_info_fetch (match, 2);
  /* Stopped at the first 1 KiB line over the limit. */
  assert_true (g_ascii_strtoull (bytes, NULL, 10) > 65536);
  assert_true (g_ascii_strtoull (bytes, NULL, 10) <= 65536 + 1024);
  assert_true (g_ascii_strtoull (lines, NULL, 10) > 64);
  assert_int_equal (many->response_calls, 0);
  assert_int_equal (many->body->len, 0);

  assert_true (g_error_matches (single->error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_FAILED));
  assert_string_equal (single->error->message,
                       "the response headers exceed the HTTP client's limit of 65536 bytes "
                       "(CHIME_HTTP_MAX_HEADER_SIZE): one header line alone is over libcurl's limit of 102400 "
                       "bytes");
  assert_int_equal (single->response_calls, 0);
}

/* A transfer on a thread's own main context: a client of its own. */
static gpointer
fetch_in_thread (gpointer data)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  Fetch *result;

  g_main_context_push_thread_default (context);
  result = fetch_start (&(FetchSpec) { .scenario = "slow", .arg = "10" }, context);
  wait_all (&result, 1, context);
  g_main_context_pop_thread_default (context);
  return result;
}

static void
test_one_client_per_context (void **state)
{
  g_autofree char *expected = fixture ("openai-stream.sse");
  GThread *threads[3];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("fetch", fetch_in_thread, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_autoptr (Fetch) result = g_thread_join (threads[i]);

      assert_null (result->error);
      assert_string_equal (result->body->str, expected);
    }
}

/* chime_http_post() from an async plugin: the event completes when the
 * answer is in, so the flush waits for it; any status is an answer, a
 * refused connection is the handler's error. */
static void
test_plugin_posts (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *report = test_path ("posts.txt");
  g_autofree char *closed_url = NULL;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (GSocket) listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                               G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_auto (GStrv) lines = NULL;
  json_t *inputs = json_pack ("{s:s}", "input", "hi");
  json_t *outputs = json_pack ("{s:s}", "output", "done");
  ChimeRuntime *runtime;
  ChimeHttpStats stats;
  gint64 started;

  assert_true (g_socket_bind (listener, any, TRUE, NULL));
  bound = g_socket_get_local_address (listener, NULL);
  g_socket_close (listener, NULL);
  closed_url = g_strdup_printf ("http://127.0.0.1:%u/", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[handler slow]\nplugin = http_poster\nreport = %s\n"
                              "url = http://127.0.0.1:%u/v1/chat/completions\n"
                              "headers = Authorization: Bearer sk-test;X-Mock-Scenario: delay;X-Mock-Arg: 300\n"
                              "[handler missing]\nplugin = http_poster\nreport = %s\n"
                              "url = http://127.0.0.1:%u/v1/collector\n"
                              "[handler refused]\nplugin = http_poster\nreport = %s\nurl = %s\n",
                              report, port, report, port, report, closed_url);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Chain", NULL, &error);
  assert_non_null (chain);
  started = g_get_monotonic_time ();
  assert_true (chime_run_on_chain_end (chain, outputs, &error));
  chime_runtime_flush (runtime);
  /* The flush waited for the delayed answer. */
  assert_true (g_get_monotonic_time () - started >= 300 * 1000);

  lines = test_read_lines (report);
  assert_int_equal (g_strv_length (lines), 3);
  assert_int_not_equal (test_find_line (lines, "error 0 ", 0), -1);
  assert_int_not_equal (test_find_line (lines, "404 ", 0), -1);
  assert_string_contains (lines[test_find_line (lines, "404 ", 0)], "Invalid URL (POST /v1/collector)");
  assert_int_not_equal (test_find_line (lines, "200 ", 0), -1);
  assert_string_contains (lines[test_find_line (lines, "200 ", 0)], "chatcmpl");
  assert_true (test_log_contains ("handler 'refused' (http_poster) failed on chain_end: Failed to connect"));
  chime_http_get_stats (&stats);
  assert_int_equal (stats.active, 0);

  json_decref (inputs);
  json_decref (outputs);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  test_log_capture_stop ();
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_many_transfers_on_one_loop),
    cmocka_unit_test (test_pausing_keeps_every_byte),
    cmocka_unit_test (test_cancel_paused_transfer),
    cmocka_unit_test (test_idle_timeout),
    cmocka_unit_test (test_connection_failures),
    cmocka_unit_test (test_connect_timeout),
    cmocka_unit_test (test_status_and_headers),
    cmocka_unit_test (test_header_limit),
    cmocka_unit_test (test_one_client_per_context),
    cmocka_unit_test (test_plugin_posts),
  };
  const char *filter = g_getenv ("CHIME_TEST_FILTER");
  g_autofree struct CMUnitTest *selected = g_new0 (struct CMUnitTest, G_N_ELEMENTS (tests));
  gsize n = 0;

  /* Requests to 127.0.0.1 must not go through a proxy of the machine. */
  g_setenv ("NO_PROXY", "*", TRUE);
  g_setenv ("no_proxy", "*", TRUE);
  for (gsize i = 0; i < G_N_ELEMENTS (tests); i++)
    if (filter == NULL || strstr (tests[i].name, filter) != NULL)
      selected[n++] = tests[i];
  return _cmocka_run_group_tests ("http-client", selected, n, start_server, stop_server);
}
