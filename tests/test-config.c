/* Configuration errors and plugin loading: every mistake gets one clear
 * message naming the file, the section and the key, all reported at once. */
#include "test-helpers.h"

#include <string.h>
#include <unistd.h>

static char *
config_error (const char *format,
              ...) G_GNUC_PRINTF (1, 2);

/* Builds a runtime that must fail, and returns the error message. */
static char *
config_error (const char *format,
              ...)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  ChimeRuntime *runtime;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  runtime = test_runtime_new (&error, "%s", text);
  if (runtime != NULL)
    {
      chime_runtime_unref (runtime);
      fail_msg ("expected a configuration error for:\n%s", text);
    }
  assert_true (error->domain == CHIME_CONFIG_ERROR);
  return g_strdup (error->message);
}

static void
test_unknown_runtime_key_suggests (void **state)
{
  g_autofree char *message = config_error ("[runtime]\nthread = 4\n");

  assert_string_contains (message, "unknown key 'thread' in [runtime] of pipeline-");
  assert_string_contains (message, ".ini (line 2); did you mean 'threads'?");
}

static void
test_unknown_key_lists_valid_keys (void **state)
{
  g_autofree char *message = config_error ("[runtime]\nzzzzzz = 1\n");

  assert_string_contains (message, "unknown key 'zzzzzz' in [runtime]");
  assert_string_contains (message, "valid keys: plugin_path, threads, delivery, queue_limit, on_full");
}

static void
test_all_problems_at_once (void **state)
{
  g_autofree char *message =
    config_error ("[runtime]\n"
                  "thread = 4\n"
                  "delivery = fencd\n"
                  "queue_limit = lots\n"
                  "[handler a]\n"
                  "plugin = recorder_snyc\n"
                  "delay_us = 5\n"
                  "[handler b]\n"
                  "plugin = recorder_sync\n"
                  "dleay_us = 5\n"
                  "delay_us = soon\n"
                  "ignore = llm, text, tools\n"
                  "[handler c]\n"
                  "raise_error = maybe\n"
                  "[pipline]\n");
  g_auto (GStrv) lines = g_strsplit (message, "\n", -1);

  assert_string_contains (message, "unknown key 'thread' in [runtime]");
  assert_string_contains (message, "invalid value 'fencd' for 'delivery' in [runtime]");
  assert_string_contains (message, "did you mean 'fenced'?");
  assert_string_contains (message, "invalid value 'lots' for 'queue_limit'");
  assert_string_contains (message, "expected a whole number from 16 to 16777216");
  assert_string_contains (message, "plugin 'recorder_snyc' was not found");
  assert_string_contains (message, "did you mean 'recorder_sync'?");
  /* Keys the plugin declares are valid keys of its section. */
  assert_string_contains (message, "unknown key 'dleay_us' in [handler b]");
  assert_string_contains (message, "(line 10); did you mean 'delay_us'?");
  assert_string_contains (message, "invalid value 'soon' for 'delay_us' in [handler b]");
  assert_string_contains (message, "expected a whole number");
  assert_string_contains (message, "'text' cannot be ignored in [handler b]");
  assert_string_contains (message, "unknown event group 'tools' in 'ignore'");
  assert_string_contains (message, "missing required key 'plugin' in [handler c]");
  assert_string_contains (message, "invalid value 'maybe' for 'raise_error' in [handler c]");
  /* [pipeline] is the runner's, not the runtime's: see
   * test_program_sections for a program that declares its own. */
  assert_string_contains (message, "unknown section [pipline] in pipeline-");
  assert_string_contains (message, "valid sections: [runtime], [handler NAME]");
  /* One line per problem. */
  assert_int_equal (g_strv_length (lines), 11);
}

static void
test_duplicate_handler_sections (void **state)
{
  g_autofree char *message = config_error ("[handler a]\nplugin = recorder_sync\n"
                                           "[handler a]\nplugin = counter\n");

  assert_string_contains (message, "section [handler a] appears twice in");
  assert_string_contains (message, "(lines 1 and 3)");
}

static void
test_duplicate_key (void **state)
{
  g_autofree char *message = config_error ("[runtime]\nthreads = 2\nthreads = 3\n");

  assert_string_contains (message, "key 'threads' appears twice in [runtime]");
}

static void
test_handler_without_name (void **state)
{
  g_autofree char *message = config_error ("[handler]\nplugin = recorder_sync\n");

  assert_string_contains (message, "section [handler] in");
  assert_string_contains (message, "needs a name: write [handler NAME]");
}

/* A program's own sections ([pipeline] and [model NAME] for the runner)
 * are accepted once declared, and a misspelt one gets a suggestion among
 * them; the program's problems and the runtime's are reported together. */
static void
test_program_sections (void **state)
{
  g_autofree char *path = test_write_file ("program.ini",
                                           "[pipeline]\nprompt = hi\n"
                                           "[model joker]\nprovider = fake\n"
                                           "[modl spare]\n"
                                           "[runtime]\nthreds = 2\n");
  g_autoptr (ChimeConfig) config = chime_config_new_from_file (path, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = NULL;
  gint64 retries;

  assert_non_null (config);
  chime_config_accept_section (config, "pipeline", FALSE);
  chime_config_accept_section (config, "model", TRUE);
  /* Absent: the default, and no problem. */
  assert_true (chime_config_read_int (config, "pipeline", "retries", 2, 0, 5, &retries));
  assert_int_equal (chime_config_get_n_problems (config), 0);
  g_key_file_set_string (chime_config_get_key_file (config), "pipeline", "retries", "9");
  assert_false (chime_config_read_int (config, "pipeline", "retries", 2, 0, 5, &retries));
  assert_int_equal (retries, 2);
  runtime = chime_runtime_new (config, &error);
  assert_null (runtime);
  assert_true (g_error_matches (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID));
  assert_string_contains (error->message, "invalid value '9' for 'retries' in [pipeline] of program.ini "
                          "(line 1): expected a whole number from 0 to 5");
  assert_string_contains (error->message, "unknown section [modl spare] in program.ini; "
                          "did you mean [model NAME]?");
  assert_string_contains (error->message, "unknown key 'threds' in [runtime] of program.ini (line 7)");
  assert_string_not_contains (error->message, "[model joker]");
  assert_int_equal (chime_config_get_n_problems (config), 3);
}

static void
test_bad_abi (void **state)
{
  g_autofree char *message = config_error ("[handler x]\nplugin = bad_abi\n");

  assert_string_contains (message, "/tests/plugins/");
  assert_string_contains (message, "was built for plugin ABI 99.0, but this chime provides ABI 2.0");
  assert_string_contains (message, "rebuild it against chime " CHIME_VERSION_STRING);
  assert_string_contains (message, "[handler x] of pipeline-");
}

static void
test_missing_descriptor (void **state)
{
  g_autofree char *message = config_error ("[handler x]\nplugin = no_descriptor\n");

  assert_string_contains (message, "no_descriptor.so is not a chime plugin: it does not export "
                          "'chime_plugin_descriptor'");
}

/* libltdl alone says "file not found" for a file that is there. */
static void
test_not_a_shared_object (void **state)
{
  g_autofree char *path = test_write_file ("notes.so", "just some text\n");
  g_autofree char *message = config_error ("[handler x]\nplugin = %s\n", path);

  assert_string_contains (message, "cannot load plugin ");
  assert_string_contains (message, "notes.so: not a shared object (no ELF header)");
  assert_string_not_contains (message, "file not found");
}

/* A path may leave out the extension, as a name in the search path does. */
static void
test_plugin_path_without_extension (void **state)
{
  g_autofree char *path = g_build_filename (TEST_PLUGIN_DIR, ".libs", "no_descriptor", NULL);
  g_autofree char *message = config_error ("[handler x]\nplugin = %s\n", path);

  assert_string_contains (message, "no_descriptor.so is not a chime plugin");
  assert_string_not_contains (message, "does not exist");
}

static void
test_no_entry_point (void **state)
{
  g_autofree char *message = config_error ("[handler x]\nplugin = no_entry\n");

  assert_string_contains (message, "no_entry.so has no entry point");
}

static void
test_failing_init (void **state)
{
  g_autofree char *message = config_error ("[handler exporter]\nplugin = failing_init\n"
                                           "endpoint = http://127.0.0.1:1\n"
                                           "[handler fine]\nplugin = recorder_sync\n");

  assert_string_contains (message, "handler 'exporter' (plugin 'failing_init' from ");
  assert_string_contains (message, "failing_init.so) failed to start: cannot reach the collector "
                          "at http://127.0.0.1:1");
}

static void
test_missing_file (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = chime_runtime_new_from_file ("/nonexistent/pipeline.ini", &error);

  assert_null (runtime);
  assert_string_contains (error->message, "cannot read configuration");
  assert_string_contains (error->message, "/nonexistent/pipeline.ini");
}

static void
test_not_an_ini_file (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("broken.ini", "[runtime\nthreads 4\n");
  ChimeRuntime *runtime = chime_runtime_new_from_file (path, &error);

  assert_null (runtime);
  assert_string_contains (error->message, "broken.ini is not a valid INI file");
}

/* Messages quote the file, which need not be UTF-8 (GKeyFile takes a
 * section name of any bytes, and quotes a bad line as it is); what is
 * printed must be. Found by tests/fuzz/fuzz-config-check. */
static void
test_messages_are_utf8 (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeConfig) broken = NULL;
  g_autofree char *message = config_error ("[mo\xff\xff" "del joker]\nprovider = fake\n");

  assert_string_contains (message, "unknown section [mo\xef\xbf\xbd\xef\xbf\xbd" "del joker]");
  assert_true (g_utf8_validate (message, -1, NULL));

  broken = chime_config_new_from_data ("[handler bad\xe0\xc2\n", "broken.ini", NULL, &error);
  assert_null (broken);
  assert_string_contains (error->message, "broken.ini is not a valid INI file");
  assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
test_run_inline_needs_sync (void **state)
{
  g_autofree char *message = config_error ("[handler a]\nplugin = recorder_async\nrun_inline = true\n");

  assert_string_contains (message, "run_inline needs a sync plugin, but 'recorder_async' is async");
}

/* plugin_path entries resolve against the INI file's folder. */
static void
test_relative_plugin_path (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *link = test_path ("my-plugins");
  g_autofree char *saved = g_strdup (g_getenv ("CHIME_PLUGIN_PATH"));
  ChimeRuntime *runtime;

  assert_int_equal (symlink (TEST_PLUGIN_DIR, link), 0);
  g_unsetenv ("CHIME_PLUGIN_PATH");
  runtime = test_runtime_new (&error, "[runtime]\nplugin_path = my-plugins\n"
                                      "[handler a]\nplugin = counter\n");
  g_setenv ("CHIME_PLUGIN_PATH", saved, TRUE);
  assert_null (error);
  assert_int_equal (chime_runtime_get_n_handlers (runtime), 1);
  assert_string_equal (chime_runtime_get_handler_name (runtime, 0), "a");
  chime_runtime_unref (runtime);
}

/* A plugin named by path (with '/') is loaded from there. */
static void
test_plugin_by_path (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler a]\nplugin = %s/counter.la\n",
                                            TEST_PLUGIN_DIR);

  assert_null (error);
  chime_runtime_unref (runtime);
}

static void
test_defaults (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler a]\nplugin = counter\n");

  assert_null (error);
  assert_int_equal (chime_runtime_get_delivery (runtime), CHIME_DELIVERY_FENCED);
  assert_string_equal (chime_delivery_to_string (chime_runtime_get_delivery (runtime)), "fenced");
  chime_runtime_unref (runtime);
}

/* Two instances of one plugin keep their own configuration and state. */
static void
test_two_instances_of_one_plugin (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *first = test_path ("first.txt");
  g_autofree char *second = test_path ("second.txt");
  ChimeRuntime *runtime = test_runtime_new (&error,
                                            "[handler one]\nplugin = counter\nreport = %s\n"
                                            "[handler two]\nplugin = counter\nreport = %s\n"
                                            "ignore = llm\n", first, second);
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autofree char *first_text = NULL;
  g_autofree char *second_text = NULL;

  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = chime_callback_manager_on_llm_start (manager, NULL, "hi", "llm", NULL, &error);
  assert_true (chime_run_on_llm_new_token (llm, "a", NULL, &error));
  assert_true (chime_run_on_llm_new_token (llm, "b", NULL, &error));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  assert_true (g_file_get_contents (first, &first_text, NULL, NULL));
  assert_true (g_file_get_contents (second, &second_text, NULL, NULL));
  assert_string_equal (first_text, "2 0\n");
  assert_string_equal (second_text, "0 0\n");
}

/* A plugin built with a smaller ChimeConfigKey still has its keys read
 * right: the host walks them with the plugin's own stride. */
static void
test_older_key_layout (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *message = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler old]\nplugin = old_keys\n"
                                            "greeting = hello\ntimes = 3\nloud = yes\n");

  assert_null (error);
  chime_runtime_unref (runtime);
  message = config_error ("[handler old]\nplugin = old_keys\ntimes = many\ntims = 2\n");
  assert_string_contains (message, "invalid value 'many' for 'times' in [handler old]");
  assert_string_contains (message, "unknown key 'tims' in [handler old]");
  assert_string_contains (message, "did you mean 'times'?");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_unknown_runtime_key_suggests),
    cmocka_unit_test (test_unknown_key_lists_valid_keys),
    cmocka_unit_test (test_all_problems_at_once),
    cmocka_unit_test (test_duplicate_handler_sections),
    cmocka_unit_test (test_duplicate_key),
    cmocka_unit_test (test_handler_without_name),
    cmocka_unit_test (test_program_sections),
    cmocka_unit_test (test_bad_abi),
    cmocka_unit_test (test_not_a_shared_object),
    cmocka_unit_test (test_plugin_path_without_extension),
    cmocka_unit_test (test_missing_descriptor),
    cmocka_unit_test (test_no_entry_point),
    cmocka_unit_test (test_failing_init),
    cmocka_unit_test (test_missing_file),
    cmocka_unit_test (test_not_an_ini_file),
    cmocka_unit_test (test_run_inline_needs_sync),
    cmocka_unit_test (test_relative_plugin_path),
    cmocka_unit_test (test_plugin_by_path),
    cmocka_unit_test (test_messages_are_utf8),
    cmocka_unit_test (test_defaults),
    cmocka_unit_test (test_two_instances_of_one_plugin),
    cmocka_unit_test (test_older_key_layout),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
