/* Handlers whose output fails: jsonl on /dev/full, the stdout printers
 * on a stdout that is full or closed. Each failing handler says why once
 * (the file or stream, errno's reason), the run still produces its
 * result, a summary line ends stderr and chime exits with 4.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* How many times @needle is in @haystack. */
static guint
count_in (const char *haystack,
          const char *needle)
{
  guint n = 0;

  for (const char *at = strstr (haystack, needle); at != NULL; at = strstr (at + 1, needle))
    n++;
  return n;
}

/* The last line of @text. */
static char *
last_line (const char *text)
{
  g_auto (GStrv) lines = split_lines (text);
  guint n = g_strv_length (lines);

  return n > 0 ? g_strdup (lines[n - 1]) : g_strdup ("");
}

/* Runs chime with @args and its stdout redirected by the shell as
 * @redirect says (">/dev/full", ">&-"). */
static RunResult *
run_redirected (const char         *dir,
                const char         *redirect,
                const char * const *args)
{
  g_autofree char *program = chime_binary ();
  g_autofree char *script = g_strdup_printf ("exec \"$0\" \"$@\" %s", redirect);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  RunOptions options = { .cwd = dir };

  g_ptr_array_add (argv, "/bin/sh");
  g_ptr_array_add (argv, "-c");
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, program);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  return run_argv (&options, (const char * const *) argv->pdata);
}

/* jsonl on /dev/full: the write's own reason (not ftruncate's EINVAL),
 * said once; the healthy jsonl beside it and the result are whole. */
static void
test_jsonl_on_dev_full (void **state)
{
  g_autofree char *dir = fresh_dir ("full");
  g_autofree char *config = write_why_not_config (dir, "sinks.ini", "[handler trace]\nplugin = jsonl\npath = /dev/full\n\n"
                                               "[handler kept]\nplugin = jsonl\npath = kept.jsonl\n");
  g_autofree char *kept = g_build_filename (dir, "kept.jsonl", NULL);
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (json_t) json = NULL;
  g_autoptr (json_t) events = NULL;
  g_autofree char *summary = NULL;

  assert_status (result, 4);
  json = find_result (result->out);
  assert_non_null (json);
  assert_string_equal (json_string_value (json_object_get (json, "output")), "Why not?");
  assert_string_contains (result->err, "handler 'trace' (jsonl) failed on chain_start: "
                                       "cannot write /dev/full: No space left on device\n");
  assert_int_equal (count_in (result->err, "failed on"), 1);
  summary = last_line (result->err);
  assert_string_equal (summary, "chime: handler 'trace' failed 1 time: "
                                "cannot write /dev/full: No space left on device");
  events = read_json_lines (kept);
  assert_int_equal (json_array_size (events), 11);
}

/* The stdout printers on a full stdout, the result written with --output:
 * each says so once, and the run exits 4 with its result complete. */
static void
test_printers_on_full_stdout (void **state)
{
  g_autofree char *dir = fresh_dir ("full-stdout");
  g_autofree char *config = write_why_not_config (dir, "sinks.ini", "[handler stream]\nplugin = streaming_stdout\n\n"
                                               "[handler verbose]\nplugin = stdout\n\n"
                                               "[handler debug]\nplugin = console\n\n"
                                               "[handler events]\nplugin = astream_events\npath = -\n");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  const char *args[] = { "run", config, "--output", output, NULL };
  g_autoptr (RunResult) result = run_redirected (dir, ">/dev/full", args);
  g_autofree char *text = NULL;
  g_autoptr (json_t) json = NULL;
  static const char *const names[] = { "stream", "verbose", "debug", "events" };

  assert_status (result, 4);
  text = read_text (output);
  assert_non_null (text);
  json = json_loads (text, 0, NULL);
  assert_string_equal (json_string_value (json_object_get (json, "output")), "Why not?");
  assert_int_equal (count_in (result->err, "failed on"), G_N_ELEMENTS (names));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *line = g_strdup_printf ("\nchime: handler '%s' failed 1 time: cannot write to "
                                               "stdout: No space left on device\n", names[i]);
      assert_string_contains (result->err, line);
    }
}

/* A closed stdout: the printers fail with EBADF (not into some file that
 * took descriptor 1), the jsonl trace holds only its own lines, and the
 * result, which has nowhere to go, fails the run. */
static void
test_closed_stdout (void **state)
{
  g_autofree char *dir = fresh_dir ("closed-stdout");
  g_autofree char *config = write_why_not_config (dir, "sinks.ini", "[handler stream]\nplugin = streaming_stdout\n\n"
                                               "[handler trace]\nplugin = jsonl\npath = trace.jsonl\n");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  const char *args[] = { "run", config, NULL };
  g_autoptr (RunResult) result = run_redirected (dir, ">&-", args);
  g_autoptr (json_t) events = NULL;

  assert_status (result, 1);
  assert_string_contains (result->err, "handler 'stream' (streaming_stdout) failed on llm_new_token: "
                                       "cannot write to stdout: Bad file descriptor\n");
  assert_string_contains (result->err, "\nchime: handler 'stream' failed 1 time: cannot write to stdout: "
                                       "Bad file descriptor\n");
  assert_string_contains (result->err, "\nchime: cannot write the result to stdout: Bad file descriptor\n");
  events = read_json_lines (trace);
  assert_int_equal (json_array_size (events), 11);
}

/* With --output the closed stdout costs only the printer: exit 4. */
static void
test_closed_stdout_with_output (void **state)
{
  g_autofree char *dir = fresh_dir ("closed-stdout-output");
  g_autofree char *config = write_why_not_config (dir, "sinks.ini", "[handler verbose]\nplugin = stdout\n");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  const char *args[] = { "run", config, "--output", output, NULL };
  g_autoptr (RunResult) result = run_redirected (dir, ">&-", args);
  g_autofree char *summary = NULL;

  assert_status (result, 4);
  summary = last_line (result->err);
  assert_string_equal (summary, "chime: handler 'verbose' failed 1 time: cannot write to stdout: "
                                "Bad file descriptor");
  g_free (read_text (output));
}

/* usage writes its report at shutdown, after the last event: a report
 * that cannot be written (on /dev/full, written to as a device is) still
 * counts, before the summary. (A missing folder fails its start:
 * test-runner-files.c.) */
static void
test_usage_report_that_cannot_be_written (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-full");
  g_autofree char *config = write_why_not_config (dir, "sinks.ini", "[handler usage]\nplugin = usage\n"
                                               "path = /dev/full\n");
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autofree char *summary = NULL;

  assert_status (result, 4);
  assert_non_null (find_result (result->out));
  summary = last_line (result->err);
  assert_true (g_str_has_prefix (summary, "chime: handler 'usage' failed 1 time: cannot write usage to /dev/full: "));
  assert_string_contains (summary, "No space left on device");
  assert_string_contains (result->err, "handler 'usage' (usage) failed: cannot write usage to /dev/full: ");
}

/* progress and usage draw and report on stderr: on a full stderr nobody
 * can read their failure, but the status still tells it. */
static void
test_stderr_writers_on_full_stderr (void **state)
{
  g_autofree char *dir = fresh_dir ("full-stderr");
  g_autofree char *config = write_why_not_config (dir, "sinks.ini", "[handler progress]\nplugin = progress\nforce = true\n\n"
                                               "[handler usage]\nplugin = usage\n");
  const char *args[] = { "run", config, NULL };
  g_autoptr (RunResult) result = run_redirected (dir, "2>/dev/full", args);
  g_autoptr (json_t) json = NULL;

  assert_status (result, 4);
  json = find_result (result->out);
  assert_non_null (json);
  assert_string_equal (json_string_value (json_object_get (json, "output")), "Why not?");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_jsonl_on_dev_full),
    cmocka_unit_test (test_printers_on_full_stdout),
    cmocka_unit_test (test_closed_stdout),
    cmocka_unit_test (test_closed_stdout_with_output),
    cmocka_unit_test (test_usage_report_that_cannot_be_written),
    cmocka_unit_test (test_stderr_writers_on_full_stderr),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
