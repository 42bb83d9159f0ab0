/* Every example in examples/ runs with the command its header comment
 * gives (those that call a real API against the mock LLM server), `chime
 * check` needs no API key for them, and the batch example runs as its
 * header says.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * Every example in examples/
 * ---------------------------------------------------------------- */

/* The command an example's header comment gives: the arguments after
 * "chime run examples/NAME.ini", up to "(" or "&&" or "|", and in @env
 * the NAME=VALUE settings written before "chime" on that line (for the
 * API key a local server does not check). NULL when the header names no
 * such command. */
static char **
example_command_args (const char *text,
                      const char *file_name,
                      char     ***env)
{
  g_auto (GStrv) lines = split_lines (text);
  g_autofree char *marker = g_strdup_printf ("chime run examples/%s", file_name);

  *env = g_new0 (char *, 1);
  for (guint i = 0; lines[i] != NULL && lines[i][0] == '#'; i++)
    {
      const char *found = strstr (lines[i], marker);
      g_autofree char *rest = NULL;
      g_autofree char *before = NULL;
      char *cut;
      char **args = NULL;

      if (found == NULL)
        continue;
      before = g_strstrip (g_strndup (lines[i] + 1, found - lines[i] - 1));
      if (before[0] != '\0')
        {
          g_strfreev (*env);
          if (!g_shell_parse_argv (before, NULL, env, NULL))
            fail_msg ("cannot parse the command in %s: %s", file_name, lines[i]);
          for (guint e = 0; (*env)[e] != NULL; e++)
            if (strchr ((*env)[e], '=') == NULL)
              fail_msg ("%s: only NAME=VALUE may come before chime: %s", file_name, lines[i]);
        }
      rest = g_strdup (found + strlen (marker));
      for (const char *stop = "(&|"; *stop != '\0'; stop++)
        if ((cut = strchr (rest, *stop)) != NULL)
          *cut = '\0';
      g_strstrip (rest);
      if (rest[0] == '\0')
        return g_new0 (char *, 1);
      if (!g_shell_parse_argv (rest, NULL, &args, NULL))
        fail_msg ("cannot parse the command in %s: %s", file_name, lines[i]);
      return args;
    }
  return NULL;
}

/* The provider of an example that calls a real API (openai, anthropic),
 * or NULL. */
static char *
example_real_provider (const char *text)
{
  g_autoptr (GRegex) regex = g_regex_new ("^\\s*provider\\s*=\\s*(openai|anthropic)\\s*$",
                                          G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;

  if (!g_regex_match (regex, text, 0, &match))
    return NULL;
  return g_match_info_fetch (match, 1);
}

/* The API keys the examples read, set to the test's key. */
static const char *const example_key_settings[] = {
  "OPENAI_API_KEY=" MOCK_API_KEY, "ANTHROPIC_API_KEY=" MOCK_API_KEY, NULL
};

/* What the mock server streams for each provider's default fixture. */
static const char *
mock_fixture_output (const char *provider)
{
  return g_str_equal (provider, "anthropic") ? "Hello there!" : "I'm unable app.";
}

static void
test_examples_all_run (void **state)
{
  g_autofree char *dir_path = g_build_filename (SRCDIR, "examples", NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  guint n_real = 0;

  assert_non_null (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".ini"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  assert_true (names->len >= 9);

  for (guint i = 0; i < names->len; i++)
    {
      const char *file_name = names->pdata[i];
      g_autofree char *path = g_build_filename (dir_path, file_name, NULL);
      g_autofree char *text = read_text (path);
      g_auto (GStrv) env = NULL;
      g_auto (GStrv) extra = example_command_args (text, file_name, &env);
      g_autofree char *provider = example_real_provider (text);
      g_autofree char *run_dir = NULL;
      g_autofree char *run_path = NULL;
      g_autoptr (GPtrArray) args = g_ptr_array_new ();
      g_autoptr (GStrvBuilder) env_builder = g_strv_builder_new ();
      g_auto (GStrv) run_env = NULL;
      g_autoptr (RunResult) result = NULL;
      g_autoptr (json_t) json = NULL;
      RunOptions options = { 0 };

      if (extra == NULL)
        fail_msg ("examples/%s: its header comment must give the command to run it "
                  "(\"#   chime run examples/%s ...\")", file_name, file_name);
      if (provider != NULL)
        {
          /* A copy that calls the mock server instead of the real API. */
          g_autofree char *on_mock = example_on_mock (text, file_name, NULL);

          run_dir = fresh_dir ("example");
          run_path = write_in (run_dir, file_name, on_mock);
          /* The agent examples' tool command, beside the copy. */
          if (strstr (text, "shout.sh") != NULL)
            {
              g_autofree char *script = read_source_file ("examples/shout.sh");

              g_free (write_in (run_dir, "shout.sh", script));
            }
          g_strv_builder_addv (env_builder, (const char **) example_key_settings);
          n_real++;
        }
      g_strv_builder_addv (env_builder, (const char **) env);
      run_env = g_strv_builder_end (env_builder);
      options.env = (const char * const *) run_env;
      g_ptr_array_add (args, "run");
      g_ptr_array_add (args, run_path != NULL ? run_path : path);
      for (guint a = 0; extra[a] != NULL; a++)
        g_ptr_array_add (args, extra[a]);
      g_ptr_array_add (args, NULL);
      result = run_chime_argv (&options, (const char * const *) args->pdata);
      if (result->status != 0)
        fail_msg ("examples/%s exited with %d\nstdout:\n%s\nstderr:\n%s", file_name,
                  result->status, result->out, result->err);
      json = find_result (result->out);
      if (json == NULL)
        fail_msg ("examples/%s printed no result JSON:\n%s", file_name, result->out);
      assert_true (json_is_string (json_object_get (json, "run_id")));
      assert_non_null (json_object_get (json, "output"));
      assert_string_equal (json_string_value (json_object_get (json_object_get (json, "llm_result"), "type")),
                           "LLMResult");
      if (strstr (result->err, "WARNING") != NULL || strstr (result->err, "CRITICAL") != NULL)
        fail_msg ("examples/%s logged a warning:\n%s", file_name, result->err);
      /* The JSON parser's output is the parsed object, not a string. */
      if (g_str_equal (file_name, "json-parser.ini"))
        assert_true (json_is_object (json_object_get (json, "output")));
      if (g_str_equal (file_name, "variables.ini"))
        assert_string_contains (result->out, "Tell me a joke about otters");
      if (provider != NULL)
        {
          assert_string_equal (json_string_value (json_object_get (json, "output")),
                               mock_fixture_output (provider));
          assert_no_secret ("stdout", result->out);
          assert_no_secret ("stderr", result->err);
        }
      /* The seed's handlers, on Claude's tokens. */
      if (g_str_equal (file_name, "anthropic.ini"))
        {
          assert_string_contains (result->out, "Hi! I just woke up. Your llm is starting\n");
          assert_string_contains (result->out, TOKEN_PREFIX " there\n");
          assert_string_contains (result->out, "Hi! I just woke up. Your llm is ending\n");
        }
    }
  /* openai.ini, anthropic.ini, local-llama.ini and the two agents at least. */
  assert_true (n_real >= 5);
}

/* `chime check` on the examples that call real APIs needs no key. */
static void
test_examples_check_without_key (void **state)
{
  static const char *const examples[] = {
    "openai.ini", "anthropic.ini", "local-llama.ini", "openai-agent.ini", "anthropic-agent.ini"
  };
  const char *env[] = { "OPENAI_API_KEY", "ANTHROPIC_API_KEY", NULL };
  RunOptions options = { .env = env };

  for (guint i = 0; i < G_N_ELEMENTS (examples); i++)
    {
      g_autofree char *path = g_build_filename (SRCDIR, "examples", examples[i], NULL);
      g_autofree char *ok = g_strdup_printf ("%s: ok\n", path);
      const char *args[] = { "check", path, NULL };
      g_autoptr (RunResult) result = run_chime_argv (&options, args);

      assert_status (result, 0);
      assert_string_contains (result->out, ok);
    }
}

/* The batch example: openai.ini on examples/batch.jsonl, as its header
 * says, against the mock server. */
static void
test_example_batch (void **state)
{
  g_autofree char *dir = fresh_dir ("example-batch");
  g_autofree char *text = read_source_file ("examples/openai.ini");
  g_autofree char *on_mock = example_on_mock (text, "openai.ini", NULL);
  g_autofree char *config = write_in (dir, "openai.ini", on_mock);
  g_autofree char *inputs = g_build_filename (SRCDIR, "examples", "batch.jsonl", NULL);
  g_autofree char *inputs_text = read_text (inputs);
  g_auto (GStrv) input_lines = split_lines (inputs_text);
  g_autofree char *output = g_build_filename (dir, "results.jsonl", NULL);
  const char *args[] = { "run", config, "--inputs", inputs, "--concurrency", "4", "--output", output, NULL };
  RunOptions options = { .cwd = dir, .env = example_key_settings };
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = NULL;

  assert_string_contains (text, "chime run examples/openai.ini --inputs examples/batch.jsonl");
  result = run_chime_argv (&options, args);
  assert_status (result, 0);
  lines = read_json_lines (output);
  assert_true (g_strv_length (input_lines) >= 3);
  assert_int_equal (json_array_size (lines), g_strv_length (input_lines));
  for (guint i = 0; i < json_array_size (lines); i++)
    {
      json_t *line = json_array_get (lines, i);

      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      assert_string_equal (json_string_value (json_object_get (line, "output")), "I'm unable app.");
    }
  assert_no_secret ("stderr", result->err);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_examples_all_run),
    cmocka_unit_test (test_examples_check_without_key),
    cmocka_unit_test (test_example_batch),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
