/* A libcurl client of the mock LLM server: see mock-client.h. */
#include "mock-client.h"

#include <glib/gstdio.h>
#include <string.h>

MockServer *shared;

/* ------------------------------------------------------------------ */
/* The server process                                                 */
/* ------------------------------------------------------------------ */

MockServer *
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

void
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

void
reply_free (Reply *reply)
{
  g_string_free (reply->body, TRUE);
  g_ptr_array_unref (reply->headers);
  curl_slist_free_all (reply->request_headers);
  g_free (reply);
}

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

const char *
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

CURL *
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

void
reply_finish (Reply *reply,
              CURL  *easy,
              CURLcode code)
{
  reply->code = code;
  curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &reply->status);
  reply->elapsed_ms = (g_get_monotonic_time () - reply->started) / 1000;
}

Reply *
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

Reply *
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

Reply *
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

char *
read_fixture (const char *name)
{
  g_autofree char *path = g_build_filename (FIXTURE_DIR, name, NULL);
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    fail_msg ("cannot read fixture %s", path);
  return contents;
}

void
assert_body_is_fixture (Reply      *reply,
                        const char *fixture)
{
  g_autofree char *expected = read_fixture (fixture);

  assert_int_equal (reply->code, CURLE_OK);
  assert_int_equal (reply->status, 200);
  assert_int_equal (reply->body->len, strlen (expected));
  assert_memory_equal (reply->body->str, expected, reply->body->len);
}

json_t *
reply_json (Reply *reply)
{
  json_error_t error;
  json_t *json = json_loadb (reply->body->str, reply->body->len, 0, &error);

  if (json == NULL)
    fail_msg ("not JSON (%s): %s", error.text, reply->body->str);
  return json;
}

char *
unique_key (const char *prefix)
{
  return g_strdup_printf ("X-Mock-Key: %s-%08x%08x", prefix, g_random_int (), g_random_int ());
}

/* ------------------------------------------------------------------ */

int
mock_client_run_tests (const struct CMUnitTest *tests,
                       gsize                    n_tests)
{
  int failures;

  curl_global_init (CURL_GLOBAL_DEFAULT);
  failures = test_run_group_with_fixtures ("tests", tests, n_tests, start_shared_server, stop_shared_server);
  curl_global_cleanup ();
  return failures;
}
