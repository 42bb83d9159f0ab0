/* Handlers that fail: a failure is logged, not raised, unless the
 * handler has raise_error, which fails the whole run tree (at once when
 * it runs inline); an async handler that hangs is cut off by its
 * timeout and the events after it still arrive; one that blocks the main
 * loop is named by the loop watchdog. */
#include "dispatch-helpers.h"

#include <string.h>

/* Each test is given a DispatchFixture (dispatch-helpers.h): it builds
 * its runtime with dispatch_start(), keeps its runs in the fixture, and
 * the teardown frees them, the runtime and the log capture. */

/* ------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------- */

static void
test_handler_error_is_logged_not_raised (void **state)
{
  DispatchFixture *f = *state;

  dispatch_start (f, "[handler picky]\nplugin = recorder_sync\nfail_on = llm_new_token\n");
  f->llm = start_chat (f->manager);
  emit_tokens (f->llm, 1, 3);
  end_llm (f->llm);
  assert_int_equal (stats_of (f->runtime, "picky").failed, 3);
  assert_true (test_log_contains ("handler 'picky' (recorder_sync) failed on llm_new_token: "
                                  "recorder picky refuses llm_new_token"));
}

static void
test_raise_error_fails_the_run (void **state)
{
  DispatchFixture *f = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = json_pack ("{s:[]}", "generations");
  g_autofree char *log = test_path ("raise.log");
  g_auto (GStrv) lines = NULL;

  dispatch_start (f, "[runtime]\ndelivery = fenced\n"
                     "[handler strict]\nplugin = recorder_sync\nfail_on = llm_new_token\n"
                     "raise_error = true\n"
                     "[handler other]\nplugin = recorder_sync\nlog = %s\n", log);
  f->chain = start_chain (f->manager, "Chain");
  f->child = chime_run_get_child (f->chain, NULL);
  f->llm = start_chat (f->child);
  /* Tokens do not wait, so this call may or may not see the failure yet;
   * it surfaces at the next fence at the latest. */
  (void) chime_run_on_llm_new_token (f->llm, "1", NULL, NULL);
  chime_runtime_flush (f->runtime);
  /* Once the failure is known, the run's next events are refused without
   * being emitted. */
  assert_false (chime_run_on_llm_end (f->llm, result, &error));
  assert_non_null (error);
  assert_string_contains (error->message, "recorder strict refuses llm_new_token");
  /* The whole run tree is failed: the parent chain cannot end normally... */
  g_clear_error (&error);
  assert_false (chime_run_on_chain_end (f->chain, result, &error));
  g_clear_error (&error);
  /* ...but error events are always delivered. */
  assert_true (chime_run_on_llm_error (f->llm, NULL, NULL, &error));
  assert_true (chime_run_on_chain_error (f->chain, NULL, &error));
  chime_runtime_flush (f->runtime);
  /* chain_start, chat_model_start, the token, llm_error, chain_error. */
  lines = test_read_lines (log);
  if (g_strv_length (lines) != 5)
    fail_msg ("other saw:\n%s", g_strjoinv ("\n", lines));
  assert_int_equal (stats_of (f->runtime, "other").delivered, 5);
}

/* Awaited: a raise_error handler's failure fails the very call that
 * emitted the event it refused, and the handler beside it still got it. */
static void
test_raise_error_awaited_fails_the_call (void **state)
{
  DispatchFixture *f = *state;
  g_autoptr (GError) error = NULL;

  dispatch_start (f, "[runtime]\ndelivery = awaited\n"
                     "[handler strict]\nplugin = recorder_sync\nfail_on = llm_new_token\n"
                     "raise_error = true\n"
                     "[handler other]\nplugin = recorder_sync\n");
  f->llm = start_chat (f->manager);
  assert_false (chime_run_on_llm_new_token (f->llm, "1", NULL, &error));
  assert_non_null (error);
  assert_string_contains (error->message, "recorder strict refuses llm_new_token");
  assert_int_equal (stats_of (f->runtime, "strict").failed, 1);
  assert_int_equal (stats_of (f->runtime, "other").delivered, 2);
}

/* A run_inline raise_error handler fails the very call that emitted. */
static void
test_raise_error_inline_is_immediate (void **state)
{
  DispatchFixture *f = *state;
  g_autoptr (GError) error = NULL;

  dispatch_start (f, "[runtime]\ndelivery = background\n"
                     "[handler strict]\nplugin = recorder_sync\nfail_on = llm_new_token\n"
                     "raise_error = true\nrun_inline = true\n");
  f->llm = start_chat (f->manager);
  assert_false (chime_run_on_llm_new_token (f->llm, "1", NULL, &error));
  assert_non_null (error);
  assert_string_contains (error->message, "recorder strict refuses llm_new_token");
}

static void
test_async_timeout (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *report = test_path ("timeout.json");
  g_autoptr (json_t) json = NULL;
  ChimeHandlerStats stats;

  dispatch_start (f, "[runtime]\ndelivery = fenced\n"
                     "[handler sleepyhead]\nplugin = recorder_async\nhang_on = chat_model_start\n"
                     "timeout_ms = 100\nreport = %s\n", report);
  /* Returns once the timeout cut the hung call off. */
  f->llm = start_chat (f->manager);
  emit_tokens (f->llm, 1, 5);
  end_llm (f->llm);
  stats = stats_of (f->runtime, "sleepyhead");
  assert_int_equal (stats.timed_out, 1);
  assert_int_equal (stats.failed, 1);
  assert_true (test_log_contains ("handler 'sleepyhead' (recorder_async) failed on chat_model_start: "
                                  "did not complete within its timeout of 100 ms"));
  dispatch_stop (f);
  json = test_read_json (report);
  /* Everything after the hung call still arrived. */
  assert_int_equal (report_count (json, "llm_new_token"), 5);
  assert_int_equal (report_count (json, "llm_end"), 1);
}

/* A call cut off by its timeout may still complete, and read its event
 * from the completion then: the event stays alive for it, though the
 * ring has since reused its slot many times over (queue_limit 16). */
static void
test_async_late_completion_still_has_its_event (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *report = test_path ("late.json");
  g_autoptr (json_t) json = NULL;
  gint64 until;

  dispatch_start (f, "[runtime]\ndelivery = fenced\nqueue_limit = 16\n"
                     "[handler late]\nplugin = recorder_async\nlate_on = chat_model_start\n"
                     "delay_us = 300000\ntimeout_ms = 50\nreport = %s\n", report);
  f->llm = start_chat (f->manager);
  emit_tokens (f->llm, 1, 64);
  end_llm (f->llm);
  chime_runtime_flush (f->runtime);
  until = g_get_monotonic_time () + 600 * G_TIME_SPAN_MILLISECOND;
  /* The late completion comes from a timer on the main context. */
  while (g_get_monotonic_time () < until)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  assert_int_equal (stats_of (f->runtime, "late").timed_out, 1);
  assert_true (test_log_contains ("handler 'late' (recorder_async) completed chat_model_start "
                                  "after its timeout"));
  dispatch_stop (f);
  json = test_read_json (report);
  assert_int_equal (report_count (json, "chat_model_start"), 1);
  assert_int_equal (report_count (json, "llm_new_token"), 64);
  assert_int_equal (report_count (json, "llm_end"), 1);
}

/* An async handler that blocks in its entry point holds the main loop,
 * and its own timeout cannot cut it off (the deadline is a source of that
 * same loop): the watchdog names the handler and the entry point. */
static void
check_loop_watchdog (DispatchFixture *f,
                     const char      *watchdog_setting,
                     guint            block_ms,
                     gboolean         reported)
{
  dispatch_start (f, "[runtime]\n%s\n"
                     "[handler blocker]\nplugin = loop_blocker\nblock_ms = %u\n",
                  watchdog_setting, block_ms);
  /* Fenced: returns once the blocking call is over. */
  f->llm = start_chat (f->manager);
  end_llm (f->llm);
  assert_int_equal (test_log_contains ("handler 'blocker' (loop_blocker) has held the main loop for over "
                                       "100 ms in on_chat_model_start"), reported);
}

static void
test_loop_watchdog_names_a_blocking_async_handler (void **state)
{
  check_loop_watchdog (*state, "loop_watchdog_ms = 100", 600, TRUE);
}

static void
test_loop_watchdog_is_quiet_for_short_calls (void **state)
{
  check_loop_watchdog (*state, "loop_watchdog_ms = 100", 0, FALSE);
}

static void
test_loop_watchdog_off (void **state)
{
  check_loop_watchdog (*state, "loop_watchdog_ms = 0", 600, FALSE);
}

/* ------------------------------------------------------------------ */

/* Every test in a fresh fixture, capturing chime's log. */
#define CASE(test) cmocka_unit_test_setup_teardown (test, dispatch_setup_capturing_log, dispatch_teardown)

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CASE (test_handler_error_is_logged_not_raised),
    CASE (test_raise_error_fails_the_run),
    CASE (test_raise_error_awaited_fails_the_call),
    CASE (test_raise_error_inline_is_immediate),
    CASE (test_async_timeout),
    CASE (test_async_late_completion_still_has_its_event),
    CASE (test_loop_watchdog_names_a_blocking_async_handler),
    CASE (test_loop_watchdog_is_quiet_for_short_calls),
    CASE (test_loop_watchdog_off),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
