/* HTTP errors and retries: client errors quoted and not retried, server
 * errors retried with the SDKs' backoff and Retry-After, the retry
 * events the handlers see, and connections that cannot be made.
 * Whole pipelines from INI text against the mock LLM server, over real
 * sockets, for each provider (OpenAI and Anthropic). */
#include "provider-helpers.h"

#include "providers/provider-common.h"

#include <math.h>
#include <string.h>

/* A port nothing listens on: bound, then closed again. */
static guint
closed_port (void)
{
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  assert_true (g_socket_bind (socket, any, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  g_socket_close (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* ------------------------------------------------------------------ */
/* HTTP errors and retries                                            */
/* ------------------------------------------------------------------ */

static void
test_client_errors_are_not_retried (void **state)
{
  static const char *const statuses[] = { "400", "401", "404" };
  static const char *const openai_quotes[] = {
    "openai: HTTP 400 invalid_request_error: We could not parse the JSON body of your request.",
    "openai: HTTP 401 invalid_api_key: Incorrect API key provided.",
    "openai: HTTP 404 model_not_found: The model does not exist",
  };
  static const char *const anthropic_quotes[] = {
    "anthropic: HTTP 400 invalid_request_error: Invalid request.",
    "anthropic: HTTP 401 authentication_error: invalid x-api-key",
    "anthropic: HTTP 404 not_found_error: Not found.",
  };
  Case *cases[6];

  for (guint i = 0; i < 6; i++)
    cases[i] = case_new (providers[i / 3], &(CaseSpec) { .scenario = "status", .arg = statuses[i % 3] });
  run_cases (cases, 6);
  for (guint i = 0; i < 6; i++)
    {
      assert_failed_with (cases[i], (i < 3 ? openai_quotes : anthropic_quotes)[i % 3]);
      /* Not retried: a single attempt, so no "gave up" either. */
      assert_null (strstr (cases[i]->error->message, "attempts"));
      assert_requests (cases[i], 1);
      case_free (cases[i]);
    }
}

static void
test_server_errors_are_retried (void **state)
{
  static const char *const statuses[] = { "429", "500", "503", "529" };
  static const char *const openai_quotes[] = {
    "openai: HTTP 429 rate_limit_exceeded: Rate limit reached",
    "openai: HTTP 500 server_error: The server had an error",
    "openai: HTTP 503 server_error: The server is overloaded or not ready yet.",
    "openai: HTTP 529 server_error: Overloaded",
  };
  static const char *const anthropic_quotes[] = {
    "anthropic: HTTP 429 rate_limit_error: Number of requests has exceeded your rate limit.",
    "anthropic: HTTP 500 api_error: Internal server error",
    "anthropic: HTTP 503 api_error: Service Unavailable",
    "anthropic: HTTP 529 overloaded_error: Overloaded",
  };
  Case *cases[8];

  /* max_retries is 2 by default: three requests each. */
  for (guint i = 0; i < 8; i++)
    cases[i] = case_new (providers[i / 4], &(CaseSpec) { .scenario = "status", .arg = statuses[i % 4] });
  run_cases (cases, 8);
  for (guint i = 0; i < 8; i++)
    {
      g_autoptr (json_t) retries = trace_events (cases[i], "retry");
      json_t *first = json_object_get (json_array_get (retries, 0), "data");
      json_t *second = json_object_get (json_array_get (retries, 1), "data");

      assert_failed_with (cases[i], (i < 4 ? openai_quotes : anthropic_quotes)[i % 4]);
      assert_string_contains (cases[i]->error->message, "(gave up after 3 attempts)");
      assert_requests (cases[i], 3);
      /* LangChain's retry state, with the SDKs' backoff: 0.5 s then 1 s,
       * less up to a quarter of jitter. */
      assert_int_equal (json_array_size (retries), 2);
      assert_int_equal (json_integer_value (json_object_get (first, "attempt")), 1);
      assert_int_equal (json_integer_value (json_object_get (second, "attempt")), 2);
      assert_string_equal (json_string_value (json_object_get (first, "outcome")), "failed");
      assert_string_contains (json_string_value (json_object_get (first, "exception")),
                              (i < 4 ? openai_quotes : anthropic_quotes)[i % 4]);
      assert_true (json_real_value (json_object_get (first, "upcoming_sleep")) >= 0.375 - 1e-9);
      assert_true (json_real_value (json_object_get (first, "upcoming_sleep")) <= 0.5);
      assert_true (json_real_value (json_object_get (second, "upcoming_sleep")) >= 0.75 - 1e-9);
      assert_true (json_real_value (json_object_get (second, "upcoming_sleep")) <= 1.0);
      assert_true (json_real_value (json_object_get (second, "slept")) ==
                   json_real_value (json_object_get (first, "upcoming_sleep")));
      assert_true (cases[i]->elapsed >= 1.1);
      case_free (cases[i]);
    }
  /* The exception types name the SDK classes. */
  assert_string_equal (chime_provider_exception_type (429), "RateLimitError");
  assert_string_equal (chime_provider_exception_type (529), "OverloadedError");
  assert_string_equal (chime_provider_exception_type (503), "InternalServerError");
}

typedef struct {
  const char *arg;
  guint       openai_requests;
  guint       anthropic_requests;
  gdouble     min_elapsed;
} RetryAfterCase;

/* Retries that find the ring full (a handler stuck far behind, a small
 * queue, background delivery) are held back, not lost, and still reach
 * every handler before the tokens of the attempt that succeeds. */
static void
test_retry_events_wait_for_room (void **state)
{
  g_autoptr (Case) c = case_new (&openai, &(CaseSpec) {
    .scenario = "flaky", .arg = "14,429,1",
    .model_extra = "max_retries = 14\n",
    .runtime = "delivery = background\nqueue_limit = 16",
    .recorder = "delay_us = 60000",
  });
  g_auto (GStrv) lines = NULL;
  int first_token;

  run_cases (&c, 1);
  assert_succeeded (c);
  assert_requests (c, 15);
  assert_tokens (c, openai.tokens, g_strv_length ((char **) openai.tokens));
  lines = test_read_lines (c->trace);
  first_token = test_find_line (lines, "\"event\":\"llm_new_token\"", 0);
  assert_int_not_equal (first_token, -1);
  assert_int_equal (test_find_last_line (lines, "\"event\":\"retry\"") < first_token, TRUE);
}

static void
test_retry_after (void **state)
{
  static const RetryAfterCase plans[] = {
    { "ms=700", 2, 2, 0.7 },
    { "s=1", 2, 2, 1.0 },
    /* An HTTP date 2 s ahead, at one-second resolution: at least 1 s. */
    { "date=2", 2, 2, 0.95 },
    { "should-retry=false,status=503", 1, 1, 0 },
    /* x-should-retry: true retries even a 400. */
    { "should-retry=true,status=400", 2, 2, 0.3 },
    /* Over the SDKs' caps: openai-python gives up at once,
     * anthropic-sdk-python ignores the header and backs off. */
    { "s=200", 1, 2, 0 },
  };
  Case *cases[G_N_ELEMENTS (plans) * 2];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    cases[i] = case_new (providers[i % 2], &(CaseSpec) { .scenario = "retry-after",
                                                         .arg = plans[i / 2].arg,
                                                         .model_extra = "max_retries = 1\n" });
  run_cases (cases, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const RetryAfterCase *plan = &plans[i / 2];

      assert_non_null (cases[i]->error);
      assert_requests (cases[i], i % 2 == 0 ? plan->openai_requests : plan->anthropic_requests);
      if (cases[i]->elapsed < plan->min_elapsed)
        fail_msg ("%s: retried after %.3f s, asked for %.3f s", cases[i]->label, cases[i]->elapsed,
                  plan->min_elapsed);
      case_free (cases[i]);
    }
}

static void
test_retry_helpers (void **state)
{
  const ChimeProviderOps ops = { .max_retry_after_s = 60.0 };
  static const char openai_json[] =
    "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
  static const char ollama_json[] = "{\"error\":\"model \\\"x\\\" not found\"}";
  static const char llama_json[] =
    "{\"error\":{\"code\":401,\"message\":\"Invalid API Key\",\"type\":\"authentication_error\"}}";
  static const char html_body[] = "<html>\n<b>Bad gateway</b></html>";
  g_autofree char *openai_body = chime_provider_describe_http_error (429, openai_json, strlen (openai_json));
  g_autofree char *ollama_body = chime_provider_describe_http_error (404, ollama_json, strlen (ollama_json));
  g_autofree char *llama_body = chime_provider_describe_http_error (401, llama_json, strlen (llama_json));
  g_autofree char *html = chime_provider_describe_http_error (502, html_body, strlen (html_body));
  g_autofree char *empty = chime_provider_describe_http_error (503, "", 0);

  assert_string_equal (openai_body, "HTTP 429 rate_limit_exceeded: slow down");
  assert_string_equal (ollama_body, "HTTP 404: model \"x\" not found");
  assert_string_equal (llama_body, "HTTP 401 authentication_error: Invalid API Key");
  assert_string_equal (html, "HTTP 502: <html> <b>Bad gateway</b></html>");
  assert_string_equal (empty, "HTTP 503 (empty body)");

  assert_true (chime_provider_parse_retry_after ("1500", "9", 0) == 1.5);
  assert_true (chime_provider_parse_retry_after (NULL, "2.5", 0) == 2.5);
  assert_true (chime_provider_parse_retry_after (NULL, "Thu, 01 Jan 1970 00:00:30 GMT", 10) == 20.0);
  /* An HTTP-date in any of its three forms (RFC 9110, 5.6.7); nothing
   * else that looks like one. */
  assert_true (chime_provider_parse_retry_after (NULL, "Sun, 06 Nov 1994 08:49:37 GMT", 784111770) == 7.0);
  assert_true (chime_provider_parse_retry_after (NULL, "Sunday, 06-Nov-94 08:49:37 GMT", 784111770) == 7.0);
  assert_true (chime_provider_parse_retry_after (NULL, "Sun Nov  6 08:49:37 1994", 784111770) == 7.0);
  assert_true (chime_provider_parse_retry_after (NULL, "Wed, 03 Dec 2026 12:00:05 GMT  ", 1796299200) == 5.0);
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "Sun, 06 Nov 1994 08:49:37 PST", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "Sun, 06 Foo 1994 08:49:37 GMT", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "Sun, 31 Feb 1994 08:49:37 GMT", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "Sun, 06 Nov 1994 08:49:37 GMT x", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "Sun, 06 Nov 1994", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "soon", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, NULL, 0)));

  /* The backoff doubles from 0.5 s, caps at 8 s, and jitters down by at
   * most a quarter. */
  for (guint taken = 0; taken < 8; taken++)
    {
      gdouble delay = chime_provider_retry_delay (&ops, 500, FALSE, NULL, NAN, taken, 100);
      gdouble full = MIN (0.5 * (1 << taken), 8.0);

      assert_true (delay > 0.75 * full - 1e-9 && delay <= full);
    }
  assert_true (chime_provider_retry_delay (&ops, 500, FALSE, NULL, NAN, 2, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 0, TRUE, NULL, NAN, 0, 2) > 0);
  assert_true (chime_provider_retry_delay (&ops, 0, FALSE, NULL, NAN, 0, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 408, FALSE, NULL, NAN, 0, 2) > 0);
  assert_true (chime_provider_retry_delay (&ops, 409, FALSE, NULL, NAN, 0, 2) > 0);
  assert_true (chime_provider_retry_delay (&ops, 422, FALSE, NULL, NAN, 0, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 429, FALSE, NULL, 3.0, 0, 2) == 3.0);
  assert_true (chime_provider_retry_delay (&ops, 429, FALSE, "false", NAN, 0, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 400, FALSE, "true", NAN, 0, 2) > 0);
}

static void
test_flaky_succeeds_after_retries (void **state)
{
  Case *cases[2];

  /* flaky counts the requests of each X-Mock-Key: each case has its own. */
  for (guint i = 0; i < 2; i++)
    cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "flaky", .arg = "2,503" });
  run_cases (cases, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) retries = trace_events (cases[i], "retry");

      assert_succeeded (cases[i]);
      assert_tokens (cases[i], providers[i]->tokens, g_strv_length ((char **) providers[i]->tokens));
      assert_fixture_result (cases[i]);
      /* One retry event per retry, before the tokens. */
      assert_requests (cases[i], 3);
      assert_int_equal (json_array_size (retries), 2);
      assert_int_equal (json_integer_value (json_object_get (json_object_get (json_array_get (retries, 0),
                                                                              "data"), "status")), 503);
      case_free (cases[i]);
    }
}

static void
test_connection_refused_and_dns (void **state)
{
  g_autofree char *refused = g_strdup_printf ("http://127.0.0.1:%u/v1", closed_port ());
  Case *cases[4];

  for (guint i = 0; i < 2; i++)
    {
      cases[i] = case_new (providers[i], &(CaseSpec) { .base_url = refused, .model_extra = "max_retries = 1\n" });
      /* RFC 6761: .invalid never resolves. */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .base_url = "http://chime-test.invalid",
                                                           .model_extra = "max_retries = 0\n"
                                                                          "connect_timeout_s = 5\n" });
    }
  run_cases (cases, 4);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (json_t) retries = trace_events (cases[i], "retry");
      const char *name = i % 2 == 0 ? "openai" : "anthropic";
      g_autofree char *prefix = g_strdup_printf ("%s: cannot connect to http", name);

      assert_failed_with (cases[i], prefix);
      if (i < 2)
        {
          /* Connection errors are retried, as the SDKs do. */
          assert_string_contains (cases[i]->error->message, "(gave up after 2 attempts)");
          assert_int_equal (json_array_size (retries), 1);
          assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (retries, 0),
                                                                                    "data"),
                                                                   "exception_type")),
                               "APIConnectionError");
        }
      else
        assert_string_contains (cases[i]->error->message, "chime-test.invalid");
      case_free (cases[i]);
    }
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_client_errors_are_not_retried),
    cmocka_unit_test (test_server_errors_are_retried),
    cmocka_unit_test (test_retry_after),
    cmocka_unit_test (test_retry_events_wait_for_room),
    cmocka_unit_test (test_retry_helpers),
    cmocka_unit_test (test_flaky_succeeds_after_retries),
    cmocka_unit_test (test_connection_refused_and_dns),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
