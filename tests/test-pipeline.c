/* Pipelines run in-process: how a run ends when handlers fail it. */
#include "test-helpers.h"

#include "pipeline/pipeline.h"

#include <string.h>

typedef struct {
  GMainLoop *loop;
  json_t    *result;
  GError    *error;
} Done;

static void
on_done (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  Done *done = data;

  done->result = chime_pipeline_run_finish (NULL, result, &done->error);
  g_main_loop_quit (done->loop);
}

/* Runs @ini once; returns the result or NULL with @error. */
static json_t *
run_pipeline (const char *ini,
              GError    **error)
{
  g_autoptr (GHashTable) variables = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (ChimePipeline) pipeline = NULL;
  Done done = { 0 };

  pipeline = chime_pipeline_new_from_data (ini, "test.ini", test_tmpdir (), NULL, variables, error);
  if (pipeline == NULL)
    return NULL;
  done.loop = g_main_loop_new (NULL, FALSE);
  chime_pipeline_run_async (pipeline, variables, NULL, on_done, &done);
  g_main_loop_run (done.loop);
  g_main_loop_unref (done.loop);
  if (done.error != NULL)
    g_propagate_error (error, done.error);
  return done.result;
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
  static const char *const values[] = { "[\"a\", 2]", "not json" };
  static const char *const expected[] = {
    "invalid value for 'chunks' in [model m] of test.ini (line 6): element 1 is not a string",
    "invalid value for 'chunks' in [model m] of test.ini (line 6): expected a JSON array of strings "
      "like [\"Hello\", \" world\"]: ",
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

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_raise_error_on_tokens_fenced),
    cmocka_unit_test (test_raise_error_on_tokens_awaited),
    cmocka_unit_test (test_raise_error_on_tokens_background),
    cmocka_unit_test (test_handler_failure_without_raise_error),
    cmocka_unit_test (test_fake_chunks_must_be_strings),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
