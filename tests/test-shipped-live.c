/* The live plugin: GET / serves the trace page (no runs, following
 * /events), GET /events a Server-Sent Events stream that starts with the
 * whole tree so far and carries every change, in order, then ends with
 * the run; a browser that falls behind is disconnected, never waited
 * for; a listen address that is not loopback is refused unless
 * allow_remote = true, and a malformed one is explained.
 * Loaded as a real module from the build tree, on real loopback sockets:
 * the test is the browser (plain blocking sockets), and iterates the
 * runtime's main context, where the plugin runs, while it waits. What the
 * page makes of the stream in a real browser: tests/test-runner-trace.c. */
#include "shipped-helpers.h"

#include <gio/gio.h>
#include <string.h>

#define WAIT_S 10

/* A runtime with one live handler (its section's extra keys in @keys),
 * and the port it serves on, read from its "live view on" message. */
static ChimeRuntime *
live_runtime (const char *keys,
              guint16    *port)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *message = NULL;
  const char *at;
  ChimeRuntime *runtime;

  test_log_capture_start ();
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler live]\nplugin = live\nlisten = 127.0.0.1:0\n%s", keys);
  assert_null (error);
  message = test_log_find ("live view on http://127.0.0.1:");
  assert_non_null (message);
  at = strstr (message, "127.0.0.1:") + strlen ("127.0.0.1:");
  *port = (guint16) atoi (at);
  assert_true (*port > 0);
  return runtime;
}

/* Connects as a browser would and sends `METHOD PATH`. */
static GSocketConnection *
browser_request (guint16     port,
                 const char *method,
                 const char *path)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n",
                                              method, path);
  GSocketConnection *connection;

  g_socket_client_set_timeout (client, WAIT_S);
  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  assert_null (error);
  assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                          request, strlen (request), NULL, NULL, &error));
  return connection;
}

/* Runs the runtime's main context (where the server answers) until
 * @connection has something to read. */
static void
wait_for_answer (ChimeRuntime      *runtime,
                 GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_USEC_PER_SEC;

  while ((g_socket_condition_check (socket, G_IO_IN) & G_IO_IN) == 0)
    {
      if (g_get_monotonic_time () > deadline)
        fail_msg ("the live view did not answer within %d s", WAIT_S);
      if (!g_main_context_iteration (chime_runtime_get_main_context (runtime), FALSE))
        g_usleep (1000);
    }
}

/* Everything the server sent, up to its closing the connection. */
static char *
read_to_end (GSocketConnection *connection)
{
  g_autoptr (GString) text = g_string_new (NULL);
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  char buffer[4096];
  gssize n;

  g_socket_set_timeout (g_socket_connection_get_socket (connection), WAIT_S);
  while ((n = g_input_stream_read (input, buffer, sizeof buffer, NULL, NULL)) > 0)
    g_string_append_len (text, buffer, n);
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* The updates of an event stream (its `data: {"op": ...}` lines) as JSON,
 * in order, and its other lines ("retry: 1000", "event: end", "data: {}")
 * as JSON strings. */
static json_t *
stream_messages (const char *stream)
{
  const char *body = strstr (stream, "\r\n\r\n");
  g_auto (GStrv) lines = NULL;
  json_t *messages = json_array ();

  assert_non_null (body);
  lines = g_strsplit (body + 4, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] == '\0')
        continue;
      if (g_str_has_prefix (lines[i], "data: {\"op\""))
        json_array_append_new (messages, parse_line (lines[i] + strlen ("data: ")));
      else
        json_array_append_new (messages, json_string (lines[i]));
    }
  return messages;
}

static const char *
op_of (json_t *message)
{
  if (json_is_string (message))
    return json_string_value (message);
  return json_string_value (json_object_get (message, "op"));
}

static const char *
run_field (json_t     *message,
           const char *key)
{
  return json_string_value (json_object_get (json_object_get (message, "run"), key));
}

static void
test_live_streams_the_run_as_it_happens (void **state)
{
  static const char *const expected[] = {
    "retry: 1000", "reset", "run", "run", "token", "token", "token", "run", "run", "event: end", "data: {}",
  };
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autoptr (GSocketConnection) events = NULL;
  g_autoptr (json_t) messages = NULL;
  g_autofree char *stream = NULL;
  guint16 port;
  ChimeRuntime *runtime = live_runtime ("", &port);
  json_t *message;
  gsize i;

  events = browser_request (port, "GET", "/events");
  wait_for_answer (runtime, events);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_flush (runtime);
  chime_runtime_unref (runtime);
  stream = read_to_end (events);

  assert_string_contains (stream, "HTTP/1.1 200 OK\r\n");
  assert_string_contains (stream, "Content-Type: text/event-stream\r\n");
  messages = stream_messages (stream);
  {
    g_autoptr (GString) ops = g_string_new (NULL);

    json_array_foreach (messages, i, message)
      g_string_append_printf (ops, "%s%s", i > 0 ? ", " : "", op_of (message));
    if (json_array_size (messages) != G_N_ELEMENTS (expected))
      fail_msg ("%" G_GSIZE_FORMAT " messages, expected %" G_GSIZE_FORMAT ": %s", json_array_size (messages),
                G_N_ELEMENTS (expected), ops->str);
  }
  json_array_foreach (messages, i, message)
    assert_string_equal (op_of (message), expected[i]);
  /* The snapshot of a stream opened before the run: live, no runs. */
  message = json_array_get (messages, 1);
  assert_true (json_is_true (json_object_get (json_object_get (message, "trace"), "live")));
  assert_int_equal (json_array_size (json_object_get (json_object_get (message, "trace"), "runs")), 0);
  /* Starts, the model's end, the root's end. */
  assert_string_equal (run_field (json_array_get (messages, 2), "name"), "Root");
  assert_string_equal (run_field (json_array_get (messages, 2), "status"), "running");
  assert_string_equal (run_field (json_array_get (messages, 3), "name"), "FakeChat");
  assert_string_equal (run_field (json_array_get (messages, 7), "name"), "FakeChat");
  assert_string_equal (run_field (json_array_get (messages, 7), "status"), "ok");
  assert_string_equal (run_field (json_array_get (messages, 8), "name"), "Root");
  assert_string_equal (run_field (json_array_get (messages, 8), "status"), "ok");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 4), "id")),
                       run_field (json_array_get (messages, 3), "id"));
}

/* A browser that comes mid-run starts from everything seen so far. */
static void
test_live_snapshot_brings_a_late_browser_up_to_date (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  g_autoptr (GSocketConnection) events = NULL;
  g_autoptr (json_t) messages = NULL;
  g_autofree char *stream = NULL;
  guint16 port;
  ChimeRuntime *runtime = live_runtime ("", &port);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  json_t *runs;

  chime_runtime_flush (runtime);
  events = browser_request (port, "GET", "/events");
  wait_for_answer (runtime, events);
  assert_true (chime_run_on_chain_end (chain, inputs, &error));
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_flush (runtime);
  chime_runtime_unref (runtime);
  stream = read_to_end (events);

  messages = stream_messages (stream);
  assert_string_equal (op_of (json_array_get (messages, 1)), "reset");
  runs = json_object_get (json_object_get (json_array_get (messages, 1), "trace"), "runs");
  assert_int_equal (json_array_size (runs), 1);
  assert_string_equal (json_string_value (json_object_get (json_array_get (runs, 0), "status")), "running");
  assert_string_equal (run_field (json_array_get (messages, 2), "status"), "ok");
}

/* GET / is the page, following /events; anything else is refused. */
static void
test_live_serves_the_page (void **state)
{
  g_autoptr (GSocketConnection) page = NULL;
  g_autoptr (GSocketConnection) missing = NULL;
  g_autoptr (GSocketConnection) post = NULL;
  g_autofree char *page_text = NULL;
  g_autofree char *missing_text = NULL;
  g_autofree char *post_text = NULL;
  guint16 port;
  ChimeRuntime *runtime = live_runtime ("title = Watching\n", &port);

  page = browser_request (port, "GET", "/?from=test");
  missing = browser_request (port, "GET", "/secrets");
  post = browser_request (port, "POST", "/events");
  wait_for_answer (runtime, page);
  wait_for_answer (runtime, missing);
  wait_for_answer (runtime, post);
  page_text = read_to_end (page);
  missing_text = read_to_end (missing);
  post_text = read_to_end (post);
  chime_runtime_unref (runtime);

  assert_true (g_str_has_prefix (page_text, "HTTP/1.1 200 OK\r\n"));
  assert_string_contains (page_text, "Content-Type: text/html; charset=utf-8\r\n");
  assert_string_contains (page_text, "<script id=\"chime-trace\" type=\"application/json\">");
  assert_string_contains (page_text, "\"title\":\"Watching\"");
  assert_string_contains (page_text, "\"live\":true");
  assert_string_contains (page_text, "new EventSource(\"events\")");
  assert_true (g_str_has_prefix (missing_text, "HTTP/1.1 404 Not Found\r\n"));
  assert_true (g_str_has_prefix (post_text, "HTTP/1.1 405 Method Not Allowed\r\n"));
}

/* A browser that reads nothing: with max_buffer_kb = 1 it is let go once
 * the socket is full, the run is not held up, and the end says so. */
static void
test_live_disconnects_a_browser_that_falls_behind (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) events = NULL;
  g_autoptr (GString) big = g_string_new (NULL);
  g_autoptr (json_t) inputs = NULL;
  guint16 port;
  ChimeRuntime *runtime = live_runtime ("max_buffer_kb = 1\n", &port);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);

  events = browser_request (port, "GET", "/events");
  wait_for_answer (runtime, events);
  for (guint i = 0; i < 256 * 1024; i++)
    g_string_append_c (big, 'a' + i % 26);
  inputs = json_pack ("{s:s}", "input", big->str);
  /* 96 runs of 256 KiB each way: 48 MiB, far more than loopback socket
   * buffers take (a few MiB each side with Linux's defaults). */
  for (guint i = 0; i < 96; i++)
    {
      g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Big", NULL, &error);

      assert_true (chime_run_on_chain_end (chain, inputs, &error));
    }
  chime_runtime_flush (runtime);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  assert_true (test_log_contains ("1 browser stream(s) fell more than max_buffer_kb behind and were disconnected"));
}

/* Another machine's address is refused, saying why and how to mean it. */
static void
test_live_refuses_a_remote_address (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler live]\nplugin = live\nlisten = 0.0.0.0:0\n");

  assert_null (runtime);
  assert_non_null (error);
  assert_string_contains (error->message, "live");
  assert_string_contains (error->message, "listen = 0.0.0.0:0 is not a loopback address");
  assert_string_contains (error->message, "allow_remote = true");
}

static void
test_live_serves_remote_when_allowed (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;

  test_log_capture_start ();
  runtime = test_runtime_new (&error, "[handler live]\nplugin = live\nlisten = 0.0.0.0:0\nallow_remote = true\n");
  assert_null (error);
  assert_true (test_log_contains ("live view on http://0.0.0.0:"));
  chime_runtime_unref (runtime);
}

/* A listen value that is not IP:PORT is explained. */
static void
test_live_explains_a_bad_listen (void **state)
{
  static const char *const bad[] = { "127.0.0.1", "localhost:http", "example.com:8470", "127.0.0.1:99999" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      ChimeRuntime *runtime = test_runtime_new (&error, "[handler live]\nplugin = live\nlisten = %s\n", bad[i]);

      assert_null (runtime);
      assert_non_null (error);
      if (strstr (error->message, "give an IP address and a port") == NULL
          && strstr (error->message, "is not an IP address") == NULL)
        fail_msg ("listen = %s: %s", bad[i], error->message);
    }
}

/* Limits out of range are refused, naming the key and the range. */
static void
test_live_refuses_limits_out_of_range (void **state)
{
  static const char *const bad[][2] = {
    { "max_buffer_kb = 0", "max_buffer_kb = 0: give a size from 1 to 1048576 (KiB)" },
    { "max_clients = 5000", "max_clients = 5000: give a count from 1 to 1024" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      ChimeRuntime *runtime = test_runtime_new (&error, "[handler live]\nplugin = live\nlisten = 127.0.0.1:0\n%s\n",
                                                bad[i][0]);

      assert_null (runtime);
      assert_non_null (error);
      assert_string_contains (error->message, bad[i][1]);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_live_streams_the_run_as_it_happens),
    cmocka_unit_test (test_live_snapshot_brings_a_late_browser_up_to_date),
    cmocka_unit_test (test_live_serves_the_page),
    cmocka_unit_test (test_live_disconnects_a_browser_that_falls_behind),
    cmocka_unit_test (test_live_refuses_a_remote_address),
    cmocka_unit_test (test_live_serves_remote_when_allowed),
    cmocka_unit_test (test_live_explains_a_bad_listen),
    cmocka_unit_test (test_live_refuses_limits_out_of_range),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
