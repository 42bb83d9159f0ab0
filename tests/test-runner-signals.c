/* Ctrl-C and SIGTERM during a run: exit 130 or 143, no result, and
 * every handler flushed with the error events and the partial answer;
 * a second Ctrl-C quits at once without waiting for the handlers, even
 * when a handler holds the main loop; and a hundred signals at random
 * moments (from start-up on, with and without back-pressure) each end
 * the run cleanly.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

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

  /* Every line parses, and the file ends with the three error events:
   * the model's, the parser's (streaming since before the first token),
   * the root's. */
  events = read_json_lines (trace);
  names = event_names (events);
  assert_true (json_array_size (events) >= 9);
  assert_true (g_str_has_prefix (names, "chain_start chain_start chain_end chat_model_start chain_start "));
  before_last = json_array_get (events, json_array_size (events) - 3);
  last = json_array_get (events, json_array_size (events) - 1);
  assert_string_equal (json_string_value (json_object_get (before_last, "event")), "llm_error");
  assert_string_equal (json_string_value (json_object_get (json_array_get (events, json_array_size (events) - 2),
                                                          "event")), "chain_error");
  assert_string_equal (json_string_value (json_object_get (last, "event")), "chain_error");
  assert_true (json_is_null (json_object_get (last, "parent_run_id")));
  assert_int_equal (count_events (events, "llm_end"), 0);

  /* Counts are consistent: every token is there, and they are what the
   * model had produced when it was stopped (the partial result). */
  n_tokens = count_events (events, "llm_new_token");
  assert_int_equal (n_tokens, json_array_size (events) - 8);
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

/* An async handler sleeps in its entry point, holding the main loop: the
 * first SIGINT is still heard at once (and said), and the second still
 * ends chime at once. (Before, both waited for the loop: for a minute.) */
static void
test_signals_heard_while_a_handler_holds_the_loop (void **state)
{
  g_autofree char *dir = fresh_dir ("blocked-loop");
  g_autofree char *config = copy_test_config (dir, "blocked-loop.ini");
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = {
    .cwd = dir,
    .env = env,
    .signal_number = SIGINT,
    .signal_needle = "loop_blocker: holding the main loop",
    .second_signal_after_ms = 700,
  };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 130);
  assert_string_contains (result->err, "chime: interrupted; stopping the run and flushing every handler");
  assert_string_contains (result->err, "chime: interrupted again; quitting without waiting for the handlers");
  if (result->exit_after_signal_us > 2 * G_USEC_PER_SEC)
    fail_msg ("chime took %.3f s to exit after the second SIGINT",
              result->exit_after_signal_us / (gdouble) G_USEC_PER_SEC);
}

/* ------------------------------------------------------------------
 * Fifty signals at random moments, twice
 * ---------------------------------------------------------------- */

#define LOOP_RUNS 50

/* CHIME_TEST_SIGNAL_RUNS makes the loop shorter (or longer): each run is
 * a whole `chime run`, which ThreadSanitizer makes ten times slower, and
 * its pass of .ci/run does 10 (docs/reliability.md). */
static guint
loop_runs (void)
{
  const char *text = g_getenv ("CHIME_TEST_SIGNAL_RUNS");
  guint64 runs;

  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT, &runs, NULL))
    return LOOP_RUNS;
  return (guint) runs;
}

/* A fast model that a jsonl handler holds up (queue_limit = 16: the
 * stream waits for room most of the time), or a model that streams
 * slower than its handler, so that nothing waits. */
static char *
write_loop_config (const char *dir,
                   gboolean    back_pressure)
{
  g_autoptr (GString) ini = g_string_new (NULL);
  guint n_words = back_pressure ? 40000 : 400;

  if (back_pressure)
    g_string_append (ini, "[runtime]\nqueue_limit = 16\n\n");
  g_string_append (ini, "[pipeline]\nprompt = Count\nmodel = counter\n\n"
                        "[model counter]\nprovider = fake\nchunking = word\n");
  if (!back_pressure)
    g_string_append (ini, "chunk_delay_ms = 1\n");
  g_string_append (ini, "response =");
  for (guint i = 0; i < n_words; i++)
    g_string_append_printf (ini, " w%u", i);
  g_string_append (ini, "\n\n[handler trace]\nplugin = jsonl\npath = trace.jsonl\n");
  return write_in (dir, "loop.ini", ini->str);
}

/* What a clean stop leaves: whole lines only, every run that started
 * ended (with an error unless the run had finished), the root last. */
static void
check_clean_trace (const char *trace,
                   const char *out,
                   const char *context)
{
  g_autofree char *text = read_text (trace);
  g_auto (GStrv) lines = NULL;
  g_autoptr (GHashTable) open_runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (json_t) last = NULL;
  gboolean model_started = FALSE, model_ended = FALSE;

  if (text == NULL || !g_str_has_suffix (text, "\n"))
    fail_msg ("%s: %s is missing or ends in a torn line", context, trace);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      json_t *event = json_loads (lines[i], 0, NULL);
      const char *name = json_string_value (json_object_get (event, "event"));
      const char *run_id = json_string_value (json_object_get (event, "run_id"));

      if (event == NULL || name == NULL || run_id == NULL)
        fail_msg ("%s: line %u of %s is not a whole event: %.200s", context, i + 1, trace, lines[i]);
      if (g_str_has_suffix (name, "_start"))
        g_hash_table_add (open_runs, g_strdup (run_id));
      else if (g_str_has_suffix (name, "_end") || g_str_has_suffix (name, "_error"))
        {
          if (!g_hash_table_remove (open_runs, run_id))
            fail_msg ("%s: line %u of %s ends a run that is not open", context, i + 1, trace);
        }
      model_started |= g_str_equal (name, "chat_model_start");
      model_ended |= g_str_equal (name, "llm_end") || g_str_equal (name, "llm_error");
      if (last != NULL)
        json_decref (last);
      last = event;
    }
  if (g_hash_table_size (open_runs) != 0)
    fail_msg ("%s: %u runs of %s never ended", context, g_hash_table_size (open_runs), trace);
  if (last == NULL || model_started != model_ended)
    fail_msg ("%s: %s has no events, or a model run that did not end", context, trace);
  if (!json_is_null (json_object_get (last, "parent_run_id")))
    fail_msg ("%s: the last event of %s is not the root's", context, trace);
  /* The root ends with an error, unless the run had ended when the
   * signal came: then its result was printed. */
  if (g_str_equal (json_string_value (json_object_get (last, "event")), "chain_end"))
    {
      g_autoptr (json_t) result = find_result (out);

      if (result == NULL)
        fail_msg ("%s: the run ended with chain_end, but printed no result", context);
    }
  else if (!g_str_equal (json_string_value (json_object_get (last, "event")), "chain_error"))
    fail_msg ("%s: %s ends with %s", context, trace, json_string_value (json_object_get (last, "event")));
}

static void
signal_loop (gboolean back_pressure)
{
  g_autofree char *dir = fresh_dir (back_pressure ? "signal-loop-pressure" : "signal-loop");
  g_autofree char *config = write_loop_config (dir, back_pressure);
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  const char *seed_text = g_getenv ("CHIME_TEST_SEED");
  guint32 seed = seed_text != NULL ? (guint32) g_ascii_strtoull (seed_text, NULL, 10) : g_random_int ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  const char *args[] = { "run", config, NULL };
  const guint n_runs = loop_runs ();

  for (guint i = 0; i < n_runs; i++)
    {
      int signal_number = g_rand_boolean (rand) ? SIGINT : SIGTERM;
      RunOptions options = {
        .cwd = dir,
        .signal_number = signal_number,
        .signal_once_caught = TRUE,
        /* The first few as soon as chime can catch them: while it reads
         * its configuration and loads its plugins. */
        .signal_after_ms = i < 5 ? 0 : g_rand_int_range (rand, 0, 250),
      };
      g_autofree char *context = g_strdup_printf ("run %u of %u (CHIME_TEST_SEED=%u): signal %d %u ms "
                                                  "after chime could catch it", i + 1, n_runs, seed,
                                                  signal_number, options.signal_after_ms);
      g_autoptr (RunResult) result = NULL;

      g_remove (trace);
      result = run_chime_argv (&options, args);
      if (result->status != 128 + signal_number)
        fail_msg ("%s: exit status %d, not %d\nstderr:\n%s", context, result->status, 128 + signal_number,
                  result->err);
      if (strstr (result->err, signal_number == SIGINT ? "chime: interrupted; stopping the run"
                                                       : "chime: terminated; stopping the run") == NULL ||
          strstr (result->err, "CRITICAL") != NULL || strstr (result->err, "WARNING") != NULL)
        fail_msg ("%s: stderr says\n%s", context, result->err);
      check_clean_trace (trace, result->out, context);
    }
}

/* The bug this loop found: with back-pressure, a signal while a token
 * waited for room made the run wait twice; the second wait fired after
 * the run had moved on, offered no event (a CRITICAL) and the run never
 * ended, or segfaulted. */
static void
test_signals_at_random_moments_with_back_pressure (void **state)
{
  signal_loop (TRUE);
}

static void
test_signals_at_random_moments (void **state)
{
  signal_loop (FALSE);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sigint),
    cmocka_unit_test (test_sigterm),
    cmocka_unit_test (test_second_sigint_exits_at_once),
    cmocka_unit_test (test_signals_heard_while_a_handler_holds_the_loop),
    cmocka_unit_test (test_signals_at_random_moments_with_back_pressure),
    cmocka_unit_test (test_signals_at_random_moments),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
