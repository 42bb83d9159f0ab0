/* Pipelines run in-process: how a run ends when handlers fail it, and
 * the stream the sequence yields as the parser transforms the model's
 * chunks. */
#include "test-helpers.h"
#include "pipeline-helpers.h"
#include "json-compact.h"

#include "pipeline/parser-stream.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline-error.h"

#include <string.h>

static void
collect_chunk (json_t  *chunk,
               gpointer chunks)
{
  json_array_append (chunks, chunk);
}

/* Runs @ini once; returns the result or NULL with @error. With @chunks,
 * the run's output stream is appended to it as it comes. */
static json_t *
run_pipeline_streaming (const char *ini,
                        json_t     *chunks,
                        GError    **error)
{
  g_autoptr (GHashTable) variables = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (ChimePipeline) pipeline = NULL;

  pipeline = chime_pipeline_new_from_data (ini, "test.ini", test_tmpdir (), NULL, variables, error);
  if (pipeline == NULL)
    return NULL;
  if (chunks != NULL)
    chime_pipeline_set_chunk_func (pipeline, collect_chunk, chunks);
  return test_pipeline_run (pipeline, variables, error);
}

static json_t *
run_pipeline (const char *ini,
              GError    **error)
{
  return run_pipeline_streaming (ini, NULL, error);
}

/* A raise_error handler that receives only tokens fails the run, even
 * though no queued handler takes the fences after its failure. */
static void
run_raise_error_on_tokens (const char *delivery)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ini = g_strdup_printf (
    "[runtime]\ndelivery = %s\n"
    "[pipeline]\nprompt = count\nmodel = m\n"
    "[model m]\nprovider = fake\nchunks = [\"0\", \"1\", \"2\", \"3\"]\n"
    "[handler strict]\nplugin = counter\nfail_at = 2\nraise_error = true\n", delivery);
  json_t *result = run_pipeline (ini, &error);

  assert_null (result);
  assert_non_null (error);
  assert_string_contains (error->message, "counter refuses token 2");
}

static void
test_raise_error_on_tokens_fenced (void **state)
{
  run_raise_error_on_tokens ("fenced");
}

static void
test_raise_error_on_tokens_awaited (void **state)
{
  run_raise_error_on_tokens ("awaited");
}

static void
test_raise_error_on_tokens_background (void **state)
{
  run_raise_error_on_tokens ("background");
}

/* Without raise_error the same failure is only logged. */
static void
test_handler_failure_without_raise_error (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = NULL;

  test_log_capture_start ();
  result = run_pipeline ("[pipeline]\nprompt = count\nmodel = m\n"
                         "[model m]\nprovider = fake\nchunks = [\"0\", \"1\"]\n"
                         "[handler lenient]\nplugin = counter\nfail_at = 1\n", &error);
  assert_null (error);
  assert_string_equal (json_string_value (json_object_get (result, "output")), "01");
  assert_true (test_log_contains ("handler 'lenient' (counter) failed on llm_new_token: "
                                  "counter refuses token 1"));
  test_log_capture_stop ();
}

/* The fake model's exact chunks are a JSON array of strings; both ways
 * of getting that wrong name the file, section, line and the fix. */
static void
test_fake_chunks_must_be_strings (void **state)
{
  static const char *const values[] = { "[\"a\", 2]", "not json", "[\"a\", \"b\",]", "[\"a\"] x",
                                        "[\"a\\u0000b\"]", "[\"\\ud800\"]" };
  static const char *const bad_json =
    "invalid value for 'chunks' in [model m] of test.ini (line 6): expected a JSON array of strings "
    "like [\"Hello\", \" world\"]: ";
  const char *const expected[] = {
    "invalid value for 'chunks' in [model m] of test.ini (line 6): element 1 is not a string",
    bad_json, bad_json, bad_json, bad_json, bad_json,
  };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *ini = g_strdup_printf ("[pipeline]\nprompt = count\nmodel = m\n"
                                              "[model m]\nprovider = fake\nchunks = %s\n", values[i]);
      json_t *result = run_pipeline (ini, &error);

      assert_null (result);
      assert_string_contains (error->message, expected[i]);
    }
}

/* The fake model streams exactly the strings jansson reads from its
 * chunks (they are read without jansson when they can be: a 50,000-chunk
 * list as a jansson tree was most of a long run's memory). */
static void
test_fake_chunks_read_as_jansson_reads_them (void **state)
{
  static const char *const values[] = {
    "[\"a\\nb\", \"\\u00e9\\t\", \"\\ud83d\\ude00\", \"\\\"q\\\" \\\\ \\/\", \"\", \" sp \", \"\xc3\xa9\"]",
    "  [ \"x\" ,\"y\"\t]  ",
    "[]",
    "[\"\\b\\f\\r\"]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (json_t) chunks = json_array ();
      g_autofree char *ini = g_strdup_printf ("[pipeline]\nprompt = count\nmodel = m\n"
                                              "[model m]\nprovider = fake\nchunks = %s\n", values[i]);
      g_autoptr (json_t) result = run_pipeline_streaming (ini, chunks, &error);
      g_autoptr (json_t) expected = json_loads (values[i], 0, NULL);

      assert_null (error);
      assert_non_null (expected);
      if (!json_equal (chunks, expected))
        {
          g_autofree char *text = json_dumps (chunks, JSON_COMPACT);
          fail_msg ("chunks = %s streamed %s", values[i], text);
        }
    }
}

/* The runner writes results with its own compact writer: byte for byte
 * what jansson writes, for every kind of value and every byte that needs
 * an escape (json-compact.h says why). */
static void
test_compact_json_is_janssons (void **state)
{
  static const char *const texts[] = {
    "{\"output\":\"a \\\"quoted\\\" \\\\ line\\nnext\\ttab\\r\\b\\f\\u0001\\u001f\\u007f /\","
      "\"n\":-42,\"big\":9007199254740993,\"r\":0.1,\"e\":1e300,\"t\":true,\"f\":false,\"z\":null,"
      "\"utf8\":\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\",\"\\u00e9 key\\n\":[],\"o\":{},"
      "\"nested\":[[1,2.5,[\"x\"]],{\"a\":{\"b\":[null]}}]}",
    "[\"\",\"\\u0000\"]",
    "\"just a string\"",
    "3",
    "-0.0",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (json_t) value = json_loads (texts[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
      g_autofree char *expected = NULL;
      g_autofree char *written = NULL;
      gsize length;

      assert_non_null (value);
      expected = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
      written = chime_json_dump_compact (value, &length);
      assert_string_equal (written, expected);
      assert_int_equal (length, strlen (expected));
    }
  /* Each byte that needs an escape (and DEL and a UTF-8 é, which need
   * none), at every place of a run of 40 bytes that the writer scans
   * sixteen and eight at a time. */
  for (guint at = 0; at < 39; at++)
    for (const char *special = "\"\\\n\001\037\177\xc3"; *special != '\0'; special++)
      {
        char text[41];
        g_autoptr (json_t) value = NULL;
        g_autofree char *expected = NULL;
        g_autofree char *written = NULL;

        memset (text, 'a', 40);
        text[40] = '\0';
        text[at] = *special;
        if ((guchar) *special == 0xc3)
          text[at + 1] = (char) 0xa9;
        value = json_string (text);
        assert_non_null (value);
        expected = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
        written = chime_json_dump_compact (value, NULL);
        assert_string_equal (written, expected);
      }
}

/* ------------------------------------------------------------------
 * The sequence's stream
 * ---------------------------------------------------------------- */

static void
assert_json_equal_text (json_t     *value,
                        const char *expected_text)
{
  g_autoptr (json_t) expected = json_loads (expected_text, JSON_DECODE_ANY, NULL);
  g_autofree char *text = value != NULL ? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY)
                                        : g_strdup ("(nothing)");

  assert_non_null (expected);
  if (value == NULL || !json_equal (value, expected))
    fail_msg ("expected %s, got %s", expected_text, text);
}

/* LangChain's parse_partial_json: open strings, arrays and objects are
 * closed, an unfinished tail is dropped, a fence may still be open. */
static void
test_partial_json (void **state)
{
  static const struct { const char *text, *expected; } cases[] = {
    { "{\"setup\": \"Why", "{\"setup\": \"Why\"}" },
    { "{\"setup\": \"Why\", \"punchline\"", "{\"setup\": \"Why\"}" },
    { "{\"a\": [1, 2, {\"b\": tr", "{\"a\": [1, 2, {}]}" },
    { "{\"a\": \"line\nbreak", "{\"a\": \"line\\nbreak\"}" },
    { "{\"a\": \"back\\", "{\"a\": \"back\"}" },
    { "```json\n{\"a\": 1, \"b\": [\"x", "{\"a\": 1, \"b\": [\"x\"]}" },
    { "[1, 2", "[1, 2]" },
    { "42", "42" },
    { "{\"a", "{}" },
  };
  static const char *const nothing[] = { "", "   ", "```json", "{\"a\": 1]" };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (json_t) value = chime_parse_partial_json (cases[i].text);
      assert_json_equal_text (value, cases[i].expected);
    }
  for (guint i = 0; i < G_N_ELEMENTS (nothing); i++)
    {
      g_autoptr (json_t) value = chime_parse_partial_json (nothing[i]);
      if (value != NULL)
        fail_msg ("'%s' parsed", nothing[i]);
    }
}

/* The str parser yields every chunk of the model as it is, the empty ones
 * too (LangChain.js streams the same five chunks for this model). */
static void
test_str_parser_streams_each_chunk (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) chunks = json_array ();
  g_autoptr (json_t) result = run_pipeline_streaming (
    "[pipeline]\nprompt = Tell me a joke\nmodel = m\n"
    "[model m]\nprovider = fake\nchunks = [\"\", \"Why\", \" atoms?\", \"\"]\n", chunks, &error);

  assert_null (error);
  assert_json_equal_text (chunks, "[\"\", \"Why\", \" atoms?\", \"\"]");
  assert_string_equal (json_string_value (json_object_get (result, "output")), "Why atoms?");
}

/* The json parser yields the growing object each time it changes: the
 * same two values LangChain.js's JsonOutputParser streams for these
 * chunks. The output is the whole text parsed. */
static void
test_json_parser_streams_partial_objects (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) chunks = json_array ();
  g_autoptr (json_t) result = run_pipeline_streaming (
    "[pipeline]\nprompt = Tell me a joke\nmodel = m\nparser = json\n"
    "[model m]\nprovider = fake\n"
    "chunks = [\"{\\\"setup\\\": \\\"Why\", \"\\\", \\\"punchline\\\"\", \": \\\"atoms\\\"}\"]\n",
    chunks, &error);

  assert_null (error);
  assert_json_equal_text (chunks, "[{\"setup\": \"Why\"}, {\"setup\": \"Why\", \"punchline\": \"atoms\"}]");
  assert_json_equal_text (json_object_get (result, "output"), "{\"setup\": \"Why\", \"punchline\": \"atoms\"}");
}

/* What streamed before a failure stays streamed; the run fails. */
static void
test_stream_stops_at_the_failure (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) chunks = json_array ();
  g_autoptr (json_t) result = run_pipeline_streaming (
    "[pipeline]\nprompt = Tell me a joke\nmodel = m\n"
    "[model m]\nprovider = fake\nchunks = [\"Why\", \" don't\", \" scientists\"]\nfail_after = 2\n",
    chunks, &error);

  assert_null (result);
  assert_non_null (error);
  assert_string_contains (error->message, "failed after 2 chunks");
  assert_json_equal_text (chunks, "[\"Why\", \" don't\"]");
}

/* The lines of @log that start with @prefix, in order. */
static GPtrArray *
log_lines_with_prefix (const char *log,
                       const char *prefix)
{
  g_auto (GStrv) lines = test_read_lines (log);
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      g_ptr_array_add (found, g_strdup (lines[i]));
  return found;
}

/* A handler whose plugin declares CHIME_PLUGIN_WANTS_STREAM gets each
 * step's output chunks as chime.stream custom events: the parser's, then
 * the sequence's, after each token (what astream_events writes as
 * on_parser_stream and on_chain_stream). A handler without the flag on
 * the same run never sees them, and gets everything else the same. */
static void
test_stream_chunks_reach_only_handlers_wanting_them (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tap_log = test_path ("pipeline-tap.log");
  g_autofree char *plain_log = test_path ("pipeline-plain.log");
  g_autofree char *ini = g_strdup_printf (
    "[pipeline]\nprompt = Tell me a joke\nmodel = m\nparser = json\n"
    "[model m]\nprovider = fake\n"
    "chunks = [\"{\\\"setup\\\": \\\"Why\", \"\\\", \\\"punchline\\\"\", \": \\\"atoms\\\"}\"]\n"
    "[handler tap]\nplugin = recorder_stream\nlog = %s\n"
    "[handler plain]\nplugin = recorder_sync\nlog = %s\n", tap_log, plain_log);
  g_autoptr (json_t) result = run_pipeline (ini, &error);
  g_autoptr (GPtrArray) chunks = NULL;
  g_autoptr (GPtrArray) plain_custom = NULL;
  g_auto (GStrv) tap_all = NULL, plain_all = NULL;
  static const char *const expected[] = {
    "tap custom_event chime.stream parser {\"chunk\":{\"setup\":\"Why\"}}",
    "tap custom_event chime.stream chain {\"chunk\":{\"setup\":\"Why\"}}",
    "tap custom_event chime.stream parser {\"chunk\":{\"setup\":\"Why\",\"punchline\":\"atoms\"}}",
    "tap custom_event chime.stream chain {\"chunk\":{\"setup\":\"Why\",\"punchline\":\"atoms\"}}",
  };

  assert_null (error);
  assert_non_null (result);
  chunks = log_lines_with_prefix (tap_log, "tap custom_event");
  assert_int_equal (chunks->len, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    assert_string_equal (chunks->pdata[i], expected[i]);
  plain_custom = log_lines_with_prefix (plain_log, "plain custom_event");
  assert_int_equal (plain_custom->len, 0);
  /* The rest is the same for both: LangChain's callbacks of stream(). */
  tap_all = test_read_lines (tap_log);
  plain_all = test_read_lines (plain_log);
  assert_int_equal (g_strv_length (tap_all), g_strv_length (plain_all) + G_N_ELEMENTS (expected));
}

/* Without a handler that wants the stream, the pipeline emits no
 * chime.stream at all (and does not transform the chunks). */
static void
test_no_stream_chunks_without_a_handler_wanting_them (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log = test_path ("pipeline-untapped.log");
  g_autofree char *ini = g_strdup_printf (
    "[pipeline]\nprompt = Tell me a joke\nmodel = m\n"
    "[model m]\nprovider = fake\nchunks = [\"Why\", \" atoms?\"]\n"
    "[handler plain]\nplugin = recorder_sync\nlog = %s\n", log);
  g_autoptr (json_t) result = run_pipeline (ini, &error);
  g_autoptr (GPtrArray) custom = NULL;
  g_autoptr (GPtrArray) tokens = NULL;

  assert_null (error);
  assert_non_null (result);
  custom = log_lines_with_prefix (log, "plain custom_event");
  assert_int_equal (custom->len, 0);
  tokens = log_lines_with_prefix (log, "plain llm_new_token");
  assert_int_equal (tokens->len, 2);
}

typedef struct {
  GMainLoop *loop;
  guint      calls;
  json_t    *result;
  GError    *error;
} Answer;

static void
on_answer (json_t  *result,
           GError  *error,
           gpointer data)
{
  Answer *answer = data;

  answer->calls++;
  answer->result = result;
  answer->error = error;
  g_main_loop_quit (answer->loop);
}

/* A run cancelled before it starts ends as it starts, but its answer
 * still comes from the main loop, once, and not from inside the call
 * (as a GTask's would). */
static void
test_a_run_answers_from_the_loop_once (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) variables = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (ChimePipeline) pipeline = chime_pipeline_new_from_data (
    "[pipeline]\nprompt = hi\nmodel = m\n[model m]\nprovider = fake\nchunks = [\"a\"]\n",
    "test.ini", test_tmpdir (), NULL, variables, &error);
  Answer answer = { loop };

  assert_non_null (pipeline);
  g_cancellable_cancel (cancellable);
  chime_pipeline_run_async (pipeline, variables, cancellable, on_answer, &answer);
  assert_int_equal (answer.calls, 0);
  g_main_loop_run (loop);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  assert_int_equal (answer.calls, 1);
  assert_null (answer.result);
  assert_true (g_error_matches (answer.error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED));
  g_clear_error (&answer.error);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_raise_error_on_tokens_fenced),
    cmocka_unit_test (test_raise_error_on_tokens_awaited),
    cmocka_unit_test (test_raise_error_on_tokens_background),
    cmocka_unit_test (test_handler_failure_without_raise_error),
    cmocka_unit_test (test_fake_chunks_must_be_strings),
    cmocka_unit_test (test_fake_chunks_read_as_jansson_reads_them),
    cmocka_unit_test (test_compact_json_is_janssons),
    cmocka_unit_test (test_partial_json),
    cmocka_unit_test (test_str_parser_streams_each_chunk),
    cmocka_unit_test (test_json_parser_streams_partial_objects),
    cmocka_unit_test (test_stream_stops_at_the_failure),
    cmocka_unit_test (test_stream_chunks_reach_only_handlers_wanting_them),
    cmocka_unit_test (test_no_stream_chunks_without_a_handler_wanting_them),
    cmocka_unit_test (test_a_run_answers_from_the_loop_once),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
