/* How the mock LLM server serves: many connections at once, every
 * request logged as a JSON line, a body sent after 100 Continue, and an
 * exit after --max-requests answers. */
#include "mock-client.h"

#include <string.h>

/* ------------------------------------------------------------------ */

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
    cmocka_unit_test (test_concurrent),
    cmocka_unit_test (test_request_log),
    cmocka_unit_test (test_expect_continue),
    cmocka_unit_test (test_max_requests),
  };

  return mock_client_run_tests (tests, G_N_ELEMENTS (tests));
}
