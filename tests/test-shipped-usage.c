/* The usage plugin: the token counts of every LLMResult summed per
 * model, written to its file or to stderr, from plain and serialized
 * messages, without losing an update when called from many threads.
 * Loaded as a real module from the build tree; every test emits through
 * the run managers, frees the runtime (so every instance has shut
 * down), then checks the output. */
#include "shipped-helpers.h"

#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------
 * usage
 * ---------------------------------------------------------------- */

/* Two runs of each of two models, one of them with a detail key the other
 * lacks, plus results that must not count: no usage, no model name. */
static void
emit_usage_runs (ChimeRuntime *runtime)
{
  g_autoptr (json_t) a1 = usage_metadata (8, 10, 2, 3);
  g_autoptr (json_t) b1 = usage_metadata (5, 7, 0, 1);
  g_autoptr (json_t) a2 = usage_metadata (1, 2, 4, 0);
  g_autoptr (json_t) b2 = usage_metadata (10, 20, 1, 2);
  g_autoptr (json_t) nothing = llm_result ("no usage", "model-a", NULL);

  json_object_set_new (json_object_get (a2, "input_token_details"), "audio", json_integer (6));
  run_with_usage (runtime, "model-a", a1);
  run_with_usage (runtime, "model-b", b1);
  run_conversation (runtime, NULL, nothing);
  run_with_usage (runtime, NULL, a1);
  run_with_usage (runtime, "model-a", a2);
  run_with_usage (runtime, "model-b", b2);
}

static json_t *
expected_usage_totals (void)
{
  return json_pack ("{s:{s:i, s:i, s:i, s:{s:i, s:i}, s:{s:i}},"
                    " s:{s:i, s:i, s:i, s:{s:i}, s:{s:i}}}",
                    "model-a", "input_tokens", 9, "output_tokens", 12, "total_tokens", 21,
                    "input_token_details", "cache_read", 6, "audio", 6,
                    "output_token_details", "reasoning", 3,
                    "model-b", "input_tokens", 15, "output_tokens", 27, "total_tokens", 42,
                    "input_token_details", "cache_read", 1,
                    "output_token_details", "reasoning", 3);
}

static void
assert_json_equal (json_t *actual,
                   json_t *expected)
{
  if (!json_equal (actual, expected))
    {
      g_autofree char *a = json_dumps (actual, JSON_SORT_KEYS | JSON_ENCODE_ANY);
      g_autofree char *e = json_dumps (expected, JSON_SORT_KEYS | JSON_ENCODE_ANY);

      fail_msg ("expected %s\ngot      %s", e, a);
    }
}

static void
test_usage_sums_per_model (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("usage.json");
  g_autoptr (json_t) expected = expected_usage_totals ();
  g_autoptr (json_t) totals = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler usage]\nplugin = usage\npath = %s\n", path);
  assert_null (error);
  emit_usage_runs (runtime);
  chime_runtime_unref (runtime);

  totals = test_read_json (path);
  assert_json_equal (totals, expected);
}

static void
test_usage_prints_to_stderr_without_path (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) expected = expected_usage_totals ();
  g_autoptr (json_t) totals = NULL;
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDERR_FILENO, "usage-stderr.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler usage]\nplugin = usage\n");
  assert_null (error);
  emit_usage_runs (runtime);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  /* One line: "usage: " and the JSON object. */
  assert_true (g_str_has_prefix (output, "usage: {"));
  assert_true (g_str_has_suffix (output, "}\n"));
  assert_ptr_equal (strchr (output, '\n'), output + strlen (output) - 1);
  totals = parse_line (output + strlen ("usage: "));
  assert_json_equal (totals, expected);
}

/* LangChain's dumpd form ({"lc": 1, "type": "constructor", "kwargs": ...})
 * counts too; a message that is not an AI message does not. */
static void
test_usage_reads_serialized_messages (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("usage-dumpd.json");
  g_autoptr (json_t) usage = usage_metadata (3, 4, 0, 0);
  g_autoptr (json_t) serialized = NULL;
  g_autoptr (json_t) human = llm_result ("hi", "model-h", usage);
  g_autoptr (json_t) expected = NULL;
  g_autoptr (json_t) totals = NULL;
  ChimeRuntime *runtime;

  serialized = json_pack ("{s:[[{s:s, s:{s:i, s:s, s:[s, s, s, s], s:{s:s, s:O, s:{s:s}}}}]]}",
                          "generations", "text", "x", "message", "lc", 1, "type", "constructor",
                          "id", "langchain", "schema", "messages", "AIMessage",
                          "kwargs", "content", "x", "usage_metadata", usage,
                          "response_metadata", "model_name", "model-d");
  json_object_set_new (json_object_get (json_array_get (json_array_get (
    json_object_get (human, "generations"), 0), 0), "message"), "type", json_string ("human"));
  expected = json_pack ("{s:O}", "model-d", usage);

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler usage]\nplugin = usage\npath = %s\n", path);
  assert_null (error);
  run_conversation (runtime, NULL, serialized);
  run_conversation (runtime, NULL, human);
  chime_runtime_unref (runtime);

  totals = test_read_json (path);
  assert_json_equal (totals, expected);
}

/* run_inline calls a thread-safe plugin from every emitting thread at
 * once: no update may be lost. */
#define USAGE_THREADS 4
#define USAGE_RUNS_PER_THREAD 200

static gpointer
usage_emitter (gpointer data)
{
  ChimeCallbackManager *manager = data;
  g_autoptr (json_t) usage = usage_metadata (1, 2, 1, 0);
  g_autoptr (json_t) result = llm_result ("x", "model-t", usage);
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);

  for (guint i = 0; i < USAGE_RUNS_PER_THREAD; i++)
    {
      g_autoptr (ChimeRun) llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages,
                                                                             "FakeChat", NULL, NULL);
      chime_run_on_llm_end (llm, result, NULL);
    }
  return NULL;
}

static void
test_usage_is_thread_safe_inline (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("usage-threads.json");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) totals = NULL;
  GThread *threads[USAGE_THREADS];
  ChimeRuntime *runtime;
  json_t *model;
  const json_int_t runs = USAGE_THREADS * USAGE_RUNS_PER_THREAD;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = background\n"
                              "[handler usage]\nplugin = usage\nrun_inline = true\npath = %s\n", path);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  for (guint i = 0; i < USAGE_THREADS; i++)
    threads[i] = g_thread_new ("usage-emitter", usage_emitter, manager);
  for (guint i = 0; i < USAGE_THREADS; i++)
    g_thread_join (threads[i]);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  totals = test_read_json (path);
  model = json_object_get (totals, "model-t");
  assert_int_equal (json_integer_value (json_object_get (model, "input_tokens")), runs);
  assert_int_equal (json_integer_value (json_object_get (model, "output_tokens")), 2 * runs);
  assert_int_equal (json_integer_value (json_object_get (model, "total_tokens")), 3 * runs);
  assert_int_equal (json_integer_value (json_object_get (json_object_get (model, "input_token_details"),
                                                         "cache_read")), runs);
}

/* ------------------------------------------------------------------ */

/* The report is written at shutdown, in instance_free, after every event:
 * a report that cannot be written (on /dev/full, a device written to as
 * it is) is counted as the handler's failure
 * (chime_handler_context_report_error()), not only logged. */
static void
test_usage_unwritable_report_is_a_failure (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeHandlerStats stats;
  ChimeRuntime *runtime;

  test_log_capture_start ();
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler usage]\nplugin = usage\npath = /dev/full\n");
  assert_null (error);
  emit_usage_runs (runtime);
  assert_null (chime_runtime_get_handler_failure (runtime, "usage"));
  chime_runtime_shutdown (runtime);
  assert_true (chime_runtime_get_handler_stats (runtime, "usage", &stats, sizeof stats));
  assert_int_equal (stats.failed, 1);
  assert_true (g_str_has_prefix (chime_runtime_get_handler_failure (runtime, "usage"),
                                 "cannot write usage to /dev/full: "));
  assert_true (test_log_contains ("handler 'usage' (usage) failed: cannot write usage to /dev/full: "));
  chime_runtime_unref (runtime);
  test_log_capture_stop ();
}

/* A folder that does not exist is found as the handler starts, so the
 * run (or `chime check`) stops before its work, naming the folder. */
static void
test_usage_missing_folder_fails_start (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("missing/usage.json");
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler usage]\nplugin = usage\npath = %s\n", path);
  assert_null (runtime);
  assert_non_null (error);
  assert_string_contains (error->message, "missing does not exist");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_usage_sums_per_model),
    cmocka_unit_test_teardown (test_usage_prints_to_stderr_without_path, teardown_capture),
    cmocka_unit_test (test_usage_reads_serialized_messages),
    cmocka_unit_test (test_usage_is_thread_safe_inline),
    cmocka_unit_test (test_usage_unwritable_report_is_a_failure),
    cmocka_unit_test (test_usage_missing_folder_fails_start),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
