/* Batch runs, `chime run --inputs FILE --concurrency N`: one result line
 * per input, in order, each from its own variables; bad lines reported
 * in place; and the options that do not go together.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * Batch runs: --inputs and --concurrency
 * ---------------------------------------------------------------- */

/* The fake model counts the words it is sent as input_tokens: the prompt
 * "Tell me a joke about {topic}" is 5 words plus the topic's. */
static gint64
batch_input_tokens (json_t *line)
{
  return json_integer_value (json_object_get (json_object_get (result_message (line), "usage_metadata"),
                                              "input_tokens"));
}

/* Runs tests/examples/batch.ini on @inputs (JSON lines) with
 * --concurrency 3, results into a file; returns them, one per line. */
static json_t *
run_batch (const char *inputs,
           int         expected_status,
           RunResult **out_result)
{
  g_autofree char *dir = fresh_dir ("batch");
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  g_autofree char *inputs_path = write_in (dir, "inputs.jsonl", inputs);
  g_autofree char *output = g_build_filename (dir, "results.jsonl", NULL);
  RunResult *result = run_chime_in (dir, "run", config, "--inputs", inputs_path, "--concurrency", "3",
                                    "--output", output, NULL);

  assert_status (result, expected_status);
  *out_result = result;
  return read_json_lines (output);
}

/* Inputs whose topics have 1 to 5 words. */
#define BATCH_GOOD_LINES \
  "{\"topic\": \"otters\"}\n" \
  "{\"topic\": \"sea otters\"}\n" \
  "{\"topic\": \"very sleepy sea otters\"}\n" \
  "{\"topic\": \"three small sea otters\", \"unused\": 1}\n" \
  "{\"topic\": \"a b c d e\"}\n"

static void
test_batch_all_good (void **state)
{
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = run_batch (BATCH_GOOD_LINES, 0, &result);
  const gint64 words[] = { 1, 2, 4, 4, 5 };

  assert_int_equal (json_array_size (lines), 5);
  for (guint i = 0; i < 5; i++)
    {
      json_t *line = json_array_get (lines, i);

      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      assert_null (json_object_get (line, "error"));
      assert_true (json_is_string (json_object_get (line, "run_id")));
      assert_string_equal (json_string_value (json_object_get (line, "output")), SEED_OUTPUT);
      /* In input order: each line is the run of its own input. */
      assert_int_equal (batch_input_tokens (line), 5 + words[i]);
    }
  assert_string_equal (result->err, "");
}

static void
test_batch_missing_variable (void **state)
{
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = run_batch ("{\"topic\": \"otters\"}\n"
                                        "{\"topic\": \"sea otters\"}\n"
                                        "{\"subject\": \"no topic here\"}\n"
                                        "{\"topic\": \"three small sea otters\"}\n"
                                        "{\"topic\": \"a b c d e\"}\n", 1, &result);
  const gint64 words[] = { 1, 2, 0, 4, 5 };
  json_t *bad = json_array_get (lines, 2);

  assert_int_equal (json_array_size (lines), 5);
  for (guint i = 0; i < 5; i++)
    {
      json_t *line = json_array_get (lines, i);

      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      if (i == 2)
        continue;
      assert_null (json_object_get (line, "error"));
      assert_int_equal (batch_input_tokens (line), 5 + words[i]);
    }
  /* The bad one: an error naming the variable, and nothing else. */
  assert_int_equal (json_object_size (bad), 2);
  assert_string_contains (json_string_value (json_object_get (json_object_get (bad, "error"), "message")),
                          "topic");
  assert_string_contains (result->err, "1 input failed");
}

static void
test_batch_bad_json (void **state)
{
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = run_batch ("{\"topic\": \"otters\"}\n"
                                        "{\"topic\": \"sea otters\"}\n"
                                        "{\"topic\": \"very sleepy sea otters\"}\n"
                                        "{\"topic\": oops}\n"
                                        "{\"topic\": \"a b c d e\"}\n", 1, &result);

  assert_int_equal (json_array_size (lines), 5);
  for (guint i = 0; i < 5; i++)
    assert_int_equal (json_integer_value (json_object_get (json_array_get (lines, i), "index")), i);
  assert_string_contains (json_string_value (json_object_get (json_object_get (json_array_get (lines, 3),
                                                                               "error"), "message")),
                          "not a JSON object");
  assert_int_equal (batch_input_tokens (json_array_get (lines, 4)), 10);
  assert_string_contains (result->err, "1 input failed");
}

static void
test_batch_usage_errors (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-usage");
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  g_autofree char *inputs = write_in (dir, "inputs.jsonl", BATCH_GOOD_LINES);
  g_autoptr (RunResult) zero = run_chime_in (dir, "run", config, "--inputs", inputs, "--concurrency", "0", NULL);
  g_autoptr (RunResult) too_many = run_chime_in (dir, "run", config, "--inputs", inputs,
                                                 "--concurrency", "5000", NULL);
  g_autoptr (RunResult) no_inputs = run_chime_in (dir, "run", config, "--concurrency", "2", NULL);
  g_autoptr (RunResult) zero_no_inputs = run_chime_in (dir, "run", "--concurrency", "0", NULL);
  g_autoptr (RunResult) pretty = run_chime_in (dir, "run", config, "--inputs", inputs, "--pretty", NULL);

  assert_status (zero, 2);
  assert_string_contains (zero->err, "--concurrency must be from 1 to 4096, got 0");
  assert_status (too_many, 2);
  assert_string_contains (too_many->err, "got 5000");
  assert_status (no_inputs, 2);
  assert_string_contains (no_inputs->err, "--concurrency needs --inputs");
  assert_status (zero_no_inputs, 2);
  assert_status (pretty, 2);
  assert_string_contains (pretty->err, "--pretty cannot be used with --inputs");
  /* Nothing ran. */
  assert_null (find_result (zero->out));
  assert_null (find_result (no_inputs->out));
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_batch_all_good),
    cmocka_unit_test (test_batch_missing_variable),
    cmocka_unit_test (test_batch_bad_json),
    cmocka_unit_test (test_batch_usage_errors),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
