/* The stdout and streaming_stdout plugins, LangChain's
 * StdOutCallbackHandler and StreamingStdOutCallbackHandler: their text
 * exactly, with and without color, and the color key checked.
 * Loaded as a real module from the build tree; every test emits through
 * the run managers, frees the runtime (so every instance has shut
 * down), then checks the output. */
#include "shipped-helpers.h"

#include <unistd.h>

/* ------------------------------------------------------------------
 * stdout and streaming_stdout
 * ---------------------------------------------------------------- */

/* An agent: a chain that prints text, acts, calls a tool, runs an inner
 * chain and finishes. */
static void
run_agent (ChimeRuntime *runtime)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "what is 2+2?");
  g_autoptr (json_t) action = json_pack ("{s:s, s:s, s:s}", "tool", "calculator",
                                         "tool_input", "2+2", "log", "Thought: add\n");
  g_autoptr (json_t) four = json_string ("4");
  g_autoptr (json_t) ok = json_string ("ok");
  g_autoptr (json_t) finish = json_pack ("{s:{s:s}, s:s}", "return_values", "output", "4",
                                         "log", "Final Answer: 4");
  g_autoptr (json_t) outputs = json_pack ("{s:s}", "output", "4");
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) tool = NULL;
  g_autoptr (ChimeRun) inner = NULL;

  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  assert_null (error);
  child = chime_run_get_child (chain, NULL);
  assert_true (chime_run_on_text (chain, "some text", &error));
  assert_true (chime_run_on_agent_action (chain, action, &error));
  tool = chime_callback_manager_on_tool_start (child, NULL, " 2+2 ", NULL, "calculator", &error);
  assert_non_null (tool);
  assert_true (chime_run_on_tool_end (tool, four, &error));
  inner = chime_callback_manager_on_chain_start (child, NULL, inputs, "Inner", NULL, &error);
  assert_non_null (inner);
  assert_true (chime_run_on_chain_end (inner, ok, &error));
  assert_true (chime_run_on_agent_finish (chain, finish, &error));
  assert_true (chime_run_on_chain_end (chain, outputs, &error));
}

static void
test_stdout_prints_verbose_output (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "stdout.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler verbose]\nplugin = stdout\n");
  assert_null (error);
  run_agent (runtime);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  /* No ANSI codes: stdout is a file. */
  assert_text_equal (output,
                     "\n\n> Entering new Root chain...\n"
                     "some text"
                     "Thought: add\n"
                     "4"
                     "\n\n> Entering new Inner chain...\n"
                     "\n> Finished chain.\n"
                     "Final Answer: 4\n"
                     "\n> Finished chain.\n");
}

static void
test_stdout_color_always (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "stdout-color.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler verbose]\nplugin = stdout\ncolor = always\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  assert_text_equal (output,
                     "\n\n\033[1m> Entering new Root chain...\033[0m\n"
                     "\n\033[1m> Finished chain.\033[0m\n");
}

static void
test_color_key_is_checked (void **state)
{
  static const char *const plugins[] = { "stdout", "console" };

  for (guint i = 0; i < G_N_ELEMENTS (plugins); i++)
    {
      g_autoptr (GError) error = NULL;
      ChimeRuntime *runtime = test_runtime_new (&error, "[handler h]\nplugin = %s\ncolor = sometimes\n",
                                                plugins[i]);

      assert_null (runtime);
      /* Checked by the host when it reads the file, with the location. */
      assert_string_contains (error->message, "invalid value 'sometimes' for 'color' in [handler h] of ");
      assert_string_contains (error->message, "(line 3): expected auto, always, never");
    }
}

static void
test_streaming_stdout_writes_tokens (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "streaming.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = fenced\n"
                              "[handler stream]\nplugin = streaming_stdout\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  /* The answer, then a newline so what follows starts on its own line. */
  assert_text_equal (output, "Hello world\n");
}

/* A stream cut off mid-answer: the error message that follows must not
 * be glued to the last token. */
static void
test_streaming_stdout_ends_the_line_on_error (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (GError) failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "cut");
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "streaming-error.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = fenced\n"
                              "[handler stream]\nplugin = streaming_stdout\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "FakeChat", NULL, &error);
  assert_true (chime_run_on_llm_new_token (llm, "Hello", NULL, &error));
  assert_true (chime_run_on_llm_error (llm, failure, NULL, &error));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  assert_text_equal (output, "Hello\n");
}

static void
test_streaming_stdout_without_newline (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "streaming-bare.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = fenced\n"
                              "[handler stream]\nplugin = streaming_stdout\nnewline = false\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  /* Exactly LangChain's StreamingStdOutCallbackHandler: the tokens only. */
  assert_text_equal (output, "Hello world");
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown (test_stdout_prints_verbose_output, teardown_capture),
    cmocka_unit_test_teardown (test_stdout_color_always, teardown_capture),
    cmocka_unit_test (test_color_key_is_checked),
    cmocka_unit_test_teardown (test_streaming_stdout_writes_tokens, teardown_capture),
    cmocka_unit_test_teardown (test_streaming_stdout_ends_the_line_on_error, teardown_capture),
    cmocka_unit_test_teardown (test_streaming_stdout_without_newline, teardown_capture),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
