/* The errors the mock LLM server answers with, shaped as each provider
 * shapes them: missing credentials, any status on demand, retry
 * headers, requests that fail a given number of times, responses that
 * break the protocol, and requests the mock cannot serve. */
#include "mock-client.h"

#include <gio/gio.h>
#include <string.h>
#include <time.h>

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

/* ------------------------------------------------------------------ */

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

/* The faults of a response that breaks the protocol: one event's member
 * changed, a redirect, an unasked-for Content-Encoding (really gzip),
 * oversized headers; and what the mock says to arguments it cannot use. */
static void
test_protocol_faults (void **state)
{
  g_autoptr (Reply) patched = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: patch",
                                    "X-Mock-Arg: 1 choices.0.delta.content=5", NULL);
  g_autoptr (Reply) removed = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: patch",
                                    "X-Mock-Arg: 0 message", NULL);
  g_autoptr (Reply) redirect = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: redirect",
                                     "X-Mock-Arg: 308,https://example.com/v1/chat/completions", NULL);
  g_autoptr (Reply) gzip = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: encoded", "X-Mock-Arg: gzip", NULL);
  g_autoptr (Reply) big = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: big-headers", "X-Mock-Arg: 5000",
                                NULL);
  g_autoptr (Reply) bad_patch = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: patch",
                                      "X-Mock-Arg: 1 choices.9.delta=1", NULL);
  g_autoptr (Reply) bad_redirect = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: redirect",
                                         "X-Mock-Arg: 305", NULL);
  g_autofree char *fixture = read_fixture ("openai-stream.sse");
  g_autoptr (GZlibDecompressor) decompressor = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr (GInputStream) compressed = g_memory_input_stream_new_from_data (gzip->body->str, gzip->body->len,
                                                                             NULL);
  g_autoptr (GInputStream) plain = g_converter_input_stream_new (compressed, G_CONVERTER (decompressor));
  char decoded[8192];
  gsize decoded_len = 0;
  gsize padding = 0;

  assert_int_equal (patched->status, 200);
  assert_string_contains (patched->body->str, "\"delta\":{\"content\":5}");
  assert_null (strstr (patched->body->str, "I'm"));
  assert_null (strstr (removed->body->str, "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"));
  assert_string_contains (removed->body->str, "event: message_start\ndata: {\"type\":\"message_start\"}\n\n");

  assert_int_equal (redirect->status, 308);
  assert_string_equal (reply_header (redirect, "location"), "https://example.com/v1/chat/completions");

  assert_string_equal (reply_header (gzip, "content-encoding"), "gzip");
  assert_true (g_input_stream_read_all (plain, decoded, sizeof decoded, &decoded_len, NULL, NULL));
  assert_int_equal (decoded_len, strlen (fixture));
  assert_memory_equal (decoded, fixture, decoded_len);

  for (guint i = 0; i < big->headers->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (big->headers, i), "X-Mock-Padding-"))
      padding += strlen (g_ptr_array_index (big->headers, i)) + 2;
  assert_int_equal (padding, 5000);
  assert_body_is_fixture (big, "openai-stream.sse");

  assert_int_equal (bad_patch->status, 400);
  assert_string_contains (bad_patch->body->str, "patch: event 1 has no 'choices.9.delta'");
  assert_int_equal (bad_redirect->status, 400);
  assert_string_contains (bad_redirect->body->str, "redirect: X-Mock-Arg must be");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_auth_required),
    cmocka_unit_test (test_status_openai),
    cmocka_unit_test (test_status_anthropic),
    cmocka_unit_test (test_retry_after),
    cmocka_unit_test (test_flaky),
    cmocka_unit_test (test_bad_requests),
    cmocka_unit_test (test_protocol_faults),
  };

  return mock_client_run_tests (tests, G_N_ELEMENTS (tests));
}
