/* The providers on a stream that goes well: the replayed tokens and the
 * LLMResult with its metadata, what went over the wire, and the token
 * templates that parse most events without a JSON parser.
 * Whole pipelines from INI text against the mock LLM server, over real
 * sockets, for each provider (OpenAI and Anthropic). */
#include "provider-helpers.h"

#include "providers/provider-common.h"
#include "providers/json-literal.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* The replayed fixtures                                              */
/* ------------------------------------------------------------------ */

static void
test_replay (void **state)
{
  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      const ProviderCase *p = providers[i];
      g_autoptr (Case) c = case_new (p, &(CaseSpec) { .model_extra = "temperature = 0.5\n"
                                                                      "stop = [\"\\n\\n\", \"END\"]\n"
                                                                      "extra_body = {\"top_p\": 0.25}\n" });
      g_autoptr (json_t) requests = NULL;
      g_autoptr (json_t) body = NULL;
      g_autoptr (json_t) ends = NULL;
      json_t *headers, *usage, *result_usage;

      run_case (c);
      assert_succeeded (c);
      assert_tokens (c, p->tokens, g_strv_length ((char **) p->tokens));
      assert_fixture_result (c);
      assert_requests (c, 1);

      /* The llm_end event carries the same LLMResult. */
      ends = trace_events (c, "llm_end");
      assert_int_equal (json_array_size (ends), 1);
      usage = json_object_get (llm_result_message (json_object_get (json_array_get (ends, 0),
                                                                              "response")),
                               "usage_metadata");
      assert_int_equal (json_integer_value (json_object_get (usage, "total_tokens")), p->total_tokens);

      /* What went over the wire. */
      requests = server_requests (c->mock_key);
      headers = json_object_get (json_array_get (requests, 0), "headers");
      body = json_loads (json_string_value (json_object_get (json_array_get (requests, 0), "body")), 0, NULL);
      assert_non_null (body);
      assert_string_equal (json_string_value (json_object_get (body, "model")), p->model);
      assert_true (json_is_true (json_object_get (body, "stream")));
      assert_true (json_real_value (json_object_get (body, "top_p")) == 0.25);
      assert_true (json_real_value (json_object_get (body, "temperature")) == 0.5);
      assert_string_equal (json_string_value (json_object_get (headers, "accept")), "text/event-stream");
      if (p == &openai)
        {
          assert_string_equal (json_string_value (json_object_get (headers, "authorization")),
                               "Bearer " API_KEY);
          assert_true (json_is_true (json_object_get (json_object_get (body, "stream_options"),
                                                      "include_usage")));
          assert_string_equal (json_string_value (json_object_get (json_array_get (
                                 json_object_get (body, "messages"), 0), "role")), "system");
          assert_string_equal (json_string_value (json_array_get (json_object_get (body, "stop"), 0)),
                               "\n\n");
          /* completion_tokens_details.reasoning_tokens, as LangChain maps it. */
          result_usage = json_object_get (llm_result_message (json_object_get (c->result, "llm_result")),
                                          "usage_metadata");
          assert_true (json_is_integer (json_object_get (json_object_get (result_usage, "output_token_details"),
                                                         "reasoning")));
        }
      else
        {
          assert_string_equal (json_string_value (json_object_get (headers, "x-api-key")), API_KEY);
          assert_string_equal (json_string_value (json_object_get (headers, "anthropic-version")),
                               "2023-06-01");
          assert_int_equal (json_integer_value (json_object_get (body, "max_tokens")), 1024);
          /* chime's system message becomes the top-level system. */
          assert_string_equal (json_string_value (json_object_get (body, "system")), "Be brief.");
          assert_int_equal (json_array_size (json_object_get (body, "messages")), 1);
          assert_string_equal (json_string_value (json_array_get (json_object_get (body, "stop_sequences"), 1)),
                               "END");
        }
    }
}

/* ------------------------------------------------------------------ */
/* Token templates                                                    */
/* ------------------------------------------------------------------ */

#define TPL_PREFIX "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
#define TPL_SUFFIX "},\"finish_reason\":null}]}"

static const char *
template_match (ChimeTokenTemplate *template,
                const char         *data)
{
  return chime_token_template_match (template, "message", data, strlen (data));
}

/* The raw-stream match as take_raw_event() uses it: @data followed by
 * more of the stream; a match must end exactly where @data does. */
static const char *
template_match_raw (ChimeTokenTemplate *template,
                    const char         *data)
{
  g_autofree char *stream = g_strconcat (data, "\n\ndata: more", NULL);
  const char *data_end = NULL;
  const char *token = chime_token_template_match_raw (template, stream, stream + strlen (stream), &data_end);

  return token != NULL && data_end == stream + strlen (data) ? token : NULL;
}

static void
test_token_template_unit (void **state)
{
  g_autoptr (ChimeTokenTemplate) template = chime_token_template_new ();
  const char *learned = TPL_PREFIX "\"Hi\"" TPL_SUFFIX;
  const char *refused[] = {
    TPL_PREFIX "\"\"" TPL_SUFFIX,                         /* empty: the provider sends no token */
    TPL_PREFIX "\"a\\u0000b\"" TPL_SUFFIX,                /* jansson refuses NUL */
    TPL_PREFIX "\"\\ud800\"" TPL_SUFFIX,                  /* lone surrogate */
    TPL_PREFIX "\"\\udc00\\ud800\"" TPL_SUFFIX,           /* pair in the wrong order */
    TPL_PREFIX "\"a\tb\"" TPL_SUFFIX,                     /* raw control character */
    TPL_PREFIX "\"\xff\"" TPL_SUFFIX,                     /* not UTF-8 */
    TPL_PREFIX "\"\xed\xa0\x80\"" TPL_SUFFIX,             /* a surrogate in UTF-8 */
    TPL_PREFIX "\"\\x41\"" TPL_SUFFIX,                    /* no such escape */
    TPL_PREFIX "\"\\u12\"" TPL_SUFFIX,                    /* short \u */
    TPL_PREFIX "\"a\",\"content\":\"b\"" TPL_SUFFIX,      /* two literals where one was */
    TPL_PREFIX "\"a\\\"" TPL_SUFFIX,                      /* the quote is escaped: no end */
    TPL_PREFIX "null" TPL_SUFFIX,                         /* not a string */
    "{\"id\":\"c2\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"" TPL_SUFFIX,
    TPL_PREFIX "\"x\"},\"finish_reason\":\"stop\"}]}",    /* another field changed */
    TPL_PREFIX "\"x\"" TPL_SUFFIX " ",                    /* one byte more */
    TPL_PREFIX,                                           /* shorter than the template */
    "",
  };

  /* Nothing learned yet. */
  assert_null (template_match (template, learned));

  assert_true (chime_token_template_learn (template, "message", learned, strlen (learned), "Hi"));
  assert_string_equal (template_match (template, TPL_PREFIX "\" there\"" TPL_SUFFIX), " there");
  assert_string_equal (template_match (template, TPL_PREFIX "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"" TPL_SUFFIX),
                       "a\"b\\c/d\b\f\n\r\t");
  assert_string_equal (template_match (template, TPL_PREFIX "\"caf\\u00e9 \xc3\xa9 \\ud83d\\ude00\"" TPL_SUFFIX),
                       "caf\xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80");
  /* The token may be any text, even one found elsewhere in the event. */
  assert_string_equal (template_match (template, TPL_PREFIX "\"m\"" TPL_SUFFIX), "m");
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    if (template_match (template, refused[i]) != NULL || template_match_raw (template, refused[i]) != NULL)
      fail_msg ("matched: %s", refused[i]);
  /* In the raw stream, the same answers. */
  assert_string_equal (template_match_raw (template, TPL_PREFIX "\" there\"" TPL_SUFFIX), " there");
  assert_string_equal (template_match_raw (template, TPL_PREFIX "\"a\\\"b\\\\c\"" TPL_SUFFIX), "a\"b\\c");
  {
    /* A stream that ends inside the literal or the suffix is left to the
     * parser, which waits for the rest. */
    const char *cut = TPL_PREFIX "\"there\"},\"fin";
    const char *data_end = NULL;

    assert_null (chime_token_template_match_raw (template, cut, cut + strlen (cut), &data_end));
    assert_null (chime_token_template_match_raw (template, cut, cut + strlen (TPL_PREFIX) + 3, &data_end));
  }
  /* Another SSE event type is another event. */
  assert_null (chime_token_template_match (template, "content_block_delta", learned, strlen (learned)));
  chime_token_template_forget (template);
  assert_null (template_match (template, learned));
  /* Raw matches are for `message` events only: other types have an
   * `event:` line before their data. */
  assert_true (chime_token_template_learn (template, "content_block_delta", learned, strlen (learned), "Hi"));
  assert_null (template_match_raw (template, learned));
  chime_token_template_forget (template);

  /* The token is found by its decoded text. */
  learned = TPL_PREFIX "\"line\\n\\u00e9\"" TPL_SUFFIX;
  assert_true (chime_token_template_learn (template, "message", learned, strlen (learned), "line\n\xc3\xa9"));
  assert_string_equal (template_match (template, TPL_PREFIX "\"x\"" TPL_SUFFIX), "x");

  /* Not learned when the token's text is not there exactly once: which
   * literal it came from cannot be told. */
  learned = TPL_PREFIX "\"m\"" TPL_SUFFIX;
  assert_false (chime_token_template_learn (template, "message", learned, strlen (learned), "m"));
  assert_null (template_match (template, TPL_PREFIX "\"x\"" TPL_SUFFIX));
  learned = TPL_PREFIX "\"Hi\"" TPL_SUFFIX;
  assert_false (chime_token_template_learn (template, "message", learned, strlen (learned), "Ho"));
  assert_null (template_match (template, TPL_PREFIX "\"x\"" TPL_SUFFIX));
}

/* Streams whose token events mostly share a template, with escapes, an
 * empty token, tokens that are also other strings of the event, a field
 * that changes on the way, another event type: every token arrives, in
 * order, and what the other fields said last is what the result says. */
static void
test_token_template_streams (void **state)
{
  static const char *const openai_expected[] = {
    "Hello", " wor\"ld", "\n\t\\/", "caf\xc3\xa9", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "fp_a", " changed",
    " again", "gpt-4o-2024-08-06", " end", NULL
  };
  static const char *const anthropic_expected[] = {
    "Hello", " wor\"ld", "\xc3\xa9", " one", " two", " three", NULL
  };
  const char *const *expected[] = { openai_expected, anthropic_expected };
  const char *fixtures[] = { "openai-template-stream.sse", "anthropic-template-stream.sse" };

  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      g_autoptr (Case) c = case_new (providers[i], &(CaseSpec) { .fixture = fixtures[i] });
      g_autoptr (json_t) tokens = NULL;
      g_autoptr (GString) text = g_string_new (NULL);
      json_t *message, *info;
      guint n = g_strv_length ((char **) expected[i]);

      run_case (c);
      assert_succeeded (c);
      tokens = trace_events (c, "llm_new_token");
      if (json_array_size (tokens) != n)
        fail_msg ("%s: %zu tokens instead of %u", c->label, json_array_size (tokens), n);
      for (guint j = 0; j < n; j++)
        {
          assert_string_equal (json_string_value (json_object_get (json_array_get (tokens, j), "token")),
                               expected[i][j]);
          g_string_append (text, expected[i][j]);
        }
      assert_string_equal (json_string_value (json_object_get (c->result, "output")), text->str);
      message = llm_result_message (json_object_get (c->result, "llm_result"));
      info = json_object_get (json_array_get (json_array_get (json_object_get (
               json_object_get (c->result, "llm_result"), "generations"), 0), 0), "generation_info");
      if (providers[i] == &openai)
        assert_string_equal (json_string_value (json_object_get (info, "system_fingerprint")), "fp_b");
      else
        assert_int_equal (json_integer_value (json_object_get (json_object_get (info, "skipped_deltas"),
                                                               "input_json_delta")), 1);
      assert_non_null (message);
    }
}

/* Token events that the template matches but that are more than one
 * data line and a blank line in the raw stream (CRLF or CR line ends,
 * a comment, an id, no space after "data:", an explicit event type, a
 * field after the data, extra blank lines) go through the SSE parser;
 * those between are taken from the raw bytes. Every token arrives, in
 * order, either way. */
static void
test_token_template_line_forms (void **state)
{
  g_autoptr (Case) c = case_new (&openai, &(CaseSpec) { .fixture = "openai-template-forms.sse" });
  g_autoptr (json_t) tokens = NULL;
  g_autoptr (GString) text = g_string_new (NULL);

  run_case (c);
  assert_succeeded (c);
  tokens = trace_events (c, "llm_new_token");
  assert_int_equal (json_array_size (tokens), 9);
  for (guint j = 0; j < 9; j++)
    {
      g_autofree char *expected = g_strdup_printf ("t%u", j + 1);

      assert_string_equal (json_string_value (json_object_get (json_array_get (tokens, j), "token")), expected);
      g_string_append (text, expected);
    }
  assert_string_equal (json_string_value (json_object_get (c->result, "output")), text->str);
}

/* ------------------------------------------------------------------ */

/* The token literal decoder against jansson, one byte at a time: every
 * byte a literal may hold as it is is decoded as jansson decodes it; a
 * quote ends the literal there; a control character, a backslash before a
 * letter that is no escape, and a byte that is not UTF-8 on its own are
 * refused (left to jansson, which refuses them too). */
static void
test_literal_decoder_reads_each_byte_as_jansson (void **state)
{
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint b = 1; b < 256; b++)
    {
      char literal[] = { '"', 'a', (char) b, 'z', '"' };
      const char *end = literal + sizeof literal;
      const char *after = chime_json_decode_string_literal (literal, end, out);
      g_autofree char *array = g_strdup_printf ("[%.*s]", (int) sizeof literal, literal);
      g_autoptr (json_t) parsed = json_loads (array, 0, NULL);

      if (b == '"')
        {
          assert_ptr_equal (after, literal + 3);
          assert_string_equal (out->str, "a");
        }
      else if (parsed != NULL)
        {
          if (after != end)
            fail_msg ("byte 0x%02x: jansson reads the literal, the decoder does not", b);
          assert_string_equal (out->str, json_string_value (json_array_get (parsed, 0)));
        }
      else if (after != NULL)
        fail_msg ("byte 0x%02x: jansson refuses the literal, the decoder does not", b);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_replay),
    cmocka_unit_test (test_token_template_unit),
    cmocka_unit_test (test_literal_decoder_reads_each_byte_as_jansson),
    cmocka_unit_test (test_token_template_streams),
    cmocka_unit_test (test_token_template_line_forms),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
