/* What chime says on stderr while it runs: handler failures in chime's
 * own one-line form (not GLib's "(chime run:PID): chime-WARNING **"), a
 * failure repeated on every event said once and counted in the summary,
 * --verbose for everything, G_MESSAGES_DEBUG as documented.
 * They run the installed chime (see runner-helpers.h). */
#include "runner-helpers.h"

#include <string.h>

#define REFUSING_HANDLER "[handler rec]\nplugin = recorder_sync\nfail_on = llm_new_token\n"
#define REFUSAL_LINE                                                                          \
  "chime: warning: handler 'rec' (recorder_sync) failed on llm_new_token: recorder rec refuses " \
  "llm_new_token"

/* The lines of @text that contain @needle. */
static guint
count_lines_with (const char *text,
                  const char *needle)
{
  g_auto (GStrv) lines = split_lines (text);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], needle) != NULL)
      n++;
  return n;
}

static RunResult *
run_with_test_plugins (const char         *dir,
                       const char * const *extra_env,
                       const char * const *args)
{
  g_autoptr (GPtrArray) env = g_ptr_array_new ();
  RunOptions options = { .cwd = dir };

  g_ptr_array_add (env, (gpointer) "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR);
  g_ptr_array_add (env, (gpointer) "G_MESSAGES_DEBUG");
  for (guint i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
    g_ptr_array_add (env, (gpointer) extra_env[i]);
  g_ptr_array_add (env, NULL);
  options.env = (const char * const *) env->pdata;
  return run_chime_argv (&options, args);
}

static void
assert_no_glib_format (const char *err)
{
  g_auto (GStrv) lines = split_lines (err);

  assert_null (strstr (err, "WARNING **"));
  assert_null (strstr (err, "(chime run:"));
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] == '\0')
        fail_msg ("a blank line in stderr:\n%s", err);
      if (!g_str_has_prefix (lines[i], "chime: ") && !g_str_has_prefix (lines[i], "  "))
        fail_msg ("a line not in chime's form: %s\nstderr:\n%s", lines[i], err);
    }
}

/* A handler failing on each of three tokens the same way: one line in
 * chime's form, then the summary with the count; exit status 4. */
static void
test_handler_failure_said_once (void **state)
{
  g_autofree char *dir = fresh_dir ("once");
  g_autofree char *config = write_why_not_config (dir, "messages.ini", REFUSING_HANDLER);
  const char *args[] = { "run", config, "-q", NULL };
  g_autoptr (RunResult) result = run_with_test_plugins (dir, NULL, args);

  assert_status (result, 4);
  assert_no_glib_format (result->err);
  assert_int_equal (count_lines_with (result->err, REFUSAL_LINE), 1);
  assert_string_contains (result->err, "chime: handler 'rec' failed 3 times: recorder rec refuses llm_new_token");
}

/* --verbose: every failure, and what is about to run. */
static void
test_verbose_says_everything (void **state)
{
  g_autofree char *dir = fresh_dir ("verbose");
  g_autofree char *config = write_why_not_config (dir, "messages.ini", REFUSING_HANDLER);
  const char *args[] = { "run", config, "-q", "--verbose", NULL };
  g_autoptr (RunResult) result = run_with_test_plugins (dir, NULL, args);

  assert_status (result, 4);
  assert_no_glib_format (result->err);
  assert_int_equal (count_lines_with (result->err, REFUSAL_LINE), 3);
  assert_string_contains (result->err, "chime: debug: running messages.ini with 1 handler: 'rec'");
}

/* G_MESSAGES_DEBUG=chime (or all) shows chime's debug messages, as the
 * docs say; without it, none. */
static void
test_messages_debug (void **state)
{
  g_autofree char *dir = fresh_dir ("debug");
  g_autofree char *config = write_why_not_config (dir, "messages.ini", "");
  const char *args[] = { "run", config, "-q", NULL };
  const char *chime_env[] = { "G_MESSAGES_DEBUG=chime", NULL };
  const char *all_env[] = { "G_MESSAGES_DEBUG=all", NULL };
  g_autoptr (RunResult) quiet = run_with_test_plugins (dir, NULL, args);
  g_autoptr (RunResult) chime = run_with_test_plugins (dir, chime_env, args);
  g_autoptr (RunResult) all = run_with_test_plugins (dir, all_env, args);

  assert_status (quiet, 0);
  assert_string_equal (quiet->err, "");
  assert_status (chime, 0);
  assert_string_contains (chime->err, "chime: debug: running messages.ini with 0 handlers");
  assert_no_glib_format (chime->err);
  assert_status (all, 0);
  assert_string_contains (all->err, "chime: debug: running messages.ini");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_handler_failure_said_once),
    cmocka_unit_test (test_verbose_says_everything),
    cmocka_unit_test (test_messages_debug),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
