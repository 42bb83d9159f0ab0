/* chime as a Unix tool a newcomer meets from the README: its examples
 * work as written, two writers on one file are refused before anything
 * runs, and the usual conventions hold (`chime -V`, `chime help run`, a
 * command that takes no arguments refuses them).
 * They run the installed chime (see runner-helpers.h). */
#include "runner-helpers.h"

#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------
 * The README's "Using it", as written
 * ---------------------------------------------------------------- */

/* The command of a line of a ```sh block, without its comment. */
static char *
command_of (const char *line)
{
  const char *comment = strstr (line, "  #");

  return g_strstrip (comment != NULL ? g_strndup (line, comment - line) : g_strdup (line));
}

/* Copies the examples/ files @command names into @dir/examples. */
static void
copy_named_examples (const char *dir,
                     const char *command)
{
  g_auto (GStrv) words = g_strsplit (command, " ", -1);
  g_autofree char *examples = g_build_filename (dir, "examples", NULL);

  g_mkdir_with_parents (examples, 0755);
  for (guint i = 0; words[i] != NULL; i++)
    if (g_str_has_prefix (words[i], "examples/"))
      {
        g_autofree char *text = read_source_file (words[i]);

        g_free (write_in (examples, words[i] + strlen ("examples/"), text));
      }
}

/* Every command of the block, in a folder holding the README's pipeline
 * file as pipeline.ini, with the installed chime on the PATH: each exits
 * 0, and the JSON lines files they write (the pipeline's jsonl handler,
 * --events) are whole, each line JSON. */
static void
test_readme_using_it (void **state)
{
  g_autofree char *readme = read_source_file ("README.md");
  g_auto (GStrv) commands = doc_block (readme, "## Using it", "sh", "chime run");
  g_auto (GStrv) ini = doc_block (readme, "## Using it", "ini", "[pipeline]");
  g_autofree char *ini_text = g_strjoinv ("\n", ini);
  g_autofree char *dir = fresh_dir ("readme-using-it");
  g_autofree char *bindir = installed (BINDIR, "");
  g_autofree char *path = g_strdup_printf ("PATH=%s:%s", bindir, g_getenv ("PATH"));
  const char *env[] = { path, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (GDir) folder = NULL;
  const char *name;
  guint n_files = 0;

  g_free (write_in (dir, "pipeline.ini", ini_text));
  for (guint i = 0; commands[i] != NULL; i++)
    {
      g_autofree char *command = command_of (commands[i]);
      g_autoptr (RunResult) result = NULL;

      if (command[0] == '\0')
        continue;
      copy_named_examples (dir, command);
      result = run_argv (&options, (const char *[]) { "sh", "-c", command, NULL });
      if (result->status != 0)
        fail_msg ("`%s` exited %d:\n%s", command, result->status, result->err);
    }
  folder = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (folder)) != NULL)
    if (g_str_has_suffix (name, ".jsonl"))
      {
        g_autofree char *file = g_build_filename (dir, name, NULL);
        g_autoptr (json_t) lines = read_json_lines (file);

        assert_true (json_array_size (lines) > 0);
        n_files++;
      }
  /* The pipeline's own jsonl file and the --events file. */
  assert_int_equal (n_files, 2);
}

/* ------------------------------------------------------------------
 * Two writers on one file
 * ---------------------------------------------------------------- */

/* A jsonl handler and --events on one file: refused by `chime run` and
 * `chime check` before anything runs, naming both handlers. */
static void
test_two_writers_refused (void **state)
{
  g_autofree char *dir = fresh_dir ("two-writers");
  g_autofree char *config = write_why_not_config (dir, "conventions.ini", "[handler log]\nplugin = jsonl\npath = events.jsonl\n");
  g_autofree char *events = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) run = run_chime_in (dir, "run", config, "--events", "events.jsonl", NULL);
  g_autofree char *written = read_text (events);

  assert_status (run, 3);
  assert_string_contains (run->err, "[handler log] and [handler chime-events] both write ");
  assert_string_contains (run->err, "(line ");
  assert_null (find_result (run->out));
  assert_null (written);
}

/* Two handlers of the file on one path (through a symlink, too): `chime
 * check` says so; /dev/null may be shared. */
static void
test_two_writers_refused_at_check (void **state)
{
  g_autofree char *dir = fresh_dir ("two-writers-check");
  g_autofree char *real = g_build_filename (dir, "trace.jsonl", NULL);
  g_autofree char *link = g_build_filename (dir, "alias.jsonl", NULL);
  g_autofree char *config = write_why_not_config (dir, "conventions.ini", "[handler a]\nplugin = jsonl\npath = trace.jsonl\n\n"
                                               "[handler b]\nplugin = jsonl\npath = alias.jsonl\n\n"
                                               "[handler c]\nplugin = jsonl\npath = /dev/null\n\n"
                                               "[handler d]\nplugin = usage\npath = /dev/null\n");
  g_autoptr (RunResult) check = NULL;

  g_free (write_in (dir, "trace.jsonl", ""));
  assert_int_equal (symlink ("trace.jsonl", link), 0);
  check = run_chime_in (dir, "check", config, NULL);
  assert_status (check, 3);
  assert_string_contains (check->err, "[handler a] and [handler b] both write ");
  assert_null (strstr (check->err, "[handler c]"));
  assert_null (strstr (check->err, "[handler d]"));
  (void) real;
}

/* ------------------------------------------------------------------
 * Command-line conventions
 * ---------------------------------------------------------------- */

/* -V is --version, as in most tools. */
static void
test_short_version (void **state)
{
  g_autoptr (RunResult) short_form = run_chime_in (NULL, "-V", NULL);
  g_autoptr (RunResult) long_form = run_chime_in (NULL, "--version", NULL);

  assert_status (short_form, 0);
  assert_true (g_str_has_prefix (short_form->out, "chime "));
  assert_string_equal (short_form->out, long_form->out);
}

/* `chime help run` is `chime run --help`; help for no such command is a
 * usage error. */
static void
test_help_command (void **state)
{
  g_autoptr (RunResult) help = run_chime_in (NULL, "help", "run", NULL);
  g_autoptr (RunResult) option = run_chime_in (NULL, "run", "--help", NULL);
  g_autoptr (RunResult) unknown = run_chime_in (NULL, "help", "frobnicate", NULL);

  assert_status (help, 0);
  assert_string_contains (help->out, "chime run [OPTION");
  assert_string_equal (help->out, option->out);
  assert_status (unknown, 2);
  assert_string_contains (unknown->err, "no command 'frobnicate'");
}

/* `chime plugins` takes no arguments: a name given is not silently
 * ignored. */
static void
test_plugins_refuses_arguments (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "plugins", "jsonl", NULL);

  assert_status (result, 2);
  assert_string_contains (result->err, "plugins takes no arguments, got 'jsonl'");
  assert_string_equal (result->out, "");
}

/* ------------------------------------------------------------------
 * Colour: NO_COLOR, TERM=dumb, --color
 * ---------------------------------------------------------------- */

#define STDOUT_HANDLER "[handler out]\nplugin = stdout\n"

/* A terminal gets the stdout handler's bold banners, unless NO_COLOR is
 * set, TERM is dumb or --color=never says so. */
static void
test_color_on_terminal (void **state)
{
  g_autofree char *dir = fresh_dir ("color-tty");
  g_autofree char *config = write_why_not_config (dir, "conventions.ini", STDOUT_HANDLER);
  const char *xterm[] = { "TERM=xterm", "NO_COLOR", "CHIME_COLOR", NULL };
  const char *no_color[] = { "TERM=xterm", "NO_COLOR=1", "CHIME_COLOR", NULL };
  const char *empty_no_color[] = { "TERM=xterm", "NO_COLOR=", "CHIME_COLOR", NULL };
  const char *dumb[] = { "TERM=dumb", "NO_COLOR", "CHIME_COLOR", NULL };
  g_autofree char *args = g_strdup_printf ("run -q %s", config);
  g_autofree char *never_args = g_strdup_printf ("run -q --color=never %s", config);
  g_autoptr (RunResult) colored = run_chime_on_terminal (dir, args, xterm);
  g_autoptr (RunResult) told_not = run_chime_on_terminal (dir, args, no_color);
  g_autoptr (RunResult) empty = run_chime_on_terminal (dir, args, empty_no_color);
  g_autoptr (RunResult) dumb_terminal = run_chime_on_terminal (dir, args, dumb);
  g_autoptr (RunResult) never = run_chime_on_terminal (dir, never_args, xterm);

  assert_status (colored, 0);
  assert_string_contains (colored->out, "\033[1m> Entering new");
  assert_status (told_not, 0);
  assert_string_contains (told_not->out, "> Entering new");
  assert_null (strchr (told_not->out, '\033'));
  /* NO_COLOR set but empty does not count (no-color.org). */
  assert_non_null (strchr (empty->out, '\033'));
  assert_status (dumb_terminal, 0);
  assert_null (strchr (dumb_terminal->out, '\033'));
  assert_status (never, 0);
  assert_null (strchr (never->out, '\033'));
}

/* --color=always colours a pipe too; a word it does not know is a usage
 * error. */
static void
test_color_option (void **state)
{
  g_autofree char *dir = fresh_dir ("color-option");
  g_autofree char *config = write_why_not_config (dir, "conventions.ini", STDOUT_HANDLER);
  g_autoptr (RunResult) always = run_chime_in (dir, "run", config, "-q", "--color=always", NULL);
  g_autoptr (RunResult) piped = run_chime_in (dir, "run", config, "-q", NULL);
  g_autoptr (RunResult) bad = run_chime_in (dir, "run", config, "--color=sometimes", NULL);

  assert_status (always, 0);
  assert_string_contains (always->out, "\033[1m> Entering new");
  assert_status (piped, 0);
  assert_null (strchr (piped->out, '\033'));
  assert_status (bad, 2);
  assert_string_contains (bad->err, "--color must be auto, always or never, got 'sometimes'");
}

/* ------------------------------------------------------------------
 * The user's plugin folder
 * ---------------------------------------------------------------- */

/* A copy of the test plugin recorder_sync as @dir/@name.so. */
static void
install_plugin_copy (const char *dir,
                     const char *name)
{
  g_autofree char *source = g_build_filename (TEST_PLUGIN_DIR, ".libs", "recorder_sync.so", NULL);
  g_autofree char *file = g_strconcat (name, ".so", NULL);
  g_autofree char *target = g_build_filename (dir, file, NULL);
  g_autofree char *contents = NULL;
  gsize length;

  assert_true (g_file_get_contents (source, &contents, &length, NULL));
  assert_int_equal (g_mkdir_with_parents (dir, 0755), 0);
  assert_true (g_file_set_contents (target, contents, length, NULL));
}

/* plugin = NAME finds NAME.so in $XDG_DATA_HOME/chime/plugins, and in
 * ~/.local/share/chime/plugins without XDG_DATA_HOME. */
static void
test_user_plugin_folder (void **state)
{
  g_autofree char *home = fresh_dir ("home");
  g_autofree char *data_home = fresh_dir ("data-home");
  g_autofree char *default_dir = g_build_filename (home, ".local", "share", "chime", "plugins", NULL);
  g_autofree char *xdg_dir = g_build_filename (data_home, "chime", "plugins", NULL);
  g_autofree char *config = write_why_not_config (home, "conventions.ini", "[handler a]\nplugin = home_plugin\n\n"
                                                "[handler b]\nplugin = xdg_plugin\n");
  g_autofree char *home_setting = g_strdup_printf ("HOME=%s", home);
  g_autofree char *xdg_setting = g_strdup_printf ("XDG_DATA_HOME=%s", data_home);
  const char *default_env[] = { home_setting, "XDG_DATA_HOME", NULL };
  const char *xdg_env[] = { home_setting, xdg_setting, NULL };
  const char *args[] = { "check", config, NULL };
  const char *list[] = { "plugins", NULL };
  RunOptions by_default = { .cwd = home, .env = default_env };
  RunOptions by_xdg = { .cwd = home, .env = xdg_env };
  g_autoptr (RunResult) without_xdg = NULL;
  g_autoptr (RunResult) with_xdg = NULL;
  g_autoptr (RunResult) listed = NULL;

  install_plugin_copy (default_dir, "home_plugin");
  install_plugin_copy (xdg_dir, "xdg_plugin");
  /* Without XDG_DATA_HOME: the default folder's plugin only. */
  without_xdg = run_chime_argv (&by_default, args);
  assert_status (without_xdg, 3);
  assert_null (strstr (without_xdg->err, "[handler a]"));
  assert_string_contains (without_xdg->err, "plugin 'xdg_plugin' was not found in ");
  /* With it: its folder instead. */
  with_xdg = run_chime_argv (&by_xdg, args);
  assert_status (with_xdg, 3);
  assert_string_contains (with_xdg->err, "plugin 'home_plugin' was not found in ");
  assert_null (strstr (with_xdg->err, "[handler b]"));
  listed = run_chime_argv (&by_xdg, list);
  assert_status (listed, 0);
  assert_string_contains (listed->out, xdg_dir);
  assert_string_contains (listed->out, "/chime/plugins/xdg_plugin.so\n");
}

/* ------------------------------------------------------------------
 * The manual page
 * ---------------------------------------------------------------- */

/* chime(1) is installed under PREFIX/share/man/man1, man renders it
 * without a warning, and it has every long option of `chime run --help`. */
static void
test_man_page (void **state)
{
  g_autofree char *page = installed (PREFIX, "share/man/man1/chime.1");
  g_autoptr (RunResult) help = run_chime_in (NULL, "run", "--help", NULL);
  const char *env[] = { "MANWIDTH=200", "LC_ALL=C", NULL };
  RunOptions options = { .env = env };
  g_autoptr (RunResult) rendered = NULL;
  g_autoptr (GRegex) long_option = g_regex_new ("--([a-z]+)", 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  guint n_options = 0;

  assert_true (g_file_test (page, G_FILE_TEST_IS_REGULAR));
  rendered = run_argv (&options, (const char *[]) { "man", "--warnings", "-l", page, NULL });
  assert_status (rendered, 0);
  assert_string_equal (rendered->err, "");
  assert_string_contains (rendered->out, "chime - run LLM pipelines");
  assert_status (help, 0);
  g_regex_match (long_option, help->out, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL))
    {
      g_autofree char *option = g_match_info_fetch (match, 0);

      if (strstr (rendered->out, option) == NULL)
        fail_msg ("chime(1) does not document %s", option);
      n_options++;
    }
  assert_true (n_options >= 12);
}

/* ------------------------------------------------------------------
 * Problems as an editor shows the file
 * ---------------------------------------------------------------- */

/* Problems of several sections come in the file's line order, not in the
 * order the sections are checked (the pipeline first). */
static void
test_problems_in_line_order (void **state)
{
  g_autofree char *dir = fresh_dir ("line-order");
  g_autofree char *config = write_in (dir, "order.ini",
                                      "[handler log]\nplugin = jsonl\npath = log.jsonl\npth = x\n\n"
                                      "[model joker]\nprovider = fake\ntemprature = 3\n\n"
                                      "[pipeline]\nprompt = Tell me a joke\nmodel = joker\nparsr = str\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "check", config, NULL);
  g_auto (GStrv) lines = NULL;

  assert_status (result, 3);
  lines = split_lines (result->err);
  assert_int_equal (g_strv_length (lines), 4);
  assert_string_equal (lines[0], "chime: 3 problems:");
  assert_string_contains (lines[1], "'pth'");
  assert_string_contains (lines[2], "'temprature'");
  assert_string_contains (lines[3], "'parsr'");
}

/* A ';' comment line, and a '#' or ';' comment after a value, are named
 * with the fix instead of GLib's raw message or a bare "invalid value". */
static void
test_comment_hints (void **state)
{
  g_autofree char *dir = fresh_dir ("comments");
  g_autofree char *semicolon = write_in (dir, "semicolon.ini",
                                         "[pipeline]\nprompt = hi\nmodel = m\n; the model\n"
                                         "[model m]\nprovider = fake\n");
  g_autofree char *inline_comment = write_in (dir, "inline.ini",
                                              "[pipeline]\nprompt = hi\nmodel = m\n\n"
                                              "[model m]\nprovider = fake\nchunk_delay_ms = 5 # wait\n\n"
                                              "[handler p]\nplugin = progress\nforce = true ; always\n");
  g_autoptr (RunResult) first = run_chime_in (dir, "check", semicolon, NULL);
  g_autoptr (RunResult) second = run_chime_in (dir, "check", inline_comment, NULL);

  assert_status (first, 3);
  assert_string_contains (first->err, "semicolon.ini is not a valid INI file: line 4 (\"; the model\") is a "
                                      "';' comment, and comments start with '#' here: write \"# the model\"");
  assert_status (second, 3);
  assert_string_contains (second->err, "invalid value '5 # wait' for 'chunk_delay_ms' in [model m] of inline.ini "
                                       "(line 7): expected a whole number from 0 to 3600000 (a '#' or ';' "
                                       "comment after a value is part of the value");
  assert_string_contains (second->err, "invalid value 'true ; always' for 'force' in [handler p] of inline.ini "
                                       "(line 11): expected true or false (a '#' or ';' comment");
}

/* A batch input's error names its domain for a reader
 * ("chime-config-error"), not by GLib's quark string. */
static void
test_batch_error_domain (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-domain");
  g_autofree char *config = write_why_not_config (dir, "conventions.ini", "");
  g_autofree char *inputs = write_in (dir, "inputs.jsonl", "oops\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--inputs", inputs, NULL);
  g_autoptr (json_t) lines = parse_json_lines (result->out, "stdout");
  json_t *error = json_object_get (json_array_get (lines, 0), "error");

  assert_status (result, 1);
  assert_string_equal (json_string_value (json_object_get (error, "domain")), "chime-config-error");
}

/* ------------------------------------------------------------------
 * The docs say what chime does
 * ---------------------------------------------------------------- */

/* Every plugin `chime plugins` finds installed has its row in the table
 * of docs/plugins.md. */
static void
test_plugins_doc_lists_every_plugin (void **state)
{
  g_autofree char *doc = read_source_file ("docs/plugins.md");
  g_autoptr (RunResult) result = run_chime_in (NULL, "plugins", NULL);
  g_autoptr (GRegex) file_line = g_regex_new ("^    file: .*/([a-z_]+)\\.so$", G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  guint n = 0;

  assert_status (result, 0);
  g_regex_match (file_line, result->out, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL))
    {
      g_autofree char *name = g_match_info_fetch (match, 1);
      g_autofree char *row = g_strdup_printf ("| [`%s`](", name);

      if (strstr (doc, row) == NULL)
        fail_msg ("docs/plugins.md has no row for the installed plugin %s", name);
      n++;
    }
  /* Thirteen handler plugins and word_tools, the tool plugin. */
  assert_int_equal (n, 14);
  assert_string_contains (doc, "chime installs thirteen handler plugins and one tool plugin");
}

/* --events FILE, relative, lands in the current folder (as
 * docs/events-stream.md says), not next to CONFIG. */
static void
test_events_path_relative_to_current_folder (void **state)
{
  g_autofree char *cwd = fresh_dir ("events-cwd");
  g_autofree char *configs = fresh_dir ("events-configs");
  g_autofree char *config = write_why_not_config (configs, "conventions.ini", "");
  g_autofree char *here = g_build_filename (cwd, "ev.jsonl", NULL);
  g_autofree char *there = g_build_filename (configs, "ev.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (cwd, "run", config, "-q", "--events", "ev.jsonl", NULL);
  g_autofree char *doc = read_source_file ("docs/events-stream.md");

  assert_status (result, 0);
  assert_true (g_file_test (here, G_FILE_TEST_IS_REGULAR));
  assert_false (g_file_test (there, G_FILE_TEST_EXISTS));
  assert_null (strstr (doc, "lands\nnext to CONFIG"));
  assert_string_contains (doc, "a\nrelative `--events FILE` is relative to the current folder");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_readme_using_it),
    cmocka_unit_test (test_two_writers_refused),
    cmocka_unit_test (test_two_writers_refused_at_check),
    cmocka_unit_test (test_short_version),
    cmocka_unit_test (test_help_command),
    cmocka_unit_test (test_plugins_refuses_arguments),
    cmocka_unit_test (test_color_on_terminal),
    cmocka_unit_test (test_color_option),
    cmocka_unit_test (test_user_plugin_folder),
    cmocka_unit_test (test_man_page),
    cmocka_unit_test (test_problems_in_line_order),
    cmocka_unit_test (test_comment_hints),
    cmocka_unit_test (test_batch_error_domain),
    cmocka_unit_test (test_plugins_doc_lists_every_plugin),
    cmocka_unit_test (test_events_path_relative_to_current_folder),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
