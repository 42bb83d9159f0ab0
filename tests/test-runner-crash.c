/* A plugin that crashes chime (tests/plugins/crasher.c), beside a jsonl
 * trace: chime names the handler, its plugin and the entry point before
 * it dies of the same signal (exit status 128+N), and the trace holds
 * only whole lines, up to at least the event before the crash.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <signal.h>
#include <string.h>

#define CRASH_AT_TOKEN 3

/* Runs a fake model of six tokens with jsonl as 'trace' and crasher as
 * 'boom', crashing as @crash says on token CRASH_AT_TOKEN. Awaited
 * delivery: every event before the crashing one was handled by all. */
static RunResult *
run_crasher (const char *dir,
             const char *crash)
{
  g_autofree char *text = g_strdup_printf (
    "[runtime]\ndelivery = awaited\n\n"
    "[pipeline]\nprompt = Tell me a joke\nmodel = joker\n\n"
    "[model joker]\nprovider = fake\nmodel = fake\n"
    "chunks = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]\n\n"
    "[handler trace]\nplugin = jsonl\npath = trace.jsonl\n\n"
    "[handler boom]\nplugin = crasher\ncrash = %s\nat_token = %d\n", crash, CRASH_AT_TOKEN);
  g_autofree char *config = write_in (dir, "crash.ini", text);
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };

  return run_chime_argv (&options, args);
}

/* The report's one line: "chime: handler 'boom' (plugin crasher) crashed
 * with SIGNAL in on_llm_new_token (run UUID)", the run that of the tokens
 * in the trace. */
static void
assert_report (const char *err,
               const char *signal_name,
               json_t     *events)
{
  g_autofree char *pattern = g_strdup_printf (
    "^chime: handler 'boom' \\(plugin crasher\\) crashed with %s in on_llm_new_token "
    "\\(run ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\\)$", signal_name);
  g_autoptr (GRegex) regex = g_regex_new (pattern, G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *run_id = NULL;
  json_t *event;
  gsize i;

  if (!g_regex_match (regex, err, 0, &match))
    fail_msg ("no crash report on stderr:\n%s", err);
  run_id = g_match_info_fetch (match, 1);
  json_array_foreach (events, i, event)
    if (g_strcmp0 (json_string_value (json_object_get (event, "event")), "llm_new_token") == 0)
      assert_string_equal (json_string_value (json_object_get (event, "run_id")), run_id);
}

/* Whole lines only, each JSON, the last one ended; the tokens before the
 * crashing one are all there. */
static json_t *
read_whole_trace (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "trace.jsonl", NULL);
  g_autofree char *text = read_text (path);
  json_t *events;

  assert_non_null (text);
  assert_true (g_str_has_suffix (text, "\n"));
  events = parse_json_lines (text, path);
  assert_true (count_events (events, "llm_new_token") >= CRASH_AT_TOKEN - 1);
  return events;
}

static void
test_segfault_is_reported (void **state)
{
  g_autofree char *dir = fresh_dir ("segv");
  g_autoptr (RunResult) result = run_crasher (dir, "segv");
  g_autoptr (json_t) events = read_whole_trace (dir);

  assert_status (result, 128 + SIGSEGV);
  assert_report (result->err, "SIGSEGV", events);
}

static void
test_abort_is_reported (void **state)
{
  g_autofree char *dir = fresh_dir ("abort");
  g_autoptr (RunResult) result = run_crasher (dir, "abort");
  g_autoptr (json_t) events = read_whole_trace (dir);

  assert_status (result, 128 + SIGABRT);
  assert_report (result->err, "SIGABRT", events);
}

/* On the alternate signal stack: the overflowed one has no room left. */
static void
test_stack_overflow_is_reported (void **state)
{
  g_autofree char *dir = fresh_dir ("overflow");
  g_autoptr (RunResult) result = run_crasher (dir, "overflow");
  g_autoptr (json_t) events = read_whole_trace (dir);

  assert_status (result, 128 + SIGSEGV);
  assert_report (result->err, "SIGSEGV", events);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_segfault_is_reported),
    cmocka_unit_test (test_abort_is_reported),
    cmocka_unit_test (test_stack_overflow_is_reported),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
