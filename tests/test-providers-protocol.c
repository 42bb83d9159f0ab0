/* Responses that break the protocol fail the run with a message that says
 * what was wrong, never succeed with an empty or partial answer: stream
 * events whose members have the wrong type (and the absent or null
 * members the real APIs send, which stay accepted), redirects, a
 * Content-Encoding nobody asked for, response headers over the client's
 * limit. Whole pipelines from INI text against the mock LLM server, over
 * real sockets, for each provider (OpenAI and Anthropic). */
#include "provider-helpers.h"

#include <string.h>

/* The request URL of @p at the mock server. */
static char *
endpoint_url (const ProviderCase *p)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s%s", server.port, p->path,
                          p == &openai ? "/chat/completions" : "/v1/messages");
}

/* The run failed with exactly @message, once, before any retry. */
static void
assert_failed_exactly (Case       *c,
                       const char *message,
                       gsize       requests)
{
  assert_failed_with (c, message);
  if (!g_str_equal (c->error->message, message))
    fail_msg ("%s: expected\n  %s\ngot\n  %s", c->label, message, c->error->message);
  assert_requests (c, requests);
}

/* ------------------------------------------------------------------ */
/* Members of the wrong type                                          */
/* ------------------------------------------------------------------ */

typedef struct {
  const ProviderCase *provider;
  const char         *patch;      /* X-Mock-Arg of `patch` */
  const char         *message;
  guint               tokens;     /* streamed before the bad event */
} TypeCase;

/* The events of the fixtures: openai-stream.sse is 0 the role chunk, 1-4
 * the tokens, 5 finish_reason, 6 usage, 7 [DONE]; anthropic-stream.sse is
 * 0 message_start, 1 content_block_start, 2 ping, 3-5 the tokens,
 * 6 content_block_stop, 7 message_delta, 8 message_stop. */
static const TypeCase wrong_types[] = {
  { &openai, "1 choices=\"x\"", "openai: the stream sent choices as a string; expected an array", 0 },
  { &openai, "1 choices.0.delta.content=5",
    "openai: the stream sent choices[0].delta.content as a number; expected a string", 0 },
  { &openai, "2 choices.0=7", "openai: the stream sent choices[0] as a number; expected an object", 1 },
  { &openai, "2 choices.0.delta=\"x\"",
    "openai: the stream sent choices[0].delta as a string; expected an object", 1 },
  { &openai, "3 choices.0.index=\"0\"",
    "openai: the stream sent choices[0].index as a string; expected an integer", 2 },
  { &openai, "5 choices.0.finish_reason=3",
    "openai: the stream sent choices[0].finish_reason as a number; expected a string", 4 },
  { &openai, "0 id=1", "openai: the stream sent id as a number; expected a string", 0 },
  { &openai, "4 model={}", "openai: the stream sent model as an object; expected a string", 3 },
  { &openai, "6 usage=[]", "openai: the stream sent usage as an array; expected an object", 4 },
  { &openai, "6 usage.prompt_tokens=\"14\"",
    "openai: the stream sent usage.prompt_tokens as a string; expected a non-negative integer", 4 },
  { &openai, "6 usage.completion_tokens=-3",
    "openai: the stream sent usage.completion_tokens as the number -3; expected a non-negative integer", 4 },
  { &openai, "6 usage.completion_tokens_details.reasoning_tokens=1.5",
    "openai: the stream sent usage.completion_tokens_details.reasoning_tokens as the number 1.5; "
    "expected a non-negative integer", 4 },
  { &openai, "6 usage.prompt_tokens_details=true",
    "openai: the stream sent usage.prompt_tokens_details as a boolean; expected an object", 4 },
  { &anthropic, "3 delta.text=7", "anthropic: the stream sent delta.text as a number; expected a string", 0 },
  { &anthropic, "4 delta=[]", "anthropic: the stream sent delta as an array; expected an object", 1 },
  { &anthropic, "5 delta.type=false", "anthropic: the stream sent delta.type as a boolean; expected a string", 2 },
  { &anthropic, "1 content_block=\"x\"",
    "anthropic: the stream sent content_block as a string; expected an object", 0 },
  { &anthropic, "1 content_block.type=1",
    "anthropic: the stream sent content_block.type as a number; expected a string", 0 },
  { &anthropic, "1 content_block.text=[]",
    "anthropic: the stream sent content_block.text as an array; expected a string", 0 },
  { &anthropic, "0 message=\"m\"", "anthropic: the stream sent message as a string; expected an object", 0 },
  { &anthropic, "0 message.model=4", "anthropic: the stream sent message.model as a number; expected a string", 0 },
  { &anthropic, "0 message.usage.input_tokens=true",
    "anthropic: the stream sent message.usage.input_tokens as a boolean; expected a non-negative integer", 0 },
  { &anthropic, "7 usage.output_tokens=\"x\"",
    "anthropic: the stream sent usage.output_tokens as a string; expected a non-negative integer", 3 },
  { &anthropic, "7 usage=6", "anthropic: the stream sent usage as a number; expected an object", 3 },
  { &anthropic, "7 delta.stop_reason=false",
    "anthropic: the stream sent delta.stop_reason as a boolean; expected a string", 3 },
  { &anthropic, "7 delta.stop_sequence=0",
    "anthropic: the stream sent delta.stop_sequence as a number; expected a string", 3 },
};

static void
test_wrong_types (void **state)
{
  gsize n = G_N_ELEMENTS (wrong_types);
  g_autofree Case **cases = g_new0 (Case *, n);

  for (gsize i = 0; i < n; i++)
    cases[i] = case_new (wrong_types[i].provider, &(CaseSpec) { .scenario = "patch",
                                                                .arg = wrong_types[i].patch });
  run_cases (cases, (guint) n);
  for (gsize i = 0; i < n; i++)
    {
      /* Not retried: the stream had begun. */
      assert_failed_exactly (cases[i], wrong_types[i].message, 1);
      assert_tokens (cases[i], wrong_types[i].provider->tokens, wrong_types[i].tokens);
      case_free (cases[i]);
    }
}

/* Without `event:` fields (a proxy that drops them), the data's type
 * says what each event is, and it too must be a string. */
static void
test_wrong_event_type (void **state)
{
  const char *fixture = "anthropic-stream-no-event-names.sse";
  g_autoptr (Case) ok = case_new (&anthropic, &(CaseSpec) { .fixture = fixture });
  g_autoptr (Case) bad = case_new (&anthropic, &(CaseSpec) { .scenario = "patch", .arg = "3 type=5",
                                                             .fixture = fixture });
  Case *cases[] = { ok, bad };

  run_cases (cases, 2);
  assert_succeeded (ok);
  assert_fixture_result (ok);
  assert_failed_exactly (bad, "anthropic: the stream sent type as a number; expected a string", 1);
  assert_tokens (bad, anthropic.tokens, 0);
}

/* What the real APIs send for "none" — null, or nothing at all — is
 * accepted wherever chime reads it. */
static const TypeCase accepted[] = {
  { &openai, "0 choices.0.delta.content=null" },
  { &openai, "1 choices.0.index" },
  { &openai, "1 choices.0.logprobs" },
  { &openai, "2 system_fingerprint=null" },
  { &openai, "4 choices.0.finish_reason" },
  { &openai, "5 choices.0.delta" },
  { &openai, "5 usage=null" },
  { &openai, "6 choices" },
  { &openai, "6 choices=null" },
  { &openai, "6 usage.completion_tokens_details=null" },
  { &openai, "6 usage.prompt_tokens_details={\"cached_tokens\":null}" },
  { &anthropic, "0 message.usage.cache_read_input_tokens=null" },
  { &anthropic, "0 message.stop_reason=null" },
  { &anthropic, "1 content_block.text=null" },
  { &anthropic, "1 content_block" },
  { &anthropic, "7 delta.stop_sequence" },
  { &anthropic, "7 usage.input_tokens=null" },
};

static void
test_absent_and_null_accepted (void **state)
{
  gsize n = G_N_ELEMENTS (accepted);
  g_autofree Case **cases = g_new0 (Case *, n);

  for (gsize i = 0; i < n; i++)
    cases[i] = case_new (accepted[i].provider, &(CaseSpec) { .scenario = "patch", .arg = accepted[i].patch });
  run_cases (cases, (guint) n);
  for (gsize i = 0; i < n; i++)
    {
      assert_succeeded (cases[i]);
      assert_fixture_result (cases[i]);
      assert_requests (cases[i], 1);
      case_free (cases[i]);
    }
}

/* A stream with content: null beside tool calls, as the API sends it:
 * each piece of the call is a token of no text (as ChatOpenAI reports
 * it), and the call is on the result (tests/test-providers-tools.c has
 * the rest). */
static void
test_tool_stream_accepted (void **state)
{
  static const char *const empty[] = { "", "", "" };
  g_autoptr (Case) c = case_new (&openai, &(CaseSpec) { .fixture = "openai-tool-stream.sse" });
  json_t *message, *metadata;

  run_case (c);
  assert_succeeded (c);
  assert_tokens (c, empty, 3);
  message = llm_result_message (json_object_get (c->result, "llm_result"));
  metadata = json_object_get (message, "response_metadata");
  assert_string_equal (json_string_value (json_object_get (metadata, "finish_reason")), "tool_calls");
  /* The recording is cut after two fragments: its arguments ({"city) do
   * not parse. */
  assert_int_equal (json_array_size (json_object_get (message, "invalid_tool_calls")), 1);
}

/* chime always asks for a stream; a server that answers with a whole
 * chat.completion instead is refused by its content type, not parsed. */
static void
test_non_streaming_body_refused (void **state)
{
  g_autoptr (Case) c = case_new (&openai, &(CaseSpec) { .fixture = "openai-completion.json" });
  g_autofree char *url = endpoint_url (&openai);
  g_autofree char *expected = g_strdup_printf ("openai: expected an event stream (text/event-stream) from %s, "
                                               "got application/json", url);

  run_case (c);
  assert_failed_exactly (c, expected, 1);
}

/* ------------------------------------------------------------------ */
/* HTTP: redirects, encodings, header limits                          */
/* ------------------------------------------------------------------ */

static void
test_redirects (void **state)
{
  g_autofree char *openai_url = endpoint_url (&openai);
  g_autofree char *anthropic_url = endpoint_url (&anthropic);
  g_autofree char *proxy = g_strdup_printf ("http://127.0.0.1:%u/proxy", server.port);
  struct {
    const ProviderCase *provider;
    const char         *arg;
    char               *message;
  } redirects[] = {
    { &openai, "301,https://api.example.com/v2/chat/completions",
      g_strdup_printf ("openai: HTTP 301 from %s: redirects are not followed (Location: "
                       "https://api.example.com/v2/chat/completions); set base_url in [model m] to the final "
                       "address: base_url = https://api.example.com/v2", openai_url) },
    /* A relative Location is named as the address it stands for. */
    { &anthropic, "302,/proxy/v1/messages",
      g_strdup_printf ("anthropic: HTTP 302 from %s: redirects are not followed (Location: %s/v1/messages); "
                       "set base_url in [model m] to the final address: base_url = %s",
                       anthropic_url, proxy, proxy) },
    { &openai, "303,https://api.example.com/done",
      g_strdup_printf ("openai: HTTP 303 from %s: redirects are not followed (Location: "
                       "https://api.example.com/done); set base_url in [model m] to the final address",
                       openai_url) },
    /* A login page is not an API: no base_url to suggest. */
    { &anthropic, "307,https://login.example.com/sso",
      g_strdup_printf ("anthropic: HTTP 307 from %s: redirects are not followed (Location: "
                       "https://login.example.com/sso); set base_url in [model m] to the final address",
                       anthropic_url) },
    { &openai, "308",
      g_strdup_printf ("openai: HTTP 308 from %s: redirects are not followed (the response has no Location); "
                       "set base_url in [model m] to the final address", openai_url) },
  };
  Case *cases[G_N_ELEMENTS (redirects)];

  for (guint i = 0; i < G_N_ELEMENTS (redirects); i++)
    cases[i] = case_new (redirects[i].provider, &(CaseSpec) { .scenario = "redirect", .arg = redirects[i].arg,
                                                              .model_extra = "max_retries = 2\n" });
  run_cases (cases, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (redirects); i++)
    {
      /* Not retried: the same request gets the same answer. */
      assert_failed_exactly (cases[i], redirects[i].message, 1);
      g_free (redirects[i].message);
      case_free (cases[i]);
    }
}

static void
test_unasked_encoding (void **state)
{
  g_autofree char *openai_url = endpoint_url (&openai);
  g_autofree char *anthropic_url = endpoint_url (&anthropic);
  g_autofree char *gzip = g_strdup_printf ("openai: the response from %s is compressed (Content-Encoding: gzip), "
                                           "which chime did not ask for (it sends no Accept-Encoding) and cannot "
                                           "read", openai_url);
  g_autofree char *br = g_strdup_printf ("anthropic: the response from %s is compressed (Content-Encoding: br), "
                                         "which chime did not ask for (it sends no Accept-Encoding) and cannot "
                                         "read", anthropic_url);
  g_autofree char *asked = g_strdup_printf ("openai: the response from %s is compressed (Content-Encoding: "
                                            "deflate), as the Accept-Encoding of 'headers' in [model m] asks, and "
                                            "chime reads only uncompressed responses: remove that header",
                                            openai_url);
  g_autofree char *error_body = g_strdup_printf ("anthropic: HTTP 529 from %s: its body is compressed "
                                                 "(Content-Encoding: gzip), which chime did not ask for (it sends "
                                                 "no Accept-Encoding) and cannot read (gave up after 2 attempts)",
                                                 anthropic_url);
  Case *cases[] = {
    case_new (&openai, &(CaseSpec) { .scenario = "encoded", .arg = "gzip" }),
    case_new (&anthropic, &(CaseSpec) { .scenario = "encoded", .arg = "br" }),
    case_new (&openai, &(CaseSpec) { .scenario = "encoded", .arg = "deflate",
                                     .header = "Accept-Encoding: deflate" }),
    /* An error status is still retried; its body is not quoted as garbage. */
    case_new (&anthropic, &(CaseSpec) { .scenario = "encoded", .arg = "gzip,529",
                                        .model_extra = "max_retries = 1\n" }),
    /* identity is no encoding at all. */
    case_new (&openai, &(CaseSpec) { .scenario = "encoded", .arg = "identity" }),
  };

  run_cases (cases, G_N_ELEMENTS (cases));
  assert_failed_exactly (cases[0], gzip, 1);
  assert_tokens (cases[0], NULL, 0);
  assert_failed_exactly (cases[1], br, 1);
  assert_failed_exactly (cases[2], asked, 1);
  assert_failed_exactly (cases[3], error_body, 2);
  assert_succeeded (cases[4]);
  assert_fixture_result (cases[4]);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    case_free (cases[i]);
}

static void
test_header_limit (void **state)
{
  g_autofree char *url = endpoint_url (&openai);
  g_autofree char *many = g_strdup_printf ("openai: the request to %s failed: the response headers exceed the "
                                           "HTTP client's limit of 65536 bytes (CHIME_HTTP_MAX_HEADER_SIZE): ",
                                           url);
  g_autofree char *single = g_strdup_printf ("openai: the request to %s failed: the response headers exceed the "
                                             "HTTP client's limit of 65536 bytes (CHIME_HTTP_MAX_HEADER_SIZE): one "
                                             "header line alone is over libcurl's limit of 102400 bytes", url);
  Case *cases[] = {
    /* Under the limit with the server's own headers. */
    case_new (&openai, &(CaseSpec) { .scenario = "big-headers", .arg = "64000" }),
    case_new (&anthropic, &(CaseSpec) { .scenario = "big-headers", .arg = "64000,single" }),
    case_new (&openai, &(CaseSpec) { .scenario = "big-headers", .arg = "70000", .model_extra = "max_retries = 0\n" }),
    case_new (&openai, &(CaseSpec) { .scenario = "big-headers", .arg = "200000,single",
                                     .model_extra = "max_retries = 0\n" }),
  };

  run_cases (cases, G_N_ELEMENTS (cases));
  assert_succeeded (cases[0]);
  assert_fixture_result (cases[0]);
  assert_succeeded (cases[1]);
  assert_fixture_result (cases[1]);
  /* Stopped at the first line over the limit: 1 KiB lines. */
  assert_failed_with (cases[2], many);
  assert_true (g_str_has_prefix (cases[2]->error->message, many));
  {
    const char *rest = cases[2]->error->message + strlen (many);
    char *end;
    guint64 bytes = g_ascii_strtoull (rest, &end, 10);

    if (bytes <= 65536 || bytes > 65536 + 1024 || !g_str_has_prefix (end, " bytes so far, in "))
      fail_msg ("%s: %s", cases[2]->label, cases[2]->error->message);
  }
  assert_requests (cases[2], 1);
  assert_failed_exactly (cases[3], single, 1);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    case_free (cases[i]);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_wrong_types),
    cmocka_unit_test (test_wrong_event_type),
    cmocka_unit_test (test_absent_and_null_accepted),
    cmocka_unit_test (test_tool_stream_accepted),
    cmocka_unit_test (test_non_streaming_body_refused),
    cmocka_unit_test (test_redirects),
    cmocka_unit_test (test_unasked_encoding),
    cmocka_unit_test (test_header_limit),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
