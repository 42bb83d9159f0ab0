/* Ctrl-C and SIGTERM during a run: exit 130 or 143, no result, and
 * every handler flushed with the error events and the partial answer;
 * a second Ctrl-C quits at once without waiting for the handlers.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>
#include <signal.h>

/* ------------------------------------------------------------------
 * Signals
 * ---------------------------------------------------------------- */

static void
check_interrupted (int         signal_number,
                   int         expected_status,
                   const char *expected_message)
{
  g_autofree char *dir = fresh_dir ("signal");
  g_autofree char *config = copy_test_config (dir, "slow.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  const char *args[] = { "run", config, NULL };
  RunOptions options = {
    .cwd = dir,
    .signal_number = signal_number,
    .signal_after_ms = 500,
    /* The model has started streaming: the signal handlers are in place. */
    .signal_file = trace,
    .signal_needle = "\"chat_model_start\"",
  };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (json_t) events = NULL;
  g_autoptr (GString) tokens = g_string_new (NULL);
  g_autofree char *names = NULL;
  json_t *last, *before_last, *partial;
  guint n_tokens;
  gsize i;
  json_t *event;

  assert_status (result, expected_status);
  assert_string_contains (result->err, expected_message);
  assert_null (find_result (result->out));

  /* Every line parses, and the file ends with the two error events. */
  events = read_json_lines (trace);
  names = event_names (events);
  assert_true (json_array_size (events) >= 6);
  assert_true (g_str_has_prefix (names, "chain_start chain_start chain_end chat_model_start "));
  before_last = json_array_get (events, json_array_size (events) - 2);
  last = json_array_get (events, json_array_size (events) - 1);
  assert_string_equal (json_string_value (json_object_get (before_last, "event")), "llm_error");
  assert_string_equal (json_string_value (json_object_get (last, "event")), "chain_error");
  assert_true (json_is_null (json_object_get (last, "parent_run_id")));
  assert_int_equal (count_events (events, "llm_end"), 0);

  /* Counts are consistent: every token is there, and they are what the
   * model had produced when it was stopped (the partial result). */
  n_tokens = count_events (events, "llm_new_token");
  assert_int_equal (n_tokens, json_array_size (events) - 6);
  assert_true (n_tokens >= 1 && n_tokens < 50);
  json_array_foreach (events, i, event)
    if (g_str_equal (json_string_value (json_object_get (event, "event")), "llm_new_token"))
      g_string_append (tokens, json_string_value (json_object_get (event, "token")));
  partial = json_object_get (json_array_get (json_array_get (json_object_get (
              json_object_get (before_last, "response"), "generations"), 0), 0), "text");
  assert_string_equal (json_string_value (partial), tokens->str);
}

static void
test_sigint (void **state)
{
  check_interrupted (SIGINT, 130, "interrupted");
}

static void
test_sigterm (void **state)
{
  check_interrupted (SIGTERM, 143, "terminated");
}

/* The first SIGINT starts a flush that cannot end (sleepy naps for an
 * hour with no timeout); the second one ends chime at once, with 130. */
static void
test_second_sigint_exits_at_once (void **state)
{
  g_autofree char *dir = fresh_dir ("second-sigint");
  g_autofree char *config = copy_test_config (dir, "hang.ini");
  const char *args[] = { "run", config, NULL };
  RunOptions options = {
    .cwd = dir,
    .signal_number = SIGINT,
    /* sleepy has started its nap: the run is under way. */
    .signal_needle = "zzzz....",
    /* Long enough to see that the first one did not end it. */
    .second_signal_after_ms = 700,
  };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 130);
  assert_string_contains (result->err, "chime: interrupted; stopping the run and flushing every handler");
  assert_string_contains (result->err, "chime: interrupted again; quitting without waiting for the handlers");
  assert_null (strstr (result->out, "woke up"));
  assert_null (find_result (result->out));
  if (result->exit_after_signal_us > 2 * G_USEC_PER_SEC)
    fail_msg ("chime took %.3f s to exit after the second SIGINT",
              result->exit_after_signal_us / (gdouble) G_USEC_PER_SEC);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sigint),
    cmocka_unit_test (test_sigterm),
    cmocka_unit_test (test_second_sigint_exits_at_once),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
