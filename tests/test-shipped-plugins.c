/* The plugins chime ships (plugins/): what they write, byte for byte where
 * LangChain defines the format, loaded as real modules from the build
 * tree. Every test emits through the run managers, frees the runtime (so
 * every instance has shut down), then checks the output. */
#include "test-helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------
 * Capturing stdout or stderr into a file
 * ---------------------------------------------------------------- */

typedef struct {
  int   fd;      /* the descriptor being captured, -1 when none */
  int   saved;   /* a duplicate of the original, restored at the end */
  char *path;
} Capture;

static Capture capture = { -1, -1, NULL };

static void
capture_start (int         fd,
               const char *name)
{
  int file;

  assert_int_equal (capture.fd, -1);
  /* Whatever stdio holds belongs to the real descriptor. */
  fflush (stdout);
  fflush (stderr);
  capture.path = test_path (name);
  file = open (capture.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true (file >= 0);
  capture.saved = dup (fd);
  assert_true (capture.saved >= 0);
  assert_true (dup2 (file, fd) >= 0);
  close (file);
  capture.fd = fd;
}

/* Restores the descriptor and returns what was written to it. */
static char *
capture_stop (void)
{
  char *text = NULL;

  if (capture.fd < 0)
    return NULL;
  fflush (stdout);
  fflush (stderr);
  dup2 (capture.saved, capture.fd);
  close (capture.saved);
  capture.fd = capture.saved = -1;
  g_file_get_contents (capture.path, &text, NULL, NULL);
  g_clear_pointer (&capture.path, g_free);
  return text != NULL ? text : g_strdup ("");
}

/* A failed assertion jumps out of the test: give the terminal back. */
static int
teardown_capture (void **state)
{
  g_free (capture_stop ());
  return 0;
}

/* ------------------------------------------------------------------
 * Emitting
 * ---------------------------------------------------------------- */

static const char *const hello_tokens[] = { "Hello", " ", "world", NULL };

/* A UsageMetadata as LangChain's chat models report it. */
static json_t *
usage_metadata (int input,
                int output,
                int cache_read,
                int reasoning)
{
  return json_pack ("{s:i, s:i, s:i, s:{s:i}, s:{s:i}}",
                    "input_tokens", input,
                    "output_tokens", output,
                    "total_tokens", input + output,
                    "input_token_details", "cache_read", cache_read,
                    "output_token_details", "reasoning", reasoning);
}

/* An LLMResult with one ChatGeneration whose AI message carries @usage
 * (borrowed; NULL for none) and the model name @model (NULL for none). */
static json_t *
llm_result (const char *text,
            const char *model,
            json_t     *usage)
{
  json_t *message = json_pack ("{s:s, s:s, s:{}}", "type", "ai", "content", text,
                               "response_metadata");

  if (usage != NULL)
    json_object_set (message, "usage_metadata", usage);
  if (model != NULL)
    json_object_set_new (json_object_get (message, "response_metadata"), "model_name",
                         json_string (model));
  return json_pack ("{s:[[{s:s, s:o, s:s}]], s:n, s:s}",
                    "generations", "text", text, "message", message, "type", "ChatGeneration",
                    "llm_output", "type", "LLMResult");
}

/* chain "Root" > chat model "FakeChat": chain_start, chat_model_start,
 * the tokens, llm_end with @result, chain_end. */
static void
run_conversation (ChimeRuntime       *runtime,
                  const char * const *tokens,
                  json_t             *result)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  g_autoptr (json_t) messages = test_messages ("system", "be brief", "human", "hi", NULL);
  g_autoptr (json_t) outputs = json_pack ("{s:s}", "output", "done");
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) llm = NULL;

  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  assert_null (error);
  child = chime_run_get_child (chain, NULL);
  llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "FakeChat", NULL, &error);
  assert_null (error);
  for (; tokens != NULL && *tokens != NULL; tokens++)
    assert_true (chime_run_on_llm_new_token (llm, *tokens, NULL, &error));
  assert_true (chime_run_on_llm_end (llm, result, &error));
  assert_true (chime_run_on_chain_end (chain, outputs, &error));
}

/* A run_conversation whose LLMResult reports @usage for @model. */
static void
run_with_usage (ChimeRuntime *runtime,
                const char   *model,
                json_t       *usage)
{
  g_autoptr (json_t) result = llm_result ("Hello world", model, usage);

  run_conversation (runtime, hello_tokens, result);
}

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

/* Elapsed times vary: "[312ms]" and "[1.02s]" become "[T]". */
static char *
mask_elapsed (const char *text)
{
  g_autoptr (GRegex) regex = g_regex_new ("\\[([0-9]+ms|[0-9]+\\.[0-9][0-9]s)\\]", 0, 0, NULL);

  return g_regex_replace_literal (regex, text, -1, 0, "[T]", 0, NULL);
}

static void
assert_text_equal (const char *actual,
                   const char *expected)
{
  if (g_strcmp0 (actual, expected) != 0)
    {
      g_autofree char *escaped_actual = g_strescape (actual != NULL ? actual : "(null)", NULL);
      g_autofree char *escaped_expected = g_strescape (expected, NULL);

      fail_msg ("expected:\n%s\ngot:\n%s", escaped_expected, escaped_actual);
    }
}

static void
assert_matches (const char *text,
                const char *pattern)
{
  if (!g_regex_match_simple (pattern, text, G_REGEX_MULTILINE, 0))
    {
      g_autofree char *escaped = g_strescape (text, NULL);

      fail_msg ("expected a match for /%s/ in:\n%s", pattern, escaped);
    }
}

/* ------------------------------------------------------------------
 * jsonl
 * ---------------------------------------------------------------- */

static json_t *
parse_line (const char *line)
{
  json_error_t json_error;
  json_t *json = json_loads (line, 0, &json_error);

  if (json == NULL)
    fail_msg ("not JSON (%s): %s", json_error.text, line);
  return json;
}

static const char *
field (json_t     *object,
       const char *key)
{
  return json_string_value (json_object_get (object, key));
}

static void
test_jsonl_writes_every_event_in_order (void **state)
{
  static const char *const expected[] = {
    "chain_start", "chat_model_start", "llm_new_token", "llm_new_token", "llm_new_token",
    "llm_end", "chain_end",
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("events.jsonl");
  g_autoptr (json_t) usage = usage_metadata (8, 10, 0, 0);
  g_autoptr (GPtrArray) parsed = g_ptr_array_new_with_free_func ((GDestroyNotify) json_decref);
  json_t **events;
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;
  json_t *response_usage;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  run_with_usage (runtime, "model-a", usage);
  chime_runtime_unref (runtime);

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_ptr_array_add (parsed, parse_line (lines[i]));
      assert_string_equal (field (g_ptr_array_index (parsed, i), "event"), expected[i]);
    }
  events = (json_t **) parsed->pdata;
  /* The runs: a root chain and a chat model under it. */
  assert_string_equal (field (events[0], "name"), "Root");
  assert_true (json_is_null (json_object_get (events[0], "parent_run_id")));
  assert_string_equal (field (events[1], "name"), "FakeChat");
  assert_string_equal (field (events[1], "run_type"), "chat_model");
  assert_string_equal (field (events[1], "parent_run_id"), field (events[0], "run_id"));
  assert_string_equal (field (events[6], "run_id"), field (events[0], "run_id"));
  /* The payloads. */
  assert_string_equal (field (json_object_get (events[0], "inputs"), "input"), "hi");
  assert_string_equal (field (events[2], "token"), "Hello");
  assert_string_equal (field (events[3], "token"), " ");
  assert_string_equal (field (events[4], "token"), "world");
  response_usage = json_object_get (
    json_object_get (json_array_get (json_array_get (json_object_get (
      json_object_get (events[5], "response"), "generations"), 0), 0), "message"),
    "usage_metadata");
  assert_true (json_equal (response_usage, usage));
  assert_string_equal (field (json_object_get (events[6], "outputs"), "output"), "done");
}

/* Without fsync, lines are buffered but flushed at every run boundary:
 * after chain_end is handled, the file is complete before shutdown. */
static void
test_jsonl_flushes_at_run_boundaries (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("boundaries.jsonl");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_flush (runtime);
  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 7);
  chime_runtime_unref (runtime);
}

/* With fsync = true every line is on disk once handled, tokens too. */
static void
test_jsonl_fsync_writes_every_line (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("fsync.jsonl");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\nfsync = true\n", path);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "FakeChat", NULL, &error);
  assert_true (chime_run_on_llm_new_token (llm, "Hello", NULL, &error));
  assert_true (chime_run_on_llm_new_token (llm, "!", NULL, &error));
  chime_runtime_flush (runtime);
  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 3);
  assert_string_contains (lines[2], "\"token\":\"!\"");
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

static void
test_jsonl_truncates_by_default (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("truncate.jsonl", "stale line\nanother\n");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 7);
  assert_int_equal (test_find_line (lines, "stale", 0), -1);
  assert_string_contains (lines[0], "\"event\":\"chain_start\"");
}

/* `chime check` starts every handler without running anything: that must
 * not wipe the last run's trace. */
static void
test_jsonl_starting_without_events_keeps_the_file (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("untouched.jsonl", "{\"last\":\"run\"}\n");
  g_autofree char *contents = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  chime_runtime_unref (runtime);

  assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  assert_string_equal (contents, "{\"last\":\"run\"}\n");
}

static void
test_jsonl_append_keeps_earlier_lines (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("append.jsonl", "{\"earlier\":true}\n");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_auto (GStrv) lines = NULL;

  for (guint i = 0; i < 2; i++)
    {
      ChimeRuntime *runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                                                "[handler trace]\nplugin = jsonl\npath = %s\n"
                                                "append = true\n", path);
      assert_null (error);
      run_conversation (runtime, hello_tokens, result);
      chime_runtime_unref (runtime);
    }

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 1 + 2 * 7);
  assert_string_equal (lines[0], "{\"earlier\":true}");
  assert_string_contains (lines[1], "\"event\":\"chain_start\"");
  assert_string_contains (lines[7], "\"event\":\"chain_end\"");
  assert_string_contains (lines[8], "\"event\":\"chain_start\"");
  for (guint i = 0; lines[i] != NULL; i++)
    json_decref (parse_line (lines[i]));
}

static void
test_jsonl_unwritable_path_names_it (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("no-such-folder/events.jsonl");
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (runtime);
  assert_true (g_error_matches (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN));
  assert_string_contains (error->message, "handler 'trace' (plugin 'jsonl'");
  assert_string_contains (error->message, path);
  assert_string_contains (error->message, g_strerror (ENOENT));
}

static void
test_jsonl_requires_path (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler trace]\nplugin = jsonl\n");
  assert_null (runtime);
  assert_string_contains (error->message, "missing required key 'path'");
}

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

/* ------------------------------------------------------------------
 * stdout and streaming_stdout
 * ---------------------------------------------------------------- */

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

/* ------------------------------------------------------------------
 * console
 * ---------------------------------------------------------------- */

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

/* ------------------------------------------------------------------
 * progress
 * ---------------------------------------------------------------- */

/* The text after the last carriage return: what the terminal shows. */
static const char *
last_redraw (const char *output)
{
  const char *last = strrchr (output, '\r');

  return last != NULL ? last + 1 : output;
}

static void
test_progress_forced_final_line (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDERR_FILENO, "progress.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler progress]\nplugin = progress\nforce = true\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  assert_true (output[0] == '\r');
  assert_matches (last_redraw (output),
                  "^progress: 2 runs done, 0 running, 3 tokens, [0-9]+\\.[0-9] tokens/s *\n\\z");
}

static void
test_progress_silent_when_not_a_tty (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDERR_FILENO, "progress-silent.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler progress]\nplugin = progress\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  assert_text_equal (output, "");
}

/* 2,000 tokens in a burst redraw the line a handful of times, not 2,000. */
static void
test_progress_throttles_redraws (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) tokens = g_ptr_array_new ();
  g_autoptr (json_t) result = llm_result ("x", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;
  gint64 start, elapsed_ms;
  guint redraws = 0;

  for (guint i = 0; i < 2000; i++)
    g_ptr_array_add (tokens, (gpointer) "x");
  g_ptr_array_add (tokens, NULL);

  capture_start (STDERR_FILENO, "progress-throttle.txt");
  start = g_get_monotonic_time ();
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler progress]\nplugin = progress\nforce = true\n");
  assert_null (error);
  run_conversation (runtime, (const char * const *) tokens->pdata, result);
  chime_runtime_unref (runtime);
  elapsed_ms = (g_get_monotonic_time () - start) / G_TIME_SPAN_MILLISECOND;
  output = capture_stop ();

  for (const char *c = output; *c != '\0'; c++)
    redraws += *c == '\r';
  /* The first event, one per 100 ms, a trailing one, and the final line. */
  if (redraws < 2 || redraws > elapsed_ms / 100 + 3)
    fail_msg ("%u redraws in %" G_GINT64_FORMAT " ms", redraws, elapsed_ms);
  assert_matches (last_redraw (output), "^progress: 2 runs done, 0 running, 2000 tokens, ");
}

/* ------------------------------------------------------------------ */

/* The uninstalled plugins live in plugins/NAME/ of the build tree: put
 * every such folder on CHIME_PLUGIN_PATH, after the test plugins. */
static void
set_plugin_path (void)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr (GDir) dir = g_dir_open (SHIPPED_PLUGIN_DIR, 0, NULL);
  g_auto (GStrv) folders = NULL;
  g_autofree char *path = NULL;
  const char *name;

  g_strv_builder_add (builder, TEST_PLUGIN_DIR);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *folder = g_build_filename (SHIPPED_PLUGIN_DIR, name, NULL);

      if (g_file_test (folder, G_FILE_TEST_IS_DIR))
        g_strv_builder_add (builder, folder);
    }
  folders = g_strv_builder_end (builder);
  path = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, folders);
  g_setenv ("CHIME_PLUGIN_PATH", path, TRUE);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_jsonl_writes_every_event_in_order),
    cmocka_unit_test (test_jsonl_flushes_at_run_boundaries),
    cmocka_unit_test (test_jsonl_fsync_writes_every_line),
    cmocka_unit_test (test_jsonl_truncates_by_default),
    cmocka_unit_test (test_jsonl_starting_without_events_keeps_the_file),
    cmocka_unit_test (test_jsonl_append_keeps_earlier_lines),
    cmocka_unit_test (test_jsonl_unwritable_path_names_it),
    cmocka_unit_test (test_jsonl_requires_path),
    cmocka_unit_test (test_usage_sums_per_model),
    cmocka_unit_test_teardown (test_usage_prints_to_stderr_without_path, teardown_capture),
    cmocka_unit_test (test_usage_reads_serialized_messages),
    cmocka_unit_test (test_usage_is_thread_safe_inline),
    cmocka_unit_test_teardown (test_stdout_prints_verbose_output, teardown_capture),
    cmocka_unit_test_teardown (test_stdout_color_always, teardown_capture),
    cmocka_unit_test (test_color_key_is_checked),
    cmocka_unit_test_teardown (test_streaming_stdout_writes_tokens, teardown_capture),
    cmocka_unit_test_teardown (test_streaming_stdout_without_newline, teardown_capture),
    cmocka_unit_test_teardown (test_streaming_stdout_ends_the_line_on_error, teardown_capture),
    cmocka_unit_test_teardown (test_console_prints_runs_with_breadcrumbs, teardown_capture),
    cmocka_unit_test_teardown (test_console_tools_and_errors, teardown_capture),
    cmocka_unit_test_teardown (test_console_elapsed_formats, teardown_capture),
    cmocka_unit_test_teardown (test_console_color_always, teardown_capture),
    cmocka_unit_test_teardown (test_progress_forced_final_line, teardown_capture),
    cmocka_unit_test_teardown (test_progress_silent_when_not_a_tty, teardown_capture),
    cmocka_unit_test_teardown (test_progress_throttles_redraws, teardown_capture),
  };

  set_plugin_path ();
  return test_run_group (tests, G_N_ELEMENTS (tests));
}
