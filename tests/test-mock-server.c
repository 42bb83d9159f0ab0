/* The mock LLM server, driven over real sockets with libcurl: recorded
 * streams come back byte for byte, every fault scenario does what it
 * says, requests are checked for the providers' auth headers and logged,
 * and many connections are served at once. */
#include "config.h"

#include "providers/sse-parser.h"
#include "test-helpers.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <curl/curl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>


#define OPENAI_PATH "/v1/chat/completions"
#define ANTHROPIC_PATH "/v1/messages"
#define OPENAI_BODY "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]," \
                    "\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
#define ANTHROPIC_BODY "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024," \
                       "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"stream\":true}"

typedef struct
{
  GSubprocess *process;
  guint        port;
  char        *dir;
  char        *log_path;
} MockServer;

static MockServer *shared;

/* ------------------------------------------------------------------ */
/* The server process                                                 */
/* ------------------------------------------------------------------ */

static MockServer *
mock_server_start (const char *extra_arg)
{
  g_autoptr (GError) error = NULL;
  MockServer *server = g_new0 (MockServer, 1);
  const char *args[] = { "--fixture-dir", FIXTURE_DIR, "--log", NULL, extra_arg, NULL };

  server->dir = g_dir_make_tmp ("chime-mock-XXXXXX", &error);
  assert_non_null (server->dir);
  server->log_path = g_build_filename (server->dir, "requests.jsonl", NULL);
  args[3] = server->log_path;
  server->process = test_mock_server_start (MOCK_SERVER_PATH, args, &server->port);
  return server;
}

static void
mock_server_free (MockServer *server)
{
  test_mock_server_stop (&server->process);
  g_unlink (server->log_path);
  g_rmdir (server->dir);
  g_free (server->log_path);
  g_free (server->dir);
  g_free (server);
}

static int
start_shared_server (void **state)
{
  shared = mock_server_start (NULL);
  return 0;
}

static int
stop_shared_server (void **state)
{
  g_clear_pointer (&shared, mock_server_free);
  return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP client                                                        */
/* ------------------------------------------------------------------ */

typedef struct
{
  CURLcode           code;
  long               status;
  GString           *body;
  /* "Name: value" lines of the final response (not of a 100 Continue). */
  GPtrArray         *headers;
  gboolean           saw_continue;
  gint64             elapsed_ms;
  struct curl_slist *request_headers;
  gint64             started;
} Reply;

static void
reply_free (Reply *reply)
{
  g_string_free (reply->body, TRUE);
  g_ptr_array_unref (reply->headers);
  curl_slist_free_all (reply->request_headers);
  g_free (reply);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

static size_t
on_body (char  *data,
         size_t size,
         size_t n,
         void  *user_data)
{
  Reply *reply = user_data;

  g_string_append_len (reply->body, data, (gssize) (size * n));
  return size * n;
}

static size_t
on_header (char  *data,
           size_t size,
           size_t n,
           void  *user_data)
{
  Reply *reply = user_data;
  g_autofree char *line = g_strndup (data, size * n);

  g_strchomp (line);
  if (g_str_has_prefix (line, "HTTP/"))
    {
      /* A new response begins: forget an interim one's headers. */
      if (strstr (line, " 100 ") != NULL)
        reply->saw_continue = TRUE;
      g_ptr_array_set_size (reply->headers, 0);
    }
  else if (line[0] != '\0')
    g_ptr_array_add (reply->headers, g_steal_pointer (&line));
  return size * n;
}

static const char *
reply_header (Reply      *reply,
              const char *name)
{
  gsize len = strlen (name);

  for (guint i = 0; i < reply->headers->len; i++)
    {
      const char *line = g_ptr_array_index (reply->headers, i);

      if (g_ascii_strncasecmp (line, name, len) == 0 && line[len] == ':')
        return line + len + 1 + strspn (line + len + 1, " ");
    }
  return NULL;
}

/* An easy handle for a request to @port; @reply receives the answer. */
static CURL *
new_easy (guint       port,
          const char *path,
          const char *body,
          GPtrArray  *headers,
          long        timeout_ms,
          Reply      *reply)
{
  CURL *easy = curl_easy_init ();
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u%s", port, path);

  reply->body = g_string_new (NULL);
  reply->headers = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < headers->len; i++)
    reply->request_headers = curl_slist_append (reply->request_headers, g_ptr_array_index (headers, i));
  reply->started = g_get_monotonic_time ();

  curl_easy_setopt (easy, CURLOPT_URL, url);
  curl_easy_setopt (easy, CURLOPT_NOPROXY, "*");
  curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
  if (body != NULL)
    curl_easy_setopt (easy, CURLOPT_COPYPOSTFIELDS, body);
  else
    curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt (easy, CURLOPT_HTTPHEADER, reply->request_headers);
  curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (easy, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (easy, CURLOPT_HEADERDATA, reply);
  curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, timeout_ms);
  return easy;
}

static void
reply_finish (Reply *reply,
              CURL  *easy,
              CURLcode code)
{
  reply->code = code;
  curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &reply->status);
  reply->elapsed_ms = (g_get_monotonic_time () - reply->started) / 1000;
}

static Reply *
request_full (guint       port,
              const char *path,
              const char *body,
              GPtrArray  *headers,
              long        timeout_ms)
{
  Reply *reply = g_new0 (Reply, 1);
  CURL *easy = new_easy (port, path, body, headers, timeout_ms, reply);

  reply_finish (reply, easy, curl_easy_perform (easy));
  curl_easy_cleanup (easy);
  return reply;
}

/* The headers a real client of @path sends, then the NULL-terminated
 * extra ones. */
static GPtrArray *
standard_headers (const char *path,
                  va_list     extra)
{
  GPtrArray *headers = g_ptr_array_new ();
  const char *header;

  g_ptr_array_add (headers, (gpointer) "Content-Type: application/json");
  if (g_str_equal (path, ANTHROPIC_PATH))
    {
      g_ptr_array_add (headers, (gpointer) "x-api-key: sk-ant-mock");
      g_ptr_array_add (headers, (gpointer) "anthropic-version: 2023-06-01");
    }
  else
    g_ptr_array_add (headers, (gpointer) "Authorization: Bearer sk-mock");
  while ((header = va_arg (extra, const char *)) != NULL)
    g_ptr_array_add (headers, (gpointer) header);
  return headers;
}

/* POSTs @body to @path on the shared server, with the provider's auth
 * headers and the NULL-terminated extra headers. */
static Reply *
post (const char *path,
      const char *body,
      ...) G_GNUC_NULL_TERMINATED;

static Reply *
post (const char *path,
      const char *body,
      ...)
{
  g_autoptr (GPtrArray) headers = NULL;
  va_list args;

  va_start (args, body);
  headers = standard_headers (path, args);
  va_end (args);
  return request_full (shared->port, path, body, headers, 10000);
}

/* The same with a timeout and no implicit headers. */
static Reply *
post_raw (const char *path,
          const char *body,
          long        timeout_ms,
          ...) G_GNUC_NULL_TERMINATED;

static Reply *
post_raw (const char *path,
          const char *body,
          long        timeout_ms,
          ...)
{
  g_autoptr (GPtrArray) headers = g_ptr_array_new ();
  const char *header;
  va_list args;

  va_start (args, timeout_ms);
  while ((header = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (headers, (gpointer) header);
  va_end (args);
  return request_full (shared->port, path, body, headers, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* Expectations                                                       */
/* ------------------------------------------------------------------ */

static char *
read_fixture (const char *name)
{
  g_autofree char *path = g_build_filename (FIXTURE_DIR, name, NULL);
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    fail_msg ("cannot read fixture %s", path);
  return contents;
}

/* The first @n events of an LF-only stream, as bytes. */
static char *
first_events (const char *text,
              guint       n)
{
  const char *end = text;

  for (guint i = 0; i < n; i++)
    {
      const char *blank = strstr (end, "\n\n");

      assert_non_null (blank);
      end = blank + 2;
    }
  return g_strndup (text, end - text);
}

/* The stream without the event that holds @line. */
static char *
without_event (const char *text,
               const char *line)
{
  g_autofree char *needle = g_strdup_printf ("%s\n", line);
  const char *start = strstr (text, needle);
  const char *end;

  assert_non_null (start);
  end = strstr (start, "\n\n");
  assert_non_null (end);
  /* Back to the start of the event. */
  while (start > text && !(start[-1] == '\n' && start - 1 > text && start[-2] == '\n'))
    start--;
  {
    g_autofree char *head = g_strndup (text, start - text);

    return g_strconcat (head, end + 2, NULL);
  }
}

static void
assert_body_is_fixture (Reply      *reply,
                        const char *fixture)
{
  g_autofree char *expected = read_fixture (fixture);

  assert_int_equal (reply->code, CURLE_OK);
  assert_int_equal (reply->status, 200);
  assert_int_equal (reply->body->len, strlen (expected));
  assert_memory_equal (reply->body->str, expected, reply->body->len);
}

static json_t *
reply_json (Reply *reply)
{
  json_error_t error;
  json_t *json = json_loadb (reply->body->str, reply->body->len, 0, &error);

  if (json == NULL)
    fail_msg ("not JSON (%s): %s", error.text, reply->body->str);
  return json;
}

static void
collect_event (const ChimeSseEvent *event,
               gpointer             user_data)
{
  GPtrArray *events = user_data;

  g_ptr_array_add (events, g_strdup_printf ("%s\t%s", event->event, event->data));
}

/* "type\tdata" for each event of the reply body. */
static GPtrArray *
reply_events (Reply *reply)
{
  GPtrArray *events = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (ChimeSseParser) parser = chime_sse_parser_new (collect_event, events);

  chime_sse_parser_feed (parser, reply->body->str, reply->body->len);
  chime_sse_parser_finish (parser);
  assert_false (chime_sse_parser_has_partial (parser));
  return events;
}

static char *
unique_key (const char *prefix)
{
  return g_strdup_printf ("X-Mock-Key: %s-%08x%08x", prefix, g_random_int (), g_random_int ());
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

static void
test_openai_stream_bytes (void **state)
{
  g_autoptr (Reply) reply = post (OPENAI_PATH, OPENAI_BODY, NULL);

  assert_body_is_fixture (reply, "openai-stream.sse");
  assert_true (g_str_has_prefix (reply_header (reply, "content-type"), "text/event-stream"));
  assert_string_equal (reply_header (reply, "transfer-encoding"), "chunked");
  assert_true (g_str_has_prefix (reply_header (reply, "x-request-id"), "req_mock_"));
}

static void
test_anthropic_stream_bytes (void **state)
{
  g_autoptr (Reply) reply = post (ANTHROPIC_PATH, ANTHROPIC_BODY, NULL);

  assert_body_is_fixture (reply, "anthropic-stream.sse");
  assert_true (g_str_has_prefix (reply_header (reply, "content-type"), "text/event-stream"));
  assert_true (g_str_has_prefix (reply_header (reply, "request-id"), "req_mock_"));
}

static void
test_non_streaming (void **state)
{
  g_autoptr (Reply) openai = post (OPENAI_PATH, "{\"model\":\"gpt-4o-mini\",\"messages\":[]}", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH,
                                      "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":16,\"messages\":[],"
                                      "\"stream\":false}", NULL);
  g_autoptr (json_t) completion = NULL;
  g_autofree char *length = NULL;

  assert_body_is_fixture (openai, "openai-completion.json");
  assert_string_equal (reply_header (openai, "content-type"), "application/json");
  length = g_strdup_printf ("%" G_GSIZE_FORMAT, openai->body->len);
  assert_string_equal (reply_header (openai, "content-length"), length);
  completion = reply_json (openai);
  assert_string_equal (json_string_value (json_object_get (completion, "object")), "chat.completion");

  assert_body_is_fixture (anthropic, "anthropic-message.json");
  assert_string_equal (reply_header (anthropic, "content-type"), "application/json");
}

static void
test_fixture_choice (void **state)
{
  g_autoptr (Reply) tool = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Fixture: openai-tool-stream.sse", NULL);
  g_autoptr (Reply) escape = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Fixture: ../../configure.ac", NULL);
  g_autoptr (Reply) missing = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Fixture: nope.sse", NULL);
  g_autoptr (json_t) escape_json = NULL;
  g_autoptr (json_t) missing_json = NULL;

  assert_body_is_fixture (tool, "openai-tool-stream.sse");
  /* Mistakes in driving the mock are not provider errors. */
  assert_int_equal (escape->status, 400);
  escape_json = reply_json (escape);
  assert_non_null (json_object_get (escape_json, "mock_error"));
  assert_int_equal (missing->status, 400);
  missing_json = reply_json (missing);
  assert_non_null (json_object_get (missing_json, "mock_error"));
}

static void
assert_openai_error (Reply      *reply,
                     long        status,
                     const char *type,
                     const char *code)
{
  g_autoptr (json_t) body = reply_json (reply);
  json_t *error = json_object_get (body, "error");

  assert_int_equal (reply->status, status);
  assert_string_equal (reply_header (reply, "content-type"), "application/json");
  assert_int_equal (json_object_size (body), 1);
  assert_int_equal (json_object_size (error), 4);
  assert_true (json_is_string (json_object_get (error, "message")));
  assert_string_equal (json_string_value (json_object_get (error, "type")), type);
  assert_true (json_is_null (json_object_get (error, "param")));
  if (code == NULL)
    assert_true (json_is_null (json_object_get (error, "code")));
  else
    assert_string_equal (json_string_value (json_object_get (error, "code")), code);
}

static void
assert_anthropic_error (Reply      *reply,
                        long        status,
                        const char *type)
{
  g_autoptr (json_t) body = reply_json (reply);
  json_t *error = json_object_get (body, "error");

  assert_int_equal (reply->status, status);
  assert_string_equal (reply_header (reply, "content-type"), "application/json");
  assert_int_equal (json_object_size (body), 2);
  assert_string_equal (json_string_value (json_object_get (body, "type")), "error");
  assert_int_equal (json_object_size (error), 2);
  assert_string_equal (json_string_value (json_object_get (error, "type")), type);
  assert_true (json_is_string (json_object_get (error, "message")));
}

static void
test_auth_required (void **state)
{
  g_autoptr (Reply) openai = post_raw (OPENAI_PATH, OPENAI_BODY, 10000,
                                       "Content-Type: application/json", NULL);
  g_autoptr (Reply) basic = post_raw (OPENAI_PATH, OPENAI_BODY, 10000,
                                      "Authorization: Basic c2stbW9jaw==", NULL);
  g_autoptr (Reply) empty = post_raw (OPENAI_PATH, OPENAI_BODY, 10000, "Authorization: Bearer ", NULL);
  g_autoptr (Reply) no_key = post_raw (ANTHROPIC_PATH, ANTHROPIC_BODY, 10000,
                                       "anthropic-version: 2023-06-01", NULL);
  g_autoptr (Reply) no_version = post_raw (ANTHROPIC_PATH, ANTHROPIC_BODY, 10000,
                                           "x-api-key: sk-ant-mock", NULL);
  /* An OAuth-style token instead of x-api-key is accepted. */
  g_autoptr (Reply) bearer = post_raw (ANTHROPIC_PATH, ANTHROPIC_BODY, 10000,
                                       "Authorization: Bearer tok", "anthropic-version: 2023-06-01", NULL);

  assert_openai_error (openai, 401, "invalid_request_error", "invalid_api_key");
  assert_openai_error (basic, 401, "invalid_request_error", "invalid_api_key");
  assert_openai_error (empty, 401, "invalid_request_error", "invalid_api_key");
  assert_anthropic_error (no_key, 401, "authentication_error");
  assert_anthropic_error (no_version, 401, "authentication_error");
  assert_body_is_fixture (bearer, "anthropic-stream.sse");
}

static void
test_status_openai (void **state)
{
  static const struct
  {
    long        status;
    const char *type;
    const char *code;
  } cases[] = {
    { 400, "invalid_request_error", NULL },
    { 401, "invalid_request_error", "invalid_api_key" },
    { 404, "invalid_request_error", "model_not_found" },
    { 408, "invalid_request_error", NULL },
    { 409, "invalid_request_error", NULL },
    { 429, "requests", "rate_limit_exceeded" },
    { 500, "server_error", NULL },
    { 503, "server_error", NULL },
    { 529, "server_error", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *arg = g_strdup_printf ("X-Mock-Arg: %ld", cases[i].status);
      g_autoptr (Reply) reply = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: status", arg, NULL);

      assert_openai_error (reply, cases[i].status, cases[i].type, cases[i].code);
      if (cases[i].status == 500)
        assert_string_equal (reply->body->str,
                             "{\"error\":{\"message\":\"The server had an error while processing your request. "
                             "Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    }
}

static void
test_status_anthropic (void **state)
{
  static const struct
  {
    long        status;
    const char *type;
  } cases[] = {
    { 400, "invalid_request_error" },
    { 401, "authentication_error" },
    { 402, "billing_error" },
    { 403, "permission_error" },
    { 404, "not_found_error" },
    { 408, "invalid_request_error" },
    { 409, "invalid_request_error" },
    { 413, "request_too_large" },
    { 429, "rate_limit_error" },
    { 500, "api_error" },
    { 503, "api_error" },
    { 504, "timeout_error" },
    { 529, "overloaded_error" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *arg = g_strdup_printf ("X-Mock-Arg: %ld", cases[i].status);
      g_autoptr (Reply) reply = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: status", arg, NULL);

      assert_anthropic_error (reply, cases[i].status, cases[i].type);
      if (cases[i].status == 529)
        assert_string_equal (reply->body->str,
                             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}");
    }
}

static void
test_retry_after (void **state)
{
  g_autoptr (Reply) ms = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: retry-after", "X-Mock-Arg: ms=200", NULL);
  g_autoptr (Reply) s = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: retry-after",
                              "X-Mock-Arg: s=1, status=503", NULL);
  g_autoptr (Reply) both = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: retry-after",
                                 "X-Mock-Arg: s=2,ms=1500,should-retry=false", NULL);
  g_autoptr (Reply) date = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: retry-after",
                                 "X-Mock-Arg: date=30", NULL);
  g_autoptr (Reply) bad = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: retry-after",
                                "X-Mock-Arg: minutes=3", NULL);
  time_t now = time (NULL);
  time_t when;

  assert_openai_error (ms, 429, "requests", "rate_limit_exceeded");
  assert_string_equal (reply_header (ms, "retry-after-ms"), "200");
  assert_null (reply_header (ms, "retry-after"));

  assert_anthropic_error (s, 503, "api_error");
  assert_string_equal (reply_header (s, "retry-after"), "1");
  assert_null (reply_header (s, "retry-after-ms"));

  assert_int_equal (both->status, 429);
  assert_string_equal (reply_header (both, "retry-after"), "2");
  assert_string_equal (reply_header (both, "retry-after-ms"), "1500");
  assert_string_equal (reply_header (both, "x-should-retry"), "false");

  assert_int_equal (date->status, 429);
  when = curl_getdate (reply_header (date, "retry-after"), NULL);
  assert_true (when >= now + 25 && when <= now + 35);

  assert_int_equal (bad->status, 400);
}

static void
test_flaky (void **state)
{
  g_autofree char *key = unique_key ("flaky");
  g_autofree char *other_key = unique_key ("flaky-other");

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (Reply) reply = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: flaky", "X-Mock-Arg: 2,503",
                                      key, NULL);

      if (i < 2)
        assert_openai_error (reply, 503, "server_error", NULL);
      else
        assert_body_is_fixture (reply, "openai-stream.sse");
    }
  /* Counters are per key. */
  {
    g_autoptr (Reply) first = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: flaky",
                                    "X-Mock-Arg: 1,529", other_key, NULL);
    g_autoptr (Reply) second = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: flaky",
                                     "X-Mock-Arg: 1,529", other_key, NULL);

    assert_anthropic_error (first, 529, "overloaded_error");
    assert_body_is_fixture (second, "anthropic-stream.sse");
  }
}

static void
test_slow_and_delay (void **state)
{
  g_autoptr (Reply) slow = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: slow", "X-Mock-Arg: 30", NULL);
  g_autoptr (Reply) delay = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: delay", "X-Mock-Arg: 200", NULL);

  /* Nine events, eight pauses. */
  assert_body_is_fixture (slow, "anthropic-stream.sse");
  assert_true (slow->elapsed_ms >= 8 * 30);
  assert_body_is_fixture (delay, "openai-stream.sse");
  assert_true (delay->elapsed_ms >= 200);
}

static void
test_stall (void **state)
{
  g_autofree char *fixture = read_fixture ("openai-stream.sse");
  g_autofree char *expected = first_events (fixture, 2);
  g_autoptr (Reply) reply = post_raw (OPENAI_PATH, OPENAI_BODY, 800, "Authorization: Bearer sk-mock",
                                      "X-Mock-Scenario: stall", "X-Mock-Arg: 2", NULL);

  /* Headers and two events, then silence on an open connection. */
  assert_int_equal (reply->code, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal (reply->status, 200);
  assert_string_equal (reply->body->str, expected);
}

static void
test_disconnect (void **state)
{
  g_autofree char *openai_fixture = read_fixture ("openai-stream.sse");
  g_autofree char *anthropic_fixture = read_fixture ("anthropic-stream.sse");
  g_autofree char *openai_expected = first_events (openai_fixture, 3);
  g_autofree char *anthropic_expected = first_events (anthropic_fixture, 1);
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: disconnect", "X-Mock-Arg: 3", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: disconnect", NULL);

  /* The chunked body never ends properly: a transfer error, not EOF. */
  assert_int_equal (openai->code, CURLE_PARTIAL_FILE);
  assert_int_equal (openai->status, 200);
  assert_string_equal (openai->body->str, openai_expected);
  /* One event by default. */
  assert_int_equal (anthropic->code, CURLE_PARTIAL_FILE);
  assert_string_equal (anthropic->body->str, anthropic_expected);
}

static void
test_no_terminator (void **state)
{
  g_autofree char *openai_fixture = read_fixture ("openai-stream.sse");
  g_autofree char *anthropic_fixture = read_fixture ("anthropic-stream.sse");
  g_autofree char *openai_expected = without_event (openai_fixture, "data: [DONE]");
  g_autofree char *anthropic_expected = without_event (anthropic_fixture, "event: message_stop");
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: no-terminator", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: no-terminator", NULL);

  /* A clean end at the HTTP level: only the stream itself is short. */
  assert_int_equal (openai->code, CURLE_OK);
  assert_string_equal (openai->body->str, openai_expected);
  assert_null (strstr (openai->body->str, "[DONE]"));
  assert_true (g_str_has_suffix (openai->body->str, "\"reasoning_tokens\":0}}}\n\n"));
  assert_int_equal (anthropic->code, CURLE_OK);
  assert_string_equal (anthropic->body->str, anthropic_expected);
  assert_null (strstr (anthropic->body->str, "message_stop"));
  assert_true (g_str_has_suffix (anthropic->body->str, "\"usage\":{\"output_tokens\":6}}\n\n"));
}

static void
test_error_event (void **state)
{
  g_autofree char *anthropic_fixture = read_fixture ("anthropic-stream.sse");
  g_autofree char *anthropic_error = read_fixture ("anthropic-error-event.sse");
  g_autofree char *anthropic_head = first_events (anthropic_fixture, 4);
  g_autofree char *anthropic_expected = g_strconcat (anthropic_head, anthropic_error, NULL);
  g_autofree char *openai_fixture = read_fixture ("openai-stream.sse");
  g_autofree char *openai_error = read_fixture ("openai-error-event.sse");
  g_autofree char *openai_head = first_events (openai_fixture, 2);
  g_autofree char *openai_expected = g_strconcat (openai_head, openai_error, NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: error-event",
                                      "X-Mock-Arg: 4", NULL);
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: error-event",
                                   "X-Mock-Arg: 2", NULL);
  g_autoptr (GPtrArray) anthropic_events = NULL;
  g_autoptr (GPtrArray) openai_events = NULL;

  /* Still a 200: the error is in the stream. */
  assert_int_equal (anthropic->code, CURLE_OK);
  assert_int_equal (anthropic->status, 200);
  assert_string_equal (anthropic->body->str, anthropic_expected);
  anthropic_events = reply_events (anthropic);
  assert_int_equal (anthropic_events->len, 5);
  assert_string_equal (g_ptr_array_index (anthropic_events, 4),
                       "error\t{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", "
                       "\"message\": \"Overloaded\"}}");

  assert_int_equal (openai->code, CURLE_OK);
  assert_int_equal (openai->status, 200);
  assert_string_equal (openai->body->str, openai_expected);
  openai_events = reply_events (openai);
  assert_int_equal (openai_events->len, 3);
  assert_true (g_str_has_prefix (g_ptr_array_index (openai_events, 2), "message\t{\"error\":{"));
}

static void
test_huge (void **state)
{
  const guint n = 2000;
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: huge", "X-Mock-Arg: 2000", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: huge",
                                      "X-Mock-Arg: 2000", NULL);
  g_autoptr (GPtrArray) openai_events = NULL;
  g_autoptr (GPtrArray) anthropic_events = NULL;
  guint tokens = 0;

  assert_int_equal (openai->code, CURLE_OK);
  openai_events = reply_events (openai);
  /* Role chunk, n tokens, finish chunk, usage chunk, [DONE]. */
  assert_int_equal (openai_events->len, n + 4);
  for (guint i = 0; i + 1 < openai_events->len; i++)
    {
      const char *event = g_ptr_array_index (openai_events, i);
      g_autoptr (json_t) chunk = json_loads (strchr (event, '\t') + 1, 0, NULL);
      json_t *choice = json_array_get (json_object_get (chunk, "choices"), 0);
      const char *content = json_string_value (json_object_get (json_object_get (choice, "delta"), "content"));

      assert_non_null (chunk);
      if (content != NULL && g_str_equal (content, " tok"))
        tokens++;
    }
  assert_int_equal (tokens, n);
  assert_string_equal (g_ptr_array_index (openai_events, openai_events->len - 1), "message\t[DONE]");

  assert_int_equal (anthropic->code, CURLE_OK);
  anthropic_events = reply_events (anthropic);
  /* message_start, content_block_start, n deltas, content_block_stop,
   * message_delta, message_stop. */
  assert_int_equal (anthropic_events->len, n + 5);
  for (guint i = 2; i < n + 2; i++)
    assert_string_equal (g_ptr_array_index (anthropic_events, i),
                         "content_block_delta\t{\"type\":\"content_block_delta\",\"index\":0,"
                         "\"delta\":{\"type\":\"text_delta\",\"text\":\" tok\"}}");
  assert_true (g_str_has_prefix (g_ptr_array_index (anthropic_events, n + 3), "message_delta\t"));
  assert_non_null (strstr (g_ptr_array_index (anthropic_events, n + 3), "\"output_tokens\":2000"));
  assert_true (g_str_has_prefix (g_ptr_array_index (anthropic_events, n + 4), "message_stop\t"));
}

static void
test_concurrent (void **state)
{
  enum { N_REQUESTS = 32, DELAY_MS = 300 };
  g_autofree char *expected = read_fixture ("openai-stream.sse");
  g_autoptr (GPtrArray) headers = g_ptr_array_new ();
  CURLM *multi = curl_multi_init ();
  CURL *easies[N_REQUESTS];
  Reply *replies[N_REQUESTS];
  gint64 started = g_get_monotonic_time ();
  gint64 elapsed_ms;
  int running = 1;
  CURLMsg *message;
  int left;

  g_ptr_array_add (headers, (gpointer) "Content-Type: application/json");
  g_ptr_array_add (headers, (gpointer) "Authorization: Bearer sk-mock");
  g_ptr_array_add (headers, (gpointer) "X-Mock-Scenario: delay");
  g_ptr_array_add (headers, (gpointer) "X-Mock-Arg: 300");
  for (guint i = 0; i < N_REQUESTS; i++)
    {
      replies[i] = g_new0 (Reply, 1);
      easies[i] = new_easy (shared->port, OPENAI_PATH, OPENAI_BODY, headers, 10000, replies[i]);
      curl_easy_setopt (easies[i], CURLOPT_PRIVATE, replies[i]);
      curl_multi_add_handle (multi, easies[i]);
    }
  while (running > 0)
    {
      assert_int_equal (curl_multi_perform (multi, &running), CURLM_OK);
      if (running > 0)
        assert_int_equal (curl_multi_poll (multi, NULL, 0, 1000, NULL), CURLM_OK);
    }
  while ((message = curl_multi_info_read (multi, &left)) != NULL)
    if (message->msg == CURLMSG_DONE)
      {
        Reply *reply;

        curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, (char **) &reply);
        reply_finish (reply, message->easy_handle, message->data.result);
      }
  elapsed_ms = (g_get_monotonic_time () - started) / 1000;

  for (guint i = 0; i < N_REQUESTS; i++)
    {
      assert_int_equal (replies[i]->code, CURLE_OK);
      assert_int_equal (replies[i]->status, 200);
      assert_string_equal (replies[i]->body->str, expected);
      curl_multi_remove_handle (multi, easies[i]);
      curl_easy_cleanup (easies[i]);
      reply_free (replies[i]);
    }
  curl_multi_cleanup (multi);
  /* One after the other this would take N_REQUESTS * DELAY_MS = 9.6 s. */
  assert_true (elapsed_ms >= DELAY_MS);
  assert_true (elapsed_ms < N_REQUESTS * DELAY_MS / 4);
}

/* The log entry whose x-mock-key header is @key. */
static json_t *
find_log_entry (const char *log_path,
                const char *key)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  assert_true (g_file_get_contents (log_path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      json_t *entry;
      const char *value;

      if (lines[i][0] == '\0')
        continue;
      entry = json_loads (lines[i], 0, NULL);
      assert_non_null (entry);
      value = json_string_value (json_object_get (json_object_get (entry, "headers"), "x-mock-key"));
      if (value != NULL && g_str_equal (value, key))
        return entry;
      json_decref (entry);
    }
  fail_msg ("no log entry for %s", key);
  return NULL;
}

static void
test_request_log (void **state)
{
  static const char body[] = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"H\xc3\xa9llo \\\"you\\\"\"}],\"stream\":true}";
  g_autofree char *key = unique_key ("log");
  g_autoptr (Reply) reply = post (ANTHROPIC_PATH, body, key, "anthropic-beta: tools-2024-04-04", NULL);
  g_autoptr (json_t) entry = find_log_entry (shared->log_path, strchr (key, ' ') + 1);
  json_t *headers = json_object_get (entry, "headers");

  assert_int_equal (reply->status, 200);
  assert_string_equal (json_string_value (json_object_get (entry, "method")), "POST");
  assert_string_equal (json_string_value (json_object_get (entry, "path")), ANTHROPIC_PATH);
  assert_string_equal (json_string_value (json_object_get (entry, "version")), "HTTP/1.1");
  assert_true (json_integer_value (json_object_get (entry, "seq")) > 0);
  assert_string_equal (json_string_value (json_object_get (headers, "x-api-key")), "sk-ant-mock");
  assert_string_equal (json_string_value (json_object_get (headers, "anthropic-version")), "2023-06-01");
  assert_string_equal (json_string_value (json_object_get (headers, "anthropic-beta")), "tools-2024-04-04");
  assert_string_equal (json_string_value (json_object_get (headers, "content-type")), "application/json");
  assert_int_equal (g_ascii_strtoull (json_string_value (json_object_get (headers, "content-length")), NULL, 10),
                    sizeof body - 1);
  assert_true (g_str_has_prefix (json_string_value (json_object_get (headers, "host")), "127.0.0.1:"));
  assert_string_equal (json_string_value (json_object_get (entry, "body")), body);
}

static void
test_bad_requests (void **state)
{
  g_autoptr (Reply) not_found = post (OPENAI_PATH "x", OPENAI_BODY, NULL);
  g_autoptr (Reply) get = post_raw (OPENAI_PATH, NULL, 10000, "Authorization: Bearer sk-mock", NULL);
  g_autoptr (Reply) openai_json = post (OPENAI_PATH, "{\"model\":", NULL);
  g_autoptr (Reply) anthropic_json = post (ANTHROPIC_PATH, "[1, 2]", NULL);
  g_autoptr (Reply) scenario = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: explode", NULL);
  g_autoptr (json_t) not_found_json = NULL;
  g_autoptr (json_t) scenario_json = NULL;

  assert_openai_error (not_found, 404, "invalid_request_error", NULL);
  not_found_json = reply_json (not_found);
  assert_string_equal (json_string_value (json_object_get (json_object_get (not_found_json, "error"), "message")),
                       "Invalid URL (POST /v1/chat/completionsx)");
  assert_int_equal (get->status, 405);
  assert_string_equal (reply_header (get, "allow"), "POST");
  assert_openai_error (openai_json, 400, "invalid_request_error", NULL);
  assert_anthropic_error (anthropic_json, 400, "invalid_request_error");
  assert_int_equal (scenario->status, 400);
  scenario_json = reply_json (scenario);
  assert_string_equal (json_string_value (json_object_get (scenario_json, "mock_error")),
                       "unknown X-Mock-Scenario 'explode'");
}

static void
test_expect_continue (void **state)
{
  /* A body big enough that a client asks before sending it. */
  g_autoptr (GString) body = g_string_new ("{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"");
  g_autoptr (Reply) reply = NULL;

  while (body->len < 1536 * 1024)
    g_string_append (body, "lorem ipsum dolor sit amet ");
  g_string_append (body, "\"}]}");
  reply = post (OPENAI_PATH, body->str, "Expect: 100-continue", NULL);

  assert_true (reply->saw_continue);
  assert_body_is_fixture (reply, "openai-stream.sse");
}

static void
on_exited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *exited = user_data;

  *exited = g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
}

static gboolean
on_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_max_requests (void **state)
{
  MockServer *server = mock_server_start ("--max-requests=2");
  g_autoptr (GPtrArray) headers = g_ptr_array_new ();
  gboolean exited = FALSE;
  gboolean timed_out = FALSE;
  guint timeout;

  g_ptr_array_add (headers, (gpointer) "Authorization: Bearer sk-mock");
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (Reply) reply = request_full (server->port, OPENAI_PATH, OPENAI_BODY, headers, 10000);

      assert_body_is_fixture (reply, "openai-stream.sse");
    }
  g_subprocess_wait_async (server->process, NULL, on_exited, &exited);
  timeout = g_timeout_add (5000, on_timeout, &timed_out);
  while (!exited && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout);
  assert_true (exited);
  assert_true (g_subprocess_get_successful (server->process));
  mock_server_free (server);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_openai_stream_bytes),
    cmocka_unit_test (test_anthropic_stream_bytes),
    cmocka_unit_test (test_non_streaming),
    cmocka_unit_test (test_fixture_choice),
    cmocka_unit_test (test_auth_required),
    cmocka_unit_test (test_status_openai),
    cmocka_unit_test (test_status_anthropic),
    cmocka_unit_test (test_retry_after),
    cmocka_unit_test (test_flaky),
    cmocka_unit_test (test_slow_and_delay),
    cmocka_unit_test (test_stall),
    cmocka_unit_test (test_disconnect),
    cmocka_unit_test (test_no_terminator),
    cmocka_unit_test (test_error_event),
    cmocka_unit_test (test_huge),
    cmocka_unit_test (test_concurrent),
    cmocka_unit_test (test_request_log),
    cmocka_unit_test (test_bad_requests),
    cmocka_unit_test (test_expect_continue),
    cmocka_unit_test (test_max_requests),
  };
  int failures;

  curl_global_init (CURL_GLOBAL_DEFAULT);
  failures = cmocka_run_group_tests (tests, start_shared_server, stop_shared_server);
  curl_global_cleanup ();
  return failures;
}
