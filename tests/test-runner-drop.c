/* A sync handler too slow for the model, with on_full = drop_newest: the
 * run succeeds with the whole answer, the losses are reported on stderr
 * and counted exactly, and the handler keeps the oldest events.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------ */

#define DROP_TOKENS 200

typedef struct {
  guint64 dropped;   /* as chime reported it */
  guint64 handled;   /* as the handler counted */
} DropOutcome;

/* Runs tests/examples/drop.ini: exit 0, the whole answer in the result,
 * and the drop report on stderr. */
static DropOutcome
run_drop_example (void)
{
  g_autofree char *dir = fresh_dir ("drop");
  g_autofree char *config = copy_test_config (dir, "drop.ini");
  g_autofree char *report_path = g_build_filename (dir, "counter.txt", NULL);
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (GRegex) regex = g_regex_new ("^chime: handler 'slow' dropped (\\d+) events \\(on_full in \\[runtime\\]\\)$",
                                          G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *number = NULL;
  g_autofree char *report = NULL;
  g_autoptr (json_t) json = NULL;
  guint64 violations = 0;
  DropOutcome outcome = { 0 };

  assert_status (result, 0);
  json = find_result (result->out);
  assert_non_null (json);
  /* The model and the result lost nothing. */
  assert_int_equal (json_integer_value (json_object_get (json_object_get (result_message (json),
                                                                          "usage_metadata"),
                                                         "output_tokens")), DROP_TOKENS);
  if (!g_regex_match (regex, result->err, 0, &match))
    fail_msg ("no drop report on stderr:\n%s", result->err);
  number = g_match_info_fetch (match, 1);
  outcome.dropped = g_ascii_strtoull (number, NULL, 10);
  /* The handler writes "TOKENS VIOLATIONS" when it is freed. */
  report = read_text (report_path);
  assert_non_null (report);
  assert_int_equal (sscanf (report, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &outcome.handled, &violations), 2);
  return outcome;
}

/* on_full = drop_newest with a slow sync handler: the run succeeds and
 * the losses are reported, counted exactly. */
static void
test_drop_report (void **state)
{
  DropOutcome outcome = run_drop_example ();

  assert_true (outcome.dropped > 0);
  /* Every token was either handled or counted as dropped. */
  if (outcome.handled + outcome.dropped != DROP_TOKENS)
    fail_msg ("the handler got %" G_GUINT64_FORMAT " tokens and %" G_GUINT64_FORMAT " were reported "
              "dropped, of %d", outcome.handled, outcome.dropped, DROP_TOKENS);
}

/* drop_newest keeps what is queued for a slow handler and drops the
 * newer events: the handler gets its queue's worth (queue_limit = 16,
 * less the chat_model_start it may hold), not nothing. */
static void
test_drop_newest_keeps_oldest (void **state)
{
  DropOutcome outcome = run_drop_example ();

  if (outcome.handled < 15)
    fail_msg ("the handler got %" G_GUINT64_FORMAT " tokens; %" G_GUINT64_FORMAT " of %d were dropped",
              outcome.handled, outcome.dropped, DROP_TOKENS);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_drop_report),
    cmocka_unit_test (test_drop_newest_keeps_oldest),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
