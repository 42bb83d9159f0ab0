/* Batch runs on a provider: one result line per input line, in order,
 * bad lines reported in place, and the requests made concurrently.
 * Whole pipelines from INI text against the mock LLM server, over real
 * sockets, for each provider (OpenAI and Anthropic). */
#include "provider-helpers.h"

#include "http/http-client.h"
#include "pipeline/batch.h"

/* ------------------------------------------------------------------ */
/* Batch runs                                                         */
/* ------------------------------------------------------------------ */

static void
test_batch (void **state)
{
  g_autofree char *ini = g_strdup_printf ("[runtime]\nthreads = 1\n\n"
                                          "[pipeline]\nprompt = Tell me about {topic}\nmodel = m\n\n"
                                          "[model m]\nprovider = openai\nmodel = gpt-4o-mini\n"
                                          "base_url = http://127.0.0.1:%u/v1\napi_key_env = " API_KEY_ENV "\n"
                                          "headers = [\"X-Mock-Scenario: delay\", \"X-Mock-Arg: 300\"]\n",
                                          server.port);
  g_autofree char *inputs = test_write_file ("inputs.jsonl",
                                             "{\"topic\": \"a\"}\n{\"topic\": \"b\"}\n\n"
                                             "{\"topic\": 3}\nnot json\n{\"topic\": \"d\"}\n"
                                             "{\"other\": \"x\"}\n{\"topic\": \"f\"}\n{\"topic\": \"g\"}\n"
                                             "{\"topic\": \"h\"}\n{\"topic\": \"i\"}\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimePipeline) pipeline = chime_pipeline_new_from_data (ini, "batch.ini", test_tmpdir (), NULL, NULL,
                                                                     &error);
  g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_auto (GStrv) lines = NULL;
  ChimeHttpStats stats;
  gint64 started;
  gdouble elapsed;
  int failed;

  assert_non_null (pipeline);
  chime_http_reset_stats ();
  started = g_get_monotonic_time ();
  failed = chime_batch_run (pipeline, inputs, NULL, 4, NULL, out, &error);
  elapsed = (g_get_monotonic_time () - started) / (gdouble) G_USEC_PER_SEC;
  g_output_stream_write_all (out, "", 1, NULL, NULL, NULL);
  g_output_stream_close (out, NULL, NULL);
  chime_http_get_stats (&stats);

  /* "not json" and the missing {topic} fail; the eight others run. */
  assert_int_equal (failed, 2);
  lines = g_strsplit (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)), "\n", -1);
  assert_int_equal (g_strv_length (lines), 11);   /* ten results and the empty tail */
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr (json_t) line = json_loads (lines[i], 0, NULL);

      assert_non_null (line);
      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      if (i == 3 || i == 5)
        assert_non_null (json_object_get (line, "error"));
      else
        assert_string_equal (json_string_value (json_object_get (line, "output")), "I'm unable app.");
    }
  assert_string_contains (lines[3], "not a JSON object");
  /* The variables come from the line, not from --input/--var. */
  assert_string_contains (lines[5], "the input has no \\\"topic\\\", which the prompt uses; add it to the line");
  assert_string_not_contains (lines[5], "--input");
  /* Eight 300 ms requests, four at a time: two rounds (the wall time is
   * for the benchmarks to judge; the concurrency is counted here). */
  assert_int_equal (stats.max_active, 4);
  assert_true (elapsed >= 0.6);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_batch),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
