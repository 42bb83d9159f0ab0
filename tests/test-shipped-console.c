/* The console plugin, LangChain's ConsoleCallbackHandler: every run
 * with its breadcrumbs, inputs and outputs as json.dumps(indent=2) lays
 * them out, tools and errors, elapsed times, and color.
 * Loaded as a real module from the build tree; every test emits through
 * the run managers, frees the runtime (so every instance has shut
 * down), then checks the output. */
#include "shipped-helpers.h"

#include <unistd.h>

/* ------------------------------------------------------------------
 * console
 * ---------------------------------------------------------------- */

/* Elapsed times vary: "[312ms]" and "[1.02s]" become "[T]". */
static char *
mask_elapsed (const char *text)
{
  g_autoptr (GRegex) regex = g_regex_new ("\\[([0-9]+ms|[0-9]+\\.[0-9][0-9]s)\\]", 0, 0, NULL);

  return g_regex_replace_literal (regex, text, -1, 0, "[T]", 0, NULL);
}

static void
test_console_prints_runs_with_breadcrumbs (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = json_pack ("{s:[[{s:s}]]}", "generations", "text", "Hello world");
  g_autofree char *output = NULL;
  g_autofree char *masked = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "console.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler debug]\nplugin = console\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();
  masked = mask_elapsed (output);

  /* json.dumps(indent=2) layout; the chat messages rendered as prompts. */
  assert_text_equal (masked,
                     "[chain/start] [chain:Root] Entering Chain run with input:\n"
                     "{\n"
                     "  \"input\": \"hi\"\n"
                     "}\n"
                     "[llm/start] [chain:Root > chat_model:FakeChat] Entering LLM run with input:\n"
                     "{\n"
                     "  \"prompts\": [\n"
                     "    \"System: be brief\\nHuman: hi\"\n"
                     "  ]\n"
                     "}\n"
                     "[llm/end] [chain:Root > chat_model:FakeChat] [T] Exiting LLM run with output:\n"
                     "{\n"
                     "  \"generations\": [\n"
                     "    [\n"
                     "      {\n"
                     "        \"text\": \"Hello world\"\n"
                     "      }\n"
                     "    ]\n"
                     "  ]\n"
                     "}\n"
                     "[chain/end] [chain:Root] [T] Exiting Chain run with output:\n"
                     "{\n"
                     "  \"output\": \"done\"\n"
                     "}\n");
}

static void
test_console_tools_and_errors (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) tool_failure = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_FAILED, "division by zero");
  g_autoptr (GError) llm_failure = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_FAILED, "rate limited");
  g_autoptr (GError) chain_failure = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_FAILED, "boom");
  g_autoptr (json_t) inputs = json_string ("question");
  g_autoptr (json_t) four = json_pack ("{s:i}", "value", 4);
  g_autoptr (json_t) messages = test_messages ("human", "  hi  ", NULL);
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeRun) tool = NULL;
  g_autoptr (ChimeRun) broken_tool = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autofree char *output = NULL;
  g_autofree char *masked = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "console-errors.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler debug]\nplugin = console\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Agent", "chain", &error);
  child = chime_run_get_child (chain, NULL);
  tool = chime_callback_manager_on_tool_start (child, NULL, " 2+2 ", NULL, "calculator", &error);
  assert_true (chime_run_on_tool_end (tool, four, &error));
  broken_tool = chime_callback_manager_on_tool_start (child, NULL, "1/0", NULL, "calculator", &error);
  assert_true (chime_run_on_tool_error (broken_tool, tool_failure, &error));
  llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "FakeChat", NULL, &error);
  assert_true (chime_run_on_llm_error (llm, llm_failure, NULL, &error));
  assert_true (chime_run_on_chain_error (chain, chain_failure, &error));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&broken_tool, chime_run_unref);
  g_clear_pointer (&tool, chime_run_unref);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&child, chime_callback_manager_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  output = capture_stop ();
  masked = mask_elapsed (output);

  assert_text_equal (masked,
                     /* Inputs that are not an object are wrapped, as the tracer does. */
                     "[chain/start] [chain:Agent] Entering Chain run with input:\n"
                     "{\n"
                     "  \"input\": \"question\"\n"
                     "}\n"
                     "[tool/start] [chain:Agent > tool:calculator] Entering Tool run with input:\n"
                     "\"2+2\"\n"
                     "[tool/end] [chain:Agent > tool:calculator] [T] Exiting Tool run with output:\n"
                     "\"{\"value\":4}\"\n"
                     "[tool/start] [chain:Agent > tool:calculator] Entering Tool run with input:\n"
                     "\"1/0\"\n"
                     "[tool/error] [chain:Agent > tool:calculator] [T] Tool run errored with error:\n"
                     "division by zero\n"
                     "[llm/start] [chain:Agent > chat_model:FakeChat] Entering LLM run with input:\n"
                     "{\n"
                     "  \"prompts\": [\n"
                     "    \"Human:   hi\"\n"
                     "  ]\n"
                     "}\n"
                     "[llm/error] [chain:Agent > chat_model:FakeChat] [T] LLM run errored with error:\n"
                     "\"rate limited\"\n"
                     "[chain/error] [chain:Agent] [T] Chain run errored with error:\n"
                     "\"boom\"\n");
}

static void
test_console_elapsed_formats (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) inputs = json_pack ("{}");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) fast = NULL;
  g_autoptr (ChimeRun) slow = NULL;
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "console-elapsed.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler debug]\nplugin = console\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  fast = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Fast", NULL, &error);
  assert_true (chime_run_on_chain_end (fast, inputs, &error));
  slow = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Slow", NULL, &error);
  g_usleep (1050 * G_TIME_SPAN_MILLISECOND);
  assert_true (chime_run_on_chain_end (slow, inputs, &error));
  g_clear_pointer (&fast, chime_run_unref);
  g_clear_pointer (&slow, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  /* Under a second: whole milliseconds; from a second on: 2 decimals. */
  assert_matches (output, "^\\[chain/end\\] \\[chain:Fast\\] \\[[0-9]{1,3}ms\\] Exiting Chain run with output:$");
  assert_matches (output, "^\\[chain/end\\] \\[chain:Slow\\] \\[1\\.[0-9][0-9]s\\] Exiting Chain run with output:$");
  assert_string_contains (output, "Entering Chain run with input:\n{}\n");
}

static void
test_console_color_always (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = json_pack ("{s:[]}", "generations");
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDOUT_FILENO, "console-color.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler debug]\nplugin = console\ncolor = always\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  /* LangChain's get_colored_text (green, blue) and get_bolded_text. */
  assert_true (g_str_has_prefix (output, "\033[32;1m\033[1;3m[chain/start]\033[0m "
                                         "\033[1m[chain:Root] Entering Chain run with input:\n\033[0m{\n"));
  assert_string_contains (output, "\033[32;1m\033[1;3m[llm/start]\033[0m "
                                  "\033[1m[chain:Root > chat_model:FakeChat] Entering LLM run");
  assert_string_contains (output, "\033[36;1m\033[1;3m[llm/end]\033[0m \033[1m[chain:Root > chat_model:FakeChat] [");
  assert_string_contains (output, "\033[36;1m\033[1;3m[chain/end]\033[0m \033[1m[chain:Root] [");
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown (test_console_prints_runs_with_breadcrumbs, teardown_capture),
    cmocka_unit_test_teardown (test_console_tools_and_errors, teardown_capture),
    cmocka_unit_test_teardown (test_console_elapsed_formats, teardown_capture),
    cmocka_unit_test_teardown (test_console_color_always, teardown_capture),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
