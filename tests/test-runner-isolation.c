/* Handlers isolated in a process of their own (isolation = process): a
 * plugin that segfaults, aborts, exits, hangs or leaks is named, with the signal
 * and the event, and restarted; the event it crashed on is delivered
 * again (at least once); after max_restarts crashes it gets no more
 * events; a hang is cut off by timeout_ms; and every other handler, and
 * the run, are untouched. The installed chime finds its installed
 * chime-plugin-host beside its plugins. */
#include "runner-helpers.h"

#include <string.h>

static const char pipeline[] =
  "[pipeline]\nprompt = Count\nmodel = m\n\n"
  "[model m]\nprovider = fake\nchunking = word\nresponse = one two three four five\n\n"
  "[handler trace]\nplugin = jsonl\npath = trace.jsonl\n\n";

typedef struct {
  char      *dir;
  RunResult *result;
  char      *record;   /* what the misbehaving handler handled, a token a line */
  json_t    *trace;    /* the jsonl handler beside it */
} IsolatedRun;

static void
isolated_run_free (IsolatedRun *run)
{
  g_free (run->dir);
  g_clear_pointer (&run->result, run_result_free);
  g_free (run->record);
  g_clear_pointer (&run->trace, json_decref);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (IsolatedRun, isolated_run_free)

/* `chime run` on the pipeline with a [handler boom] of @boom_keys (and
 * @runtime_section before it). */
static IsolatedRun *
run_isolated (const char *runtime_section,
              const char *boom_keys)
{
  IsolatedRun *run = g_new0 (IsolatedRun, 1);
  g_autofree char *ini = g_strconcat (runtime_section, pipeline,
                                      "[handler boom]\nplugin = misbehaving\nrecord = record.txt\n",
                                      boom_keys, NULL);
  g_autofree char *config = NULL;
  g_autofree char *record = NULL;
  g_autofree char *trace = NULL;
  /* In a sanitizer build AddressSanitizer (or ThreadSanitizer) would
   * catch the plugin's segfault in the host and end it otherwise: let it
   * die of the signal a user would see. */
  g_autofree char *asan = g_strdup_printf ("ASAN_OPTIONS=%s%shandle_segv=0",
                                           g_getenv ("ASAN_OPTIONS") != NULL ? g_getenv ("ASAN_OPTIONS") : "",
                                           g_getenv ("ASAN_OPTIONS") != NULL ? ":" : "");
  g_autofree char *tsan = g_strdup_printf ("TSAN_OPTIONS=%s%shandle_segv=0",
                                           g_getenv ("TSAN_OPTIONS") != NULL ? g_getenv ("TSAN_OPTIONS") : "",
                                           g_getenv ("TSAN_OPTIONS") != NULL ? " " : "");
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, asan, tsan, NULL };
  const char *args[] = { "run", NULL, NULL };
  RunOptions options = { .env = env };

  run->dir = fresh_dir ("isolation");
  config = write_in (run->dir, "isolated.ini", ini);
  args[1] = config;
  options.cwd = run->dir;
  run->result = run_chime_argv (&options, args);
  record = g_build_filename (run->dir, "record.txt", NULL);
  run->record = read_text (record);
  if (run->record == NULL)
    run->record = g_strdup ("");
  trace = g_build_filename (run->dir, "trace.jsonl", NULL);
  run->trace = read_json_lines (trace);
  return run;
}

/* The run and the handler beside the misbehaving one lost nothing; the
 * exit status is 0, or 4 when the misbehaving handler lost events. */
static void
assert_run_untouched (IsolatedRun *run,
                      int          status)
{
  g_autoptr (json_t) result = find_result (run->result->out);

  assert_status (run->result, status);
  assert_non_null (result);
  assert_string_equal (json_string_value (json_object_get (result, "output")), "one two three four five");
  assert_int_equal (count_events (run->trace, "llm_new_token"), 5);
  assert_int_equal (json_array_size (run->trace), 13);
}

/* The end-of-run summary counts the restarts and the events delivered
 * again: at least the one the host died on (those sent after it, before
 * chime saw the crash, go again too). */
static void
assert_redelivered (IsolatedRun *run,
                    guint        restarts)
{
  g_autofree char *prefix = g_strdup_printf ("chime: handler 'boom' was restarted %u %s (isolation = process); ",
                                             restarts, restarts == 1 ? "time" : "times");
  const char *line = strstr (run->result->err, prefix);
  guint64 redelivered;

  if (line == NULL)
    fail_msg ("no \"%s\" in:\n%s", prefix, run->result->err);
  redelivered = g_ascii_strtoull (line + strlen (prefix), NULL, 10);
  assert_true (redelivered >= 1 && redelivered <= 6);
  assert_non_null (strstr (line, redelivered == 1 ? " event was delivered again\n"
                                                  : " events were delivered again\n"));
}

/* A segfault on the third token: named, restarted, the token delivered
 * again; the restarted instance gets every token after it. */
static void
test_crash_is_named_and_the_event_delivered_again (void **state)
{
  g_autoptr (IsolatedRun) run = run_isolated ("", "isolation = process\non_token = 3\nhow = segv\n"
                                                  "once_file = crashed-once\n");

  assert_run_untouched (run, 0);
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) crashed with SIGSEGV on "
                                            "llm_new_token (event 3 of run ");
  assert_string_contains (run->result->err, "); restarted (1 of max_restarts = 3), delivering the event again");
  assert_string_equal (run->record, "one\n two\n three\n four\n five\n");
  assert_null (strstr (run->result->err, "failed on"));
  assert_redelivered (run, 1);
}

/* [runtime] isolation sets the default of every handler. */
static void
test_runtime_isolation_is_the_default (void **state)
{
  g_autoptr (IsolatedRun) run = run_isolated ("[runtime]\nisolation = process\n\n",
                                              "on_token = 2\nhow = segv\nonce_file = crashed-once\n");

  assert_run_untouched (run, 0);
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) crashed with SIGSEGV on "
                                            "llm_new_token (event 2 of run ");
  assert_string_equal (run->record, "one\n two\n three\n four\n five\n");
}

/* An abort on every second token of an instance, one restart allowed:
 * the second crash stops the handler, and the run goes on without it. */
static void
test_crashes_past_max_restarts_stop_the_handler (void **state)
{
  g_autoptr (IsolatedRun) run = run_isolated ("", "isolation = process\non_token = 2\nhow = abort\n"
                                                  "max_restarts = 1\n");

  assert_run_untouched (run, 4);
  assert_string_contains (run->result->err, "chime: handler 'boom' failed ");
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) crashed with SIGABRT on "
                                            "llm_new_token (event 2 of run ");
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) failed on llm_new_token: its host "
                                            "process crashed with SIGABRT (event 3 of run ");
  assert_string_contains (run->result->err, "that is 2 crashes (max_restarts = 1): it gets no more events");
  /* The first instance handled "one"; the second got "two" again and
   * crashed on "three". */
  assert_string_equal (run->record, "one\n two\n");
}

/* A plugin that exits is a crash too, named by its status. */
static void
test_exit_is_named_by_its_status (void **state)
{
  g_autoptr (IsolatedRun) run = run_isolated ("", "isolation = process\non_token = 4\nhow = exit\n"
                                                  "once_file = exited-once\n");

  assert_run_untouched (run, 0);
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) exited with status 3 on "
                                            "llm_new_token (event 4 of run ");
  assert_string_equal (run->record, "one\n two\n three\n four\n five\n");
}

/* A plugin that leaks 64 MiB a token from the second one on: under
 * memory_limit_mb its host runs out of memory long before the machine
 * does, dies, is named with the limit, and restarted; the token it died on
 * is delivered again to the new instance. */
static void
test_leak_ends_at_the_memory_limit (void **state)
{
  g_autoptr (IsolatedRun) run = NULL;

  if (runner_under_sanitizer ())
    skip ();
  run = run_isolated ("", "isolation = process\non_token = 2\nhow = leak\nleak_mb = 64\n"
                          "memory_limit_mb = 200\nonce_file = leaked-once\n");
  assert_run_untouched (run, 0);
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) crashed with ");
  assert_string_contains (run->result->err, " (it may have run out of memory: memory_limit_mb = 200) on "
                                            "llm_new_token (event ");
  assert_string_contains (run->result->err, "restarted (1 of max_restarts = 3), delivering the event again");
  assert_string_equal (run->record, "one\n two\n three\n four\n five\n");
  assert_redelivered (run, 1);
}

/* A sync handler that hangs is cut off by its timeout: its process is
 * killed, the event given up, and a new one takes the next events. */
static void
test_hang_is_cut_off_by_the_timeout (void **state)
{
  g_autoptr (IsolatedRun) run = run_isolated ("", "isolation = process\non_token = 2\nhow = hang\n"
                                                  "timeout_ms = 300\nonce_file = hung-once\n");

  /* A timeout is reported, as without isolation, and is not a failure
   * of the run's output. */
  assert_run_untouched (run, 0);
  assert_string_contains (run->result->err, "chime: handler 'boom' timed out 1 times (timeout_ms)");
  assert_string_contains (run->result->err, "handler 'boom' (misbehaving) failed on llm_new_token: did not "
                                            "answer within its timeout of 300 ms (event 2 of run ");
  assert_string_contains (run->result->err, "its host process was killed and is restarted for the next event");
  assert_string_equal (run->record, "one\n three\n four\n five\n");
}

static void
check_config_problem (const char *handler_section,
                      const char *expected)
{
  g_autofree char *dir = fresh_dir ("isolation-config");
  g_autofree char *ini = g_strconcat (pipeline, handler_section, NULL);
  g_autofree char *config = write_in (dir, "isolated.ini", ini);
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "check", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 3);
  assert_string_contains (result->err, expected);
}

static void
test_what_cannot_be_isolated_is_a_configuration_problem (void **state)
{
  check_config_problem ("[handler nap]\nplugin = sleepy\nisolation = process\n",
                        "isolation = process is for sync plugins, and 'sleepy' is async in [handler nap] of "
                        "isolated.ini (line 16): set isolation = none");
  check_config_problem ("[handler boom]\nplugin = misbehaving\nisolation = process\nrun_inline = true\n",
                        "isolation = process cannot be run_inline in [handler boom] of isolated.ini (line 16): "
                        "an isolated handler is called from the queue, one event at a time");
  check_config_problem ("[handler boom]\nplugin = misbehaving\nisolation = processes\n",
                        "'processes' for 'isolation' in [handler boom] of isolated.ini (line 16)");
  check_config_problem ("[handler boom]\nplugin = misbehaving\nmemory_limit_mb = 100\n",
                        "memory_limit_mb needs isolation = process in [handler boom] of isolated.ini "
                        "(line 16): only a handler in a process of its own can be limited; add "
                        "isolation = process, or remove memory_limit_mb");
}

/* A plugin that refuses to start in its host says so as it would in
 * chime's process. */
static void
test_start_failure_in_the_host (void **state)
{
  check_config_problem ("[handler sink]\nplugin = failing_init\nisolation = process\n",
                        "failed to start: cannot reach the collector at http://127.0.0.1:9");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_crash_is_named_and_the_event_delivered_again),
    cmocka_unit_test (test_runtime_isolation_is_the_default),
    cmocka_unit_test (test_crashes_past_max_restarts_stop_the_handler),
    cmocka_unit_test (test_exit_is_named_by_its_status),
    cmocka_unit_test (test_leak_ends_at_the_memory_limit),
    cmocka_unit_test (test_hang_is_cut_off_by_the_timeout),
    cmocka_unit_test (test_what_cannot_be_isolated_is_a_configuration_problem),
    cmocka_unit_test (test_start_failure_in_the_host),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
