/* The trace_html plugin: the page it writes holds the run tree as JSON
 * (runs in start order, each with its parent, type, times, tokens'
 * arrival, usage, payloads and status), written at shutdown, with secrets
 * redacted and payloads kept from ending the page's <script>; a missing
 * folder is refused at start, and a start without events (`chime check`)
 * leaves the last page alone. What the page's script makes of this JSON
 * is tested in a real browser (tests/test-runner-trace.c).
 * Loaded as a real module from the build tree; every test emits through
 * the run managers and frees the runtime before reading the page. */
#include "shipped-helpers.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define DATA_OPEN "<script id=\"chime-trace\" type=\"application/json\">"

/* The run tree in the page at @path (fails the test when there is none). */
static json_t *
read_trace (const char *path)
{
  g_autofree char *page = NULL;
  json_error_t json_error;
  const char *start;
  const char *end;
  json_t *trace;

  assert_true (g_file_get_contents (path, &page, NULL, NULL));
  start = strstr (page, DATA_OPEN);
  assert_non_null (start);
  start += strlen (DATA_OPEN);
  end = strstr (start, "</script>");
  assert_non_null (end);
  trace = json_loadb (start, end - start, 0, &json_error);
  if (trace == NULL)
    fail_msg ("the page's trace is not JSON (%s)", json_error.text);
  return trace;
}

static const char *
field (json_t     *object,
       const char *key)
{
  return json_string_value (json_object_get (object, key));
}

static double
number (json_t     *object,
        const char *key)
{
  return json_number_value (json_object_get (object, key));
}

static ChimeRuntime *
trace_runtime (const char *path)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                                            "[handler page]\nplugin = trace_html\npath = %s\n"
                                            "title = Jokes\n", path);

  assert_null (error);
  return runtime;
}

/* chain "Root" > chat model "FakeChat" with three tokens, as the jsonl
 * tests emit it: two runs, nested, with their payloads and times. */
static void
test_trace_html_writes_the_run_tree (void **state)
{
  g_autofree char *path = test_path ("tree.html");
  g_autoptr (json_t) usage = usage_metadata (8, 10, 0, 0);
  g_autoptr (json_t) trace = NULL;
  ChimeRuntime *runtime = trace_runtime (path);
  json_t *runs, *root, *model, *token_ms;

  run_with_usage (runtime, "model-a", usage);
  assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  chime_runtime_unref (runtime);

  trace = read_trace (path);
  assert_string_equal (field (trace, "format"), "chime-trace/1");
  assert_string_equal (field (trace, "title"), "Jokes");
  assert_non_null (field (trace, "started_at"));
  runs = json_object_get (trace, "runs");
  assert_int_equal (json_array_size (runs), 2);
  root = json_array_get (runs, 0);
  model = json_array_get (runs, 1);
  /* The tree. */
  assert_string_equal (field (root, "name"), "Root");
  assert_string_equal (field (root, "run_type"), "chain");
  assert_true (json_is_null (json_object_get (root, "parent_id")));
  assert_string_equal (field (model, "name"), "FakeChat");
  assert_string_equal (field (model, "run_type"), "chat_model");
  assert_string_equal (field (model, "parent_id"), field (root, "id"));
  /* The times: the root starts the clock and ends last; the model's
   * tokens arrive in order inside it, the first one its ttft after its
   * start. */
  assert_true (number (root, "start_ms") == 0.0);
  assert_true (number (model, "start_ms") >= 0.0);
  assert_true (number (model, "end_ms") <= number (root, "end_ms"));
  assert_true (number (root, "end_ms") <= number (trace, "duration_ms"));
  token_ms = json_object_get (model, "token_ms");
  assert_int_equal (json_integer_value (json_object_get (model, "tokens")), 3);
  assert_int_equal (json_array_size (token_ms), 3);
  for (guint i = 1; i < 3; i++)
    assert_true (json_number_value (json_array_get (token_ms, i - 1)) <= json_number_value (json_array_get (token_ms, i)));
  assert_true (number (model, "ttft_ms") >= 0.0);
  assert_true (number (model, "start_ms") + number (model, "ttft_ms")
               - json_number_value (json_array_get (token_ms, 0)) < 1e-6);
  assert_true (json_is_null (json_object_get (root, "ttft_ms")));
  /* The payloads and the status. */
  assert_true (json_equal (json_object_get (model, "usage"), usage));
  assert_string_equal (field (json_object_get (root, "inputs"), "input"), "hi");
  assert_string_equal (field (json_object_get (root, "outputs"), "output"), "done");
  assert_string_equal (field (json_array_get (json_array_get (json_object_get (json_object_get (model, "inputs"),
                                                                               "messages"), 0), 1), "content"), "hi");
  assert_string_equal (field (root, "status"), "ok");
  assert_string_equal (field (model, "status"), "ok");
  assert_true (json_is_null (json_object_get (root, "error")));
}

/* A failed model and chain are "error" with the error's message. */
static void
test_trace_html_marks_a_failed_run (void **state)
{
  g_autofree char *path = test_path ("failed.html");
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the model timed out");
  g_autoptr (json_t) trace = NULL;
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  ChimeRuntime *runtime = trace_runtime (path);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  g_autoptr (ChimeCallbackManager) child = chime_run_get_child (chain, NULL);
  g_autoptr (ChimeRun) llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "FakeChat", NULL, &error);
  json_t *model;

  assert_true (chime_run_on_llm_new_token (llm, "Why", NULL, &error));
  assert_true (chime_run_on_llm_error (llm, failure, NULL, &error));
  assert_true (chime_run_on_chain_error (chain, failure, &error));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&child, chime_callback_manager_unref);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  trace = read_trace (path);
  for (guint i = 0; i < 2; i++)
    {
      json_t *run = json_array_get (json_object_get (trace, "runs"), i);

      assert_string_equal (field (run, "status"), "error");
      assert_string_equal (field (json_object_get (run, "error"), "message"), "the model timed out");
      assert_true (json_is_number (json_object_get (run, "end_ms")));
    }
  model = json_array_get (json_object_get (trace, "runs"), 1);
  assert_int_equal (json_integer_value (json_object_get (model, "tokens")), 1);
}

/* A run cut short (a cancelled run: the runtime shuts down before its
 * end) is on the page as running, without an end. */
static void
test_trace_html_shows_an_unfinished_run (void **state)
{
  g_autofree char *path = test_path ("unfinished.html");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) trace = NULL;
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  ChimeRuntime *runtime = trace_runtime (path);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  json_t *run;

  assert_non_null (chain);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  trace = read_trace (path);
  run = json_array_get (json_object_get (trace, "runs"), 0);
  assert_string_equal (field (run, "status"), "running");
  assert_true (json_is_null (json_object_get (run, "end_ms")));
}

/* A key naming a secret shows "[redacted]" wherever it is, and the value
 * is nowhere in the file. */
static void
test_trace_html_redacts_secrets (void **state)
{
  g_autofree char *path = test_path ("secrets.html");
  g_autofree char *page = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) trace = NULL;
  g_autoptr (json_t) metadata = json_pack ("{s:s, s:s}", "user", "ada", "openai_api_key", "sk-meta-1234");
  g_autoptr (json_t) inputs = json_pack ("{s:s, s:{s:s}}", "input", "hi",
                                         "headers", "Authorization", "Bearer sk-head-5678");
  g_autoptr (json_t) outputs = json_pack ("{s:s}", "password", "hunter2");
  ChimeRuntime *runtime = trace_runtime (path);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (ChimeRun) chain = NULL;
  json_t *run;

  chime_callback_manager_add_metadata (manager, metadata, TRUE);
  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  assert_true (chime_run_on_chain_end (chain, outputs, &error));
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  assert_true (g_file_get_contents (path, &page, NULL, NULL));
  assert_null (strstr (page, "sk-meta-1234"));
  assert_null (strstr (page, "sk-head-5678"));
  assert_null (strstr (page, "hunter2"));
  trace = read_trace (path);
  run = json_array_get (json_object_get (trace, "runs"), 0);
  assert_string_equal (field (json_object_get (run, "metadata"), "user"), "ada");
  assert_string_equal (field (json_object_get (run, "metadata"), "openai_api_key"), "[redacted]");
  assert_string_equal (field (json_object_get (json_object_get (run, "inputs"), "headers"), "Authorization"),
                       "[redacted]");
  assert_string_equal (field (json_object_get (run, "outputs"), "password"), "[redacted]");
}

/* A payload holding "</script>" stays data: the page has only its own
 * two closing tags, and the JSON gives the text back as it was. */
static void
test_trace_html_keeps_payloads_out_of_the_markup (void **state)
{
  static const char *const hostile = "</script><script>alert(1)</script><!--";
  g_autofree char *path = test_path ("hostile.html");
  g_autofree char *page = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) trace = NULL;
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", hostile);
  ChimeRuntime *runtime = trace_runtime (path);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  guint closing = 0;

  assert_true (chime_run_on_chain_end (chain, inputs, &error));
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  assert_true (g_file_get_contents (path, &page, NULL, NULL));
  for (const char *at = strstr (page, "</script>"); at != NULL; at = strstr (at + 1, "</script>"))
    closing++;
  assert_int_equal (closing, 2);
  trace = read_trace (path);
  assert_string_equal (field (json_object_get (json_array_get (json_object_get (trace, "runs"), 0), "inputs"),
                              "input"), hostile);
}

/* A batch: every root run on one page, in start order. */
static void
test_trace_html_puts_every_root_on_one_page (void **state)
{
  g_autofree char *path = test_path ("batch.html");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autoptr (json_t) trace = NULL;
  ChimeRuntime *runtime = trace_runtime (path);
  guint roots = 0;
  json_t *run;
  gsize i;

  for (guint n = 0; n < 3; n++)
    run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  trace = read_trace (path);
  assert_int_equal (json_array_size (json_object_get (trace, "runs")), 6);
  json_array_foreach (json_object_get (trace, "runs"), i, run)
    if (json_is_null (json_object_get (run, "parent_id")))
      roots++;
  assert_int_equal (roots, 3);
}

/* The page is written at the end: a folder that is not there is refused
 * at start, naming the path and the folder. */
static void
test_trace_html_refuses_a_missing_folder (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("no-such-folder/trace.html");
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler page]\nplugin = trace_html\npath = %s\n", path);

  assert_null (runtime);
  assert_non_null (error);
  assert_string_contains (error->message, path);
  assert_string_contains (error->message, "does not exist");
}

/* A symlink at `path` is followed, as -o follows one: the page goes into
 * its target, and the link stays a link (it was replaced by a file). */
static void
test_trace_html_follows_a_symlink (void **state)
{
  g_autofree char *target = test_path ("target.html");
  g_autofree char *link = test_path ("link.html");
  g_autoptr (json_t) usage = usage_metadata (1, 1, 0, 0);
  g_autoptr (json_t) trace = NULL;
  ChimeRuntime *runtime;

  g_unlink (link);
  g_unlink (target);
  if (symlink (target, link) != 0)
    fail_msg ("symlink %s: %s", link, g_strerror (errno));
  runtime = trace_runtime (link);
  run_with_usage (runtime, "model-a", usage);
  chime_runtime_unref (runtime);

  assert_true (g_file_test (link, G_FILE_TEST_IS_SYMLINK));
  trace = read_trace (target);
  assert_int_equal (json_array_size (json_object_get (trace, "runs")), 2);
}

/* Starting and stopping without an event (what `chime check` does)
 * leaves the last run's page as it was. */
static void
test_trace_html_without_events_keeps_the_last_page (void **state)
{
  g_autofree char *path = test_write_file ("kept.html", "the last run's page");
  g_autofree char *page = NULL;

  chime_runtime_unref (trace_runtime (path));
  assert_true (g_file_get_contents (path, &page, NULL, NULL));
  assert_string_equal (page, "the last run's page");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_trace_html_writes_the_run_tree),
    cmocka_unit_test (test_trace_html_marks_a_failed_run),
    cmocka_unit_test (test_trace_html_shows_an_unfinished_run),
    cmocka_unit_test (test_trace_html_redacts_secrets),
    cmocka_unit_test (test_trace_html_keeps_payloads_out_of_the_markup),
    cmocka_unit_test (test_trace_html_puts_every_root_on_one_page),
    cmocka_unit_test (test_trace_html_refuses_a_missing_folder),
    cmocka_unit_test (test_trace_html_without_events_keeps_the_last_page),
    cmocka_unit_test (test_trace_html_follows_a_symlink),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
