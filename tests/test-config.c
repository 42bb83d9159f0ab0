/* Configuration errors and plugin loading: every mistake gets one clear
 * message naming the file, the section and the key, all reported at once. */
#include "test-helpers.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
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
  assert_string_contains (message, "was built for plugin ABI 99.0, but this chime provides ABI 2.2");
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

/* ------------------------------------------------------------------
 * Input that is wrong is never silently taken
 * ---------------------------------------------------------------- */

/* One problem is one line. */
static guint
count_lines (const char *message)
{
  g_auto (GStrv) lines = g_strsplit (message, "\n", -1);

  return g_strv_length (lines);
}

static ChimeConfig *
config_from_text (const char *text)
{
  g_autoptr (GError) error = NULL;
  ChimeConfig *config = chime_config_new_from_data (text, "input.ini", NULL, &error);

  assert_null (error);
  chime_config_accept_section (config, "pipeline", FALSE);
  return config;
}

static char *
config_problems (ChimeConfig *config)
{
  g_autoptr (GError) error = NULL;

  assert_false (chime_config_check (config, &error));
  return g_strdup (error->message);
}

/* A value that is not UTF-8 is one problem, however often it is read; the
 * string readers still return it (made valid) so that the caller does not
 * also call it missing. */
static void
test_value_not_utf8 (void **state)
{
  g_autoptr (ChimeConfig) config = config_from_text ("[pipeline]\nprompt = caf\xe9\ncount = 1\xff\n");
  g_autofree char *prompt = chime_config_read_string (config, "pipeline", "prompt", "default");
  g_autofree char *again = chime_config_read_raw (config, "pipeline", "prompt");
  g_auto (GStrv) list = chime_config_read_list (config, "pipeline", "prompt", NULL);
  g_autofree char *message = NULL;
  gint64 count = 0;

  assert_string_equal (prompt, "caf\xef\xbf\xbd");
  assert_string_equal (again, "caf\xef\xbf\xbd");
  assert_false (chime_config_read_int (config, "pipeline", "count", 7, 0, 100, &count));
  assert_int_equal (count, 7);
  message = config_problems (config);
  assert_string_equal (message,
                       "invalid value for 'prompt' in [pipeline] of input.ini (line 2): it is not "
                       "UTF-8 text (byte 4 of the value is 0xE9); save the file as UTF-8\n"
                       "invalid value for 'count' in [pipeline] of input.ini (line 3): it is not "
                       "UTF-8 text (byte 2 of the value is 0xFF); save the file as UTF-8");
}

/* A plugin's typed key: one problem, and the key keeps its default. */
static void
test_plugin_key_not_utf8 (void **state)
{
  g_autofree char *message = config_error ("[handler old]\nplugin = old_keys\ngreeting = caf\xe9\n"
                                           "times = 3\xff\n");

  assert_int_equal (count_lines (message), 2);
  assert_string_contains (message, "invalid value for 'greeting' in [handler old] of pipeline-");
  assert_string_contains (message, ".ini (line 3): it is not UTF-8 text (byte 4 of the value is 0xE9)");
  assert_string_contains (message, ".ini (line 4): it is not UTF-8 text (byte 2 of the value is 0xFF)");
}

/* GKeyFile kept "\q" as written; a final lone backslash too. */
static void
test_invalid_escape (void **state)
{
  g_autoptr (ChimeConfig) config = config_from_text ("[pipeline]\nname = a\\qb\nsystem = end\\\n"
                                                     "prompt = \\sok\\t\\\\\n");
  g_autofree char *name = chime_config_read_string (config, "pipeline", "name", NULL);
  g_autofree char *system = chime_config_read_string (config, "pipeline", "system", NULL);
  g_autofree char *prompt = chime_config_read_string (config, "pipeline", "prompt", NULL);
  g_autofree char *message = NULL;

  assert_string_equal (name, "a\\qb");
  assert_string_equal (system, "end\\");
  assert_string_equal (prompt, "ok\t\\");
  message = config_problems (config);
  assert_string_equal (message,
                       "invalid value for 'name' in [pipeline] of input.ini (line 2): '\\q' is not "
                       "an escape (the escapes are \\s \\n \\t \\r, and \\\\ for a backslash)\n"
                       "invalid value for 'system' in [pipeline] of input.ini (line 3): '\\' is not "
                       "an escape (the escapes are \\s \\n \\t \\r, and \\\\ for a backslash)");
}

/* g_ascii_strtod() took hexadecimal, "inf" and "nan". */
static void
test_numbers_are_decimal (void **state)
{
  static const char *const refused[] = { "0x10", "inf", "nan", "1e", ".", "+", "1.5x", "1,5", NULL };
  static const char *const accepted[] = { "16", "-2.5", "+.5", "5.", "1e3", "2.5E-1", NULL };
  static const double values[] = { 16, -2.5, 0.5, 5, 1000, 0.25 };

  for (guint i = 0; refused[i] != NULL; i++)
    {
      g_autofree char *text = g_strdup_printf ("[pipeline]\nx = %s\n", refused[i]);
      g_autoptr (ChimeConfig) config = config_from_text (text);
      gdouble out = 0;

      assert_false (chime_config_read_double (config, "pipeline", "x", 42, -1e9, 1e9, &out));
      assert_true (out == 42);
    }
  for (guint i = 0; accepted[i] != NULL; i++)
    {
      g_autofree char *text = g_strdup_printf ("[pipeline]\nx = %s\n", accepted[i]);
      g_autoptr (ChimeConfig) config = config_from_text (text);
      gdouble out = 0;

      assert_true (chime_config_read_double (config, "pipeline", "x", 42, -1e9, 1e9, &out));
      assert_true (out == values[i]);
    }
}

/* GKeyFile dropped `threads[fr]` unseen, except in a French locale. */
static void
test_locale_key (void **state)
{
  g_autofree char *message = config_error ("[runtime]\nthreads[fr] = 2\n");

  assert_string_contains (message, "unknown key 'threads[fr]' in [runtime] of pipeline-");
  assert_string_contains (message, ".ini (line 2): chime has no translated values (KEY[LOCALE]); "
                          "write 'threads =' without '[fr]'");
}

static void
test_section_names (void **state)
{
  g_autofree char *message = config_error ("[runtime x]\nthreads = 2\n[handler ]\nplugin = recorder_sync\n");

  assert_int_equal (count_lines (message), 2);
  assert_string_contains (message, "section [runtime x] in pipeline-");
  assert_string_contains (message, ".ini takes no name: write [runtime]");
  assert_string_contains (message, "section [handler ] in pipeline-");
  assert_string_contains (message, ".ini needs a name: write [handler NAME]");
}

/* GKeyFile read up to the NUL and dropped the rest of the file. */
static void
test_nul_byte (void **state)
{
  static const char text[] = "[runtime]\nthreads = 2\n\0[zzz]\n";
  g_autofree char *path = test_path ("nul.ini");
  g_autoptr (GError) error = NULL;
  ChimeConfig *config;

  assert_true (g_file_set_contents (path, text, sizeof text - 1, NULL));
  config = chime_config_new_from_file (path, &error);
  assert_null (config);
  assert_true (g_error_matches (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE));
  assert_string_contains (error->message, "nul.ini is not a valid INI file: line 3 has a NUL byte; "
                          "a configuration is text");
}

/* As Windows editors write it: skipped, and lines still count from 1. */
static void
test_byte_order_mark (void **state)
{
  g_autofree char *message = config_error ("\xef\xbb\xbf[runtime]\nthread = 2\n");

  assert_string_contains (message, "unknown key 'thread' in [runtime] of pipeline-");
  assert_string_contains (message, ".ini (line 2); did you mean 'threads'?");
}

/* /dev/zero and FIFOs, which could fill the memory or block, are tested on
 * the installed chime under limits (tests/test-runner-input.c). */
static void
test_config_file_kinds (void **state)
{
  static const char *const paths[] = { "/", NULL };
  static const char *const messages[] = {
    "cannot read configuration: / is a directory, not a regular file",
  };
  g_autofree char *large_text = g_strnfill (CHIME_CONFIG_MAX_FILE_SIZE + 1, '#');
  g_autofree char *large = test_write_file ("large.ini", large_text);
  g_autofree char *large_message = g_strdup_printf ("cannot read configuration: %s is larger than "
                                                    "1 MiB, the most chime reads from it", large);

  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;

      assert_null (chime_config_new_from_file (paths[i], &error));
      assert_true (error->domain == G_FILE_ERROR);
      assert_string_equal (error->message, messages[i]);
    }
  {
    g_autoptr (GError) error = NULL;

    assert_null (chime_config_new_from_file (large, &error));
    assert_true (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_INVAL));
    assert_string_equal (error->message, large_message);
  }
}

/* The bound is exact: @max_size bytes are read, one more is refused. */
static void
test_file_get_contents_bound (void **state)
{
  g_autofree char *path = test_write_file ("ten.txt", "0123456789");
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  gsize length = 0;

  assert_true (chime_file_get_contents (path, 10, &contents, &length, NULL));
  assert_int_equal (length, 10);
  assert_string_equal (contents, "0123456789");
  assert_false (chime_file_get_contents (path, 9, &contents, &length, &error));
  assert_string_contains (error->message, "ten.txt is larger than 9 bytes, the most chime reads from it");
}

/* It said "does not exist" for what does, but is no plugin file. */
static void
test_plugin_not_a_file (void **state)
{
  g_autofree char *folder = test_path ("plugin-folder");
  g_autofree char *fifo = test_path ("plugin-fifo");
  g_autofree char *message = NULL;

  assert_int_equal (g_mkdir (folder, 0700), 0);
  assert_int_equal (mkfifo (fifo, 0600), 0);
  message = config_error ("[handler a]\nplugin = %s\n[handler b]\nplugin = %s\n"
                          "[handler c]\nplugin = /dev/null\n", folder, fifo);
  assert_string_contains (message, "plugin file /dev/null is a character device, not a shared object "
                          "(.so) or libtool archive (.la)");
  assert_string_contains (message, "plugin-folder is a directory, not a shared object (.so)");
  assert_string_contains (message, "plugin-fifo is a FIFO (named pipe), not a shared object (.so)");
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
    cmocka_unit_test (test_value_not_utf8),
    cmocka_unit_test (test_plugin_key_not_utf8),
    cmocka_unit_test (test_invalid_escape),
    cmocka_unit_test (test_numbers_are_decimal),
    cmocka_unit_test (test_locale_key),
    cmocka_unit_test (test_section_names),
    cmocka_unit_test (test_nul_byte),
    cmocka_unit_test (test_byte_order_mark),
    cmocka_unit_test (test_config_file_kinds),
    cmocka_unit_test (test_file_get_contents_bound),
    cmocka_unit_test (test_plugin_not_a_file),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
