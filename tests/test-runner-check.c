/* `chime check`, `chime plugins`, --version and --help, and the
 * configuration errors that stop `check` and `run` alike (exit 3) or
 * are usage errors (exit 2): a missing plugin, a misspelt key, several
 * mistakes at once, an unused [model] section, an unknown command.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * chime check
 * ---------------------------------------------------------------- */

static void
test_check_seed (void **state)
{
  g_autofree char *seed = g_build_filename (SRCDIR, "examples", "seed.ini", NULL);
  g_autoptr (RunResult) result = run_chime_in (NULL, "check", seed, NULL);

  assert_status (result, 0);
  assert_string_contains (result->out, "seed.ini: ok");
  assert_string_contains (result->out, "delivery: fenced");
  assert_string_contains (result->out, "handler token_printer: plugin token_printer (sync)");
  assert_string_contains (result->out, "handler sleepy: plugin sleepy (async)");
  /* ... from the installed plugin folder. */
  assert_string_contains (result->out, INSTALL_ROOT);
}

static void
test_check_three_mistakes (void **state)
{
  g_autofree char *dir = fresh_dir ("three-mistakes");
  g_autofree char *config = copy_test_config (dir, "three-mistakes.ini");
  const char *commands[] = { "check", "run" };

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr (RunResult) result = run_chime_in (dir, commands[i], config, NULL);

      assert_status (result, 3);
      assert_string_contains (result->err, "3 problems");
      assert_string_contains (result->err, "'fence' for 'delivery'");
      assert_string_contains (result->err, "did you mean 'fenced'");
      assert_string_contains (result->err, "'soon' for 'chunk_delay_ms'");
      assert_string_contains (result->err, "'ten' for 'delay_ms'");
      assert_string_contains (result->err, "three-mistakes.ini");
    }
}

/* ------------------------------------------------------------------
 * Configuration errors
 * ---------------------------------------------------------------- */

static void
test_missing_plugin (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-plugin");
  g_autofree char *config = copy_test_config (dir, "missing-plugin.ini");
  const char *commands[] = { "run", "check" };

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr (RunResult) result = run_chime_in (dir, commands[i], config, NULL);

      assert_status (result, 3);
      assert_string_contains (result->err, "missing-plugin.ini");
      assert_string_contains (result->err, "[handler ghost]");
      assert_string_contains (result->err, "no_such_plugin");
    }
}

static void
test_bad_key (void **state)
{
  g_autofree char *dir = fresh_dir ("bad-key");
  g_autofree char *config = copy_test_config (dir, "bad-key.ini");
  g_autoptr (RunResult) run = run_chime_in (dir, "run", config, NULL);
  g_autoptr (RunResult) check = run_chime_in (dir, "check", config, NULL);

  assert_status (run, 3);
  assert_string_contains (run->err, "delay_msec");
  assert_string_contains (run->err, "did you mean 'delay_ms'");
  assert_status (check, 3);
  assert_string_contains (check->err, "did you mean 'delay_ms'");
}

/* A [model] section the pipeline does not use is checked all the same. */
static void
test_unused_model_checked (void **state)
{
  g_autofree char *dir = fresh_dir ("spare-model");
  g_autofree char *config = copy_test_config (dir, "spare-model.ini");
  const char *commands[] = { "check", "run" };

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr (RunResult) result = run_chime_in (dir, commands[i], config, NULL);

      assert_status (result, 3);
      assert_string_contains (result->err, "unknown provider 'nope' in [model spare] of ");
      assert_string_contains (result->err, "spare-model.ini (line ");
      assert_string_contains (result->err, "valid providers: fake, openai, anthropic");
      assert_null (find_result (result->out));
    }
}

/* ------------------------------------------------------------------
 * plugins, --version, --help
 * ---------------------------------------------------------------- */

static void
test_plugins_list (void **state)
{
  static const struct {
    const char *name;
    const char *mode;
    const char *key;   /* a key it lists, or NULL */
  } shipped[] = {
    { "stdout", "sync", "color" },
    { "streaming_stdout", "sync", NULL },
    { "jsonl", "sync", "path (path, required)" },
    { "usage", "sync", "path (path)" },
    { "console", "sync", "color" },
    { "progress", "async", "force (boolean, default false)" },
    { "token_printer", "sync", NULL },
    { "sleepy", "async", "delay_ms (integer, default 300)" },
    { "astream_events", "sync", "path (string, required)" },
  };
  g_autoptr (RunResult) result = run_chime_in (NULL, "plugins", NULL);
  g_autofree char *plugin_dir = installed (LIBDIR, "chime/plugins");

  assert_status (result, 0);
  assert_string_contains (result->out, "Plugin search path:");
  assert_string_contains (result->out, plugin_dir);
  for (guint i = 0; i < G_N_ELEMENTS (shipped); i++)
    {
      g_autofree char *header = g_strdup_printf ("\n%s (%s)", shipped[i].name, shipped[i].mode);
      g_autofree char *file = g_strdup_printf ("file: %s/%s.so", plugin_dir, shipped[i].name);
      const char *section = strstr (result->out, header);
      const char *next;
      g_autofree char *entry = NULL;

      if (section == NULL)
        fail_msg ("`chime plugins` does not list %s (%s):\n%s", shipped[i].name, shipped[i].mode,
                  result->out);
      /* The plugin's entry runs up to the next unindented line. */
      next = section + strlen (header);
      while ((next = strchr (next, '\n')) != NULL && next[1] == ' ')
        next++;
      entry = next != NULL ? g_strndup (section, next - section) : g_strdup (section);
      assert_string_contains (entry, file);
      if (shipped[i].key != NULL)
        assert_string_contains (entry, shipped[i].key);
    }
  /* astream_events says what it writes and that '-' is stdout. */
  assert_string_contains (result->out, "astream_events v2");
  assert_string_contains (result->out, "'-' for stdout");
}

static void
test_version (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "--version", NULL);

  /* "chime 0.1.0 (plugin ABI 1.0)", from the headers it was built with. */
  g_autofree char *expected = g_strdup_printf ("chime %s (plugin ABI %d.%d)\n", CHIME_VERSION_STRING,
                                               CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);

  assert_status (result, 0);
  assert_string_equal (result->out, expected);
}

static void
test_help (void **state)
{
  g_autoptr (RunResult) run = run_chime_in (NULL, "run", "--help", NULL);
  g_autoptr (RunResult) check = run_chime_in (NULL, "check", "--help", NULL);
  g_autoptr (RunResult) plugins = run_chime_in (NULL, "plugins", "--help", NULL);
  g_autoptr (RunResult) top = run_chime_in (NULL, "--help", NULL);
  const char *run_options[] = { "--input", "--var", "--events", "--output", "--pretty", "CONFIG" };

  assert_status (run, 0);
  for (guint i = 0; i < G_N_ELEMENTS (run_options); i++)
    assert_string_contains (run->out, run_options[i]);
  assert_string_contains (run->out, "astream_events");
  assert_status (check, 0);
  assert_string_contains (check->out, "CONFIG");
  assert_string_contains (check->out, "--help");
  assert_status (plugins, 0);
  assert_string_contains (plugins->out, "CHIME_PLUGIN_PATH");
  assert_string_contains (plugins->out, "--help");
  assert_status (top, 0);
  assert_string_contains (top->out, "run [CONFIG]");
  assert_string_contains (top->out, "check CONFIG");
  assert_string_contains (top->out, "plugins");
}

static void
test_unknown_command (void **state)
{
  g_autoptr (RunResult) unknown = run_chime_in (NULL, "frobnicate", NULL);
  g_autoptr (RunResult) none = run_chime_in (NULL, NULL, NULL);
  g_autoptr (RunResult) bad_option = run_chime_in (NULL, "run", "--no-such-option", NULL);

  assert_status (unknown, 2);
  assert_string_contains (unknown->err, "unknown command 'frobnicate'");
  assert_string_contains (unknown->err, "Usage: chime COMMAND");
  assert_status (none, 2);
  assert_string_contains (none->err, "Usage: chime COMMAND");
  assert_status (bad_option, 2);
  assert_string_contains (bad_option->err, "--no-such-option");
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_check_seed),
    cmocka_unit_test (test_check_three_mistakes),
    cmocka_unit_test (test_missing_plugin),
    cmocka_unit_test (test_bad_key),
    cmocka_unit_test (test_unused_model_checked),
    cmocka_unit_test (test_plugins_list),
    cmocka_unit_test (test_version),
    cmocka_unit_test (test_help),
    cmocka_unit_test (test_unknown_command),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
