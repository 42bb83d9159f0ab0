/* Emitting without blocking (chime/emit.h), as an embedder on the main
 * loop uses it: prepared events, the four answers of
 * chime_run_emit_nowait() and chime_run_when_ready(). */
#include "dispatch-helpers.h"

#include <string.h>

typedef struct {
  gboolean called;
  GError  *failure;
} Ready;

static void
on_ready (const GError *failure,
          gpointer      data)
{
  Ready *ready = data;

  ready->called = TRUE;
  if (failure != NULL)
    ready->failure = g_error_copy (failure);
}

/* Iterates the main loop until @ready was called (fails after 10 s). */
static void
wait_ready (Ready *ready)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (!ready->called)
    {
      if (g_get_monotonic_time () > deadline)
        fail_msg ("chime_run_when_ready never called back");
      g_main_context_iteration (NULL, TRUE);
    }
}

static void
ready_clear (Ready *ready)
{
  g_clear_error (&ready->failure);
  ready->called = FALSE;
}

/* A start event with fenced delivery waits for a slow async handler: the
 * emitter is told PENDING and called back from the main loop, never from
 * inside the call; the handler has the event by then. */
static void
test_pending_start_calls_back_once_handled (void **state)
{
  g_autofree char *log = test_path ("pending.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[handler slow]\nplugin = recorder_async\n"
                                                       "delay_us = 20000\nlog = %s\n", log);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "topic", "atoms");
  g_autoptr (ChimeRun) chain = NULL;
  g_auto (GStrv) lines = NULL;
  ChimeEvent *start = NULL;
  Ready ready = { 0 };
  guint64 ticket = 0;

  assert_null (error);
  chain = chime_callback_manager_prepare_chain_start (manager, NULL, inputs, "Chain", NULL, &start);
  assert_non_null (chain);
  assert_int_equal (chime_event_get_event_type (start), CHIME_EVENT_CHAIN_START);
  assert_int_equal (chime_run_emit_nowait (chain, start, &ticket, &error), CHIME_EMIT_PENDING);
  chime_run_when_ready (chain, ticket, on_ready, &ready);
  assert_false (ready.called);
  wait_ready (&ready);
  assert_null (ready.failure);
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 1);
  assert_string_equal (lines[0], "slow chain_start Chain");
}

/* Tokens stream: with fenced delivery they are DONE at once. */
static void
test_tokens_are_done_at_once (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[handler r]\nplugin = recorder_sync\n");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "M",
                                                                          NULL, &error);
  ChimeHandlerStats stats;

  assert_non_null (llm);
  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u", i);
      guint64 ticket;

      assert_int_equal (chime_run_emit_nowait (llm, chime_run_prepare_llm_new_token (llm, token, NULL),
                                               &ticket, &error),
                        CHIME_EMIT_DONE);
    }
  chime_runtime_flush (runtime);
  assert_true (chime_runtime_get_handler_stats (runtime, "r", &stats, sizeof stats));
  assert_int_equal (stats.delivered, 101);
}

/* Awaited delivery to a sync handler: the emitter may run the handler
 * itself (as chime_run_on_llm_new_token does), so every token is DONE at
 * once, handled in order, with no round of the main loop in between. A
 * PENDING here cost each awaited pipeline token ~2 us: a wait queued, a
 * heavy barrier and a main-loop round to learn what was known at once. */
static void
test_awaited_tokens_to_a_sync_handler_are_done_at_once (void **state)
{
  g_autofree char *log = test_path ("awaited.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                                                       "[handler r]\nplugin = recorder_sync\nlog = %s\n",
                                                       log);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "M",
                                                                          NULL, &error);
  g_auto (GStrv) lines = NULL;

  assert_non_null (llm);
  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u", i);
      guint64 ticket = 1;

      assert_int_equal (chime_run_emit_nowait (llm, chime_run_prepare_llm_new_token (llm, token, NULL),
                                               &ticket, &error),
                        CHIME_EMIT_DONE);
      assert_int_equal (ticket, 0);
    }
  /* Handled already, in order: nothing was left for a flush. */
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 101);
  assert_string_equal (lines[0], "r chat_model_start Human: hi");
  assert_string_equal (lines[1], "r llm_new_token 0");
  assert_string_equal (lines[100], "r llm_new_token 99");
}

/* A full ring (the smallest, 16 events, and a slow handler) answers
 * WOULD_BLOCK and leaves the event with the emitter, which offers the same
 * event again once called back: every token arrives, in order. */
static void
test_would_block_leaves_the_event_to_offer_again (void **state)
{
  g_autofree char *log = test_path ("full.log");
  g_autofree char *report = test_path ("full.json");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[runtime]\nqueue_limit = 16\n"
                                                       "delivery = background\n"
                                                       "[handler slow]\nplugin = recorder_sync\n"
                                                       "delay_us = 500\nlog = %s\nreport = %s\n",
                                                       log, report);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "M",
                                                                          NULL, &error);
  g_autoptr (json_t) summary = NULL;
  g_auto (GStrv) lines = NULL;
  guint would_block = 0;

  for (guint i = 0; i < 64; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u", i);
      ChimeEvent *event = chime_run_prepare_llm_new_token (llm, token, NULL);
      ChimeEmitStatus status;
      guint64 ticket;

      while ((status = chime_run_emit_nowait (llm, event, &ticket, &error)) == CHIME_EMIT_WOULD_BLOCK)
        {
          Ready ready = { 0 };

          would_block++;
          assert_int_equal (chime_event_get_event_type (event), CHIME_EVENT_LLM_NEW_TOKEN);
          assert_string_equal (chime_event_get_token (event), token);
          chime_run_when_ready (llm, ticket, on_ready, &ready);
          wait_ready (&ready);
        }
      assert_int_equal (status, CHIME_EMIT_DONE);
    }
  assert_true (would_block > 0);
  chime_runtime_shutdown (runtime);
  summary = test_read_json (report);
  assert_int_equal (json_integer_value (json_object_get (summary, "order_violations")), 0);
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 65);
  assert_string_equal (lines[1], "slow llm_new_token 0");
  assert_string_equal (lines[64], "slow llm_new_token 63");
}

/* chime_run_emit_token_nowait(): a stream's tokens offered as text, with
 * the answers chime_run_emit_nowait() gives their prepared events. With
 * fenced delivery each is DONE at once, nothing handed back, and the
 * handler has every token in order. */
static void
test_tokens_offered_as_text_are_done_at_once (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *log = test_path ("text.log");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;

  dispatch_start (f, "[handler r]\nplugin = recorder_sync\nlog = %s\n", log);
  f->llm = start_chat (f->manager);
  /* Fewer than the ring holds: a full one would answer WOULD_BLOCK. */
  for (guint i = 0; i < 500; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u", i);
      g_autoptr (json_t) chunk = json_pack ("{s:s}", "content", token);
      ChimeEvent *held = GINT_TO_POINTER (1);
      guint64 ticket = 1;

      assert_int_equal (chime_run_emit_token_nowait (f->llm, token, chunk, &held, &ticket, &error),
                        CHIME_EMIT_DONE);
      assert_null (held);
      assert_int_equal (ticket, 0);
    }
  chime_runtime_flush (f->runtime);
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 501);
  assert_string_equal (lines[1], "r llm_new_token 0");
  assert_string_equal (lines[500], "r llm_new_token 499");
}

/* A full ring (16 events, a slow handler): WOULD_BLOCK hands the token
 * back as its event, with its text and chunk, to offer again with
 * chime_run_emit_nowait() once called back; every token arrives, in
 * order, none twice. */
static void
test_a_token_without_room_is_handed_back_as_its_event (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *log = test_path ("text-full.log");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;
  guint would_block = 0;

  dispatch_start (f, "[runtime]\nqueue_limit = 16\ndelivery = background\n"
                  "[handler slow]\nplugin = recorder_sync\ndelay_us = 500\nlog = %s\n", log);
  f->llm = start_chat (f->manager);
  for (guint i = 0; i < 64; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u", i);
      g_autoptr (json_t) chunk = json_pack ("{s:i}", "n", (json_int_t) i);
      ChimeEvent *held = NULL;
      ChimeEmitStatus status;
      guint64 ticket;

      status = chime_run_emit_token_nowait (f->llm, token, chunk, &held, &ticket, &error);
      while (status == CHIME_EMIT_WOULD_BLOCK)
        {
          Ready ready = { 0 };

          would_block++;
          assert_non_null (held);
          assert_int_equal (chime_event_get_event_type (held), CHIME_EVENT_LLM_NEW_TOKEN);
          assert_string_equal (chime_event_get_token (held), token);
          assert_true (json_equal (chime_event_get_chunk (held), chunk));
          chime_run_when_ready (f->llm, ticket, on_ready, &ready);
          wait_ready (&ready);
          status = chime_run_emit_nowait (f->llm, held, &ticket, &error);
        }
      assert_int_equal (status, CHIME_EMIT_DONE);
    }
  assert_true (would_block > 0);
  dispatch_stop (f);
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 65);
  for (guint i = 0; i < 64; i++)
    {
      g_autofree char *expected = g_strdup_printf ("slow llm_new_token %u", i);

      assert_string_equal (lines[i + 1], expected);
    }
}

/* Where a token needs more than the ring — a run_inline handler, awaited
 * delivery — chime_run_emit_token_nowait() takes the prepared event's
 * way, with its answers: the inline handler has each token once, before
 * the queued one, and awaited tokens to a sync handler are DONE at once. */
static void
test_tokens_offered_as_text_the_long_way (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *log = test_path ("text-long.log");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) lines = NULL;

  dispatch_start (f, "[runtime]\ndelivery = awaited\n"
                  "[handler first]\nplugin = recorder_sync\nrun_inline = true\nlog = %s\n"
                  "[handler second]\nplugin = recorder_sync\nlog = %s\n", log, log);
  f->llm = start_chat (f->manager);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u", i);
      ChimeEvent *held = NULL;
      guint64 ticket = 1;

      assert_int_equal (chime_run_emit_token_nowait (f->llm, token, NULL, &held, &ticket, &error),
                        CHIME_EMIT_DONE);
      assert_null (held);
      assert_int_equal (ticket, 0);
    }
  /* Handled already (awaited): the start's two lines, then each token's. */
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 8);
  assert_string_equal (lines[2], "first llm_new_token 0");
  assert_string_equal (lines[3], "second llm_new_token 0");
  assert_string_equal (lines[6], "first llm_new_token 2");
  assert_string_equal (lines[7], "second llm_new_token 2");
}

/* A token no handler wants (the one handler implements on_llm_start
 * only) is DONE at once, nothing handed back; the handler's count of
 * delivered events stays that of the start. */
static void
test_a_token_nobody_wants_is_done_at_once (void **state)
{
  DispatchFixture *f = *state;
  g_autoptr (GError) error = NULL;
  ChimeHandlerStats stats;

  dispatch_start (f, "[handler starts]\nplugin = llm_only\n");
  f->llm = start_chat (f->manager);
  for (guint i = 0; i < 100; i++)
    {
      ChimeEvent *held = GINT_TO_POINTER (1);
      guint64 ticket = 1;

      assert_int_equal (chime_run_emit_token_nowait (f->llm, "x", NULL, &held, &ticket, &error),
                        CHIME_EMIT_DONE);
      assert_null (held);
      assert_int_equal (ticket, 0);
      assert_true (chime_run_on_llm_new_token (f->llm, "y", NULL, &error));
    }
  assert_null (error);
  chime_runtime_flush (f->runtime);
  stats = stats_of (f->runtime, "starts");
  assert_int_equal (stats.delivered, 1);
}

/* A raise_error handler's failure reaches the emitter: the wait for the
 * event it failed on calls back with the failure, and the run tree's next
 * emission fails. */
static void
test_raise_error_failure_reaches_the_emitter (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[handler strict]\nplugin = recorder_sync\n"
                                                       "fail_on = llm_new_token\nraise_error = true\n");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "M",
                                                                          NULL, &error);
  ChimeEmitStatus status;
  Ready ready = { 0 };
  guint64 ticket;

  assert_non_null (llm);
  /* Events for a raise_error handler are always waited for: PENDING, or,
   * when the handler was quicker than the emitter's look, FAILED at once
   * with its failure. */
  status = chime_run_emit_nowait (llm, chime_run_prepare_llm_new_token (llm, "Hi", NULL), &ticket, &error);
  if (status == CHIME_EMIT_PENDING)
    {
      chime_run_when_ready (llm, ticket, on_ready, &ready);
      wait_ready (&ready);
      assert_non_null (ready.failure);
      assert_string_contains (ready.failure->message, "recorder strict refuses llm_new_token");
      ready_clear (&ready);
    }
  else
    {
      assert_int_equal (status, CHIME_EMIT_FAILED);
      assert_string_contains (error->message, "recorder strict refuses llm_new_token");
      g_clear_error (&error);
    }
  assert_int_equal (chime_run_emit_nowait (llm, chime_run_prepare_llm_end (llm, NULL), &ticket, &error),
                    CHIME_EMIT_FAILED);
  assert_true (g_error_matches (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED));
  assert_string_contains (error->message, "refuses llm_new_token");
  g_clear_error (&error);
  /* Reporting the failure itself is never refused. */
  assert_int_not_equal (chime_run_emit_nowait (llm, chime_run_prepare_llm_error (llm, NULL, NULL),
                                               &ticket, &error),
                        CHIME_EMIT_FAILED);
  chime_runtime_flush (runtime);
}

/* The flush of a program that keeps its main loop running: it answers
 * from the loop once everything emitted before it is handled. */
static void
on_flushed (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  Ready *ready = data;

  ready->called = chime_runtime_flush_finish (NULL, result, &ready->failure);
}

static void
test_flush_async (void **state)
{
  g_autofree char *log = test_path ("flush.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[runtime]\ndelivery = background\n"
                                                       "[handler slow]\nplugin = recorder_async\n"
                                                       "delay_us = 5000\nlog = %s\n", log);
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_object ();
  g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "C", NULL, &error);
  g_auto (GStrv) lines = NULL;
  Ready ready = { 0 };

  assert_true (chime_run_on_text (chain, "one", &error));
  assert_true (chime_run_on_text (chain, "two", &error));
  chime_runtime_flush_async (runtime, NULL, on_flushed, &ready);
  assert_false (ready.called);
  wait_ready (&ready);
  assert_null (ready.failure);
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 3);
}

/* ------------------------------------------------------------------
 * Event numbers (chime_event_get_sequence)
 * ---------------------------------------------------------------- */

/* The next event of @run, prepared and dropped: its number. */
static guint64
next_number (ChimeRun *run)
{
  g_autoptr (json_t) data = json_object ();
  g_autoptr (ChimeEvent) event = chime_run_prepare_custom_event (run, "numbered", data);

  return chime_event_get_sequence (event);
}

/* One thread numbers a run's events 1, 2, 3 ... with no gap, even while
 * it makes events of another run in between: numbers are taken in
 * blocks, and a block starts small. */
static void
test_events_of_a_run_are_numbered_from_one (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "%s", "");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_object ();
  g_autoptr (ChimeRun) a = NULL;
  g_autoptr (ChimeRun) b = NULL;
  g_autoptr (ChimeEvent) a_start = NULL;
  g_autoptr (ChimeEvent) b_start = NULL;

  assert_null (error);
  a = chime_callback_manager_prepare_chain_start (manager, NULL, inputs, "A", NULL, &a_start);
  b = chime_callback_manager_prepare_chain_start (manager, NULL, inputs, "B", NULL, &b_start);
  assert_int_equal (chime_event_get_sequence (a_start), 1);
  assert_int_equal (chime_event_get_sequence (b_start), 1);
  assert_int_equal (next_number (a), 2);
  assert_int_equal (next_number (b), 2);
  assert_int_equal (next_number (a), 3);
  for (guint64 n = 4; n < 1000; n++)
    assert_int_equal (next_number (a), n);
}

#define NUMBERING_THREADS 4
#define NUMBERS_PER_THREAD 20000

typedef struct {
  ChimeRun *run;
  guint64   numbers[NUMBERS_PER_THREAD];
} Numbering;

static gpointer
take_numbers (gpointer data)
{
  Numbering *numbering = data;

  for (guint i = 0; i < NUMBERS_PER_THREAD; i++)
    numbering->numbers[i] = next_number (numbering->run);
  return NULL;
}

/* Threads making events of one run at once get numbers no other event of
 * the run has (the id `chime consume` and dedupe key on), each thread's
 * rising in the order it made them. */
static void
test_events_made_on_several_threads_have_numbers_of_their_own (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "%s", "");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_object ();
  g_autoptr (ChimeEvent) start = NULL;
  g_autoptr (ChimeRun) run = chime_callback_manager_prepare_chain_start (manager, NULL, inputs, "Chain", NULL,
                                                                        &start);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  Numbering *numbering = g_new0 (Numbering, NUMBERING_THREADS);
  GThread *threads[NUMBERING_THREADS];

  for (guint t = 0; t < NUMBERING_THREADS; t++)
    {
      numbering[t].run = run;
      threads[t] = g_thread_new ("numbers", take_numbers, &numbering[t]);
    }
  for (guint t = 0; t < NUMBERING_THREADS; t++)
    g_thread_join (threads[t]);
  for (guint t = 0; t < NUMBERING_THREADS; t++)
    for (guint i = 0; i < NUMBERS_PER_THREAD; i++)
      {
        guint64 *number = &numbering[t].numbers[i];

        assert_true (*number > 1);   /* 1 is the start event's */
        if (i > 0)
          assert_true (*number > numbering[t].numbers[i - 1]);
        if (!g_hash_table_add (seen, number))
          fail_msg ("event number %" G_GUINT64_FORMAT " given twice", *number);
      }
  assert_int_equal (g_hash_table_size (seen), NUMBERING_THREADS * NUMBERS_PER_THREAD);
  g_free (numbering);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_pending_start_calls_back_once_handled),
    cmocka_unit_test (test_tokens_are_done_at_once),
    cmocka_unit_test (test_awaited_tokens_to_a_sync_handler_are_done_at_once),
    cmocka_unit_test (test_would_block_leaves_the_event_to_offer_again),
    cmocka_unit_test_setup_teardown (test_tokens_offered_as_text_are_done_at_once,
                                     dispatch_setup, dispatch_teardown),
    cmocka_unit_test_setup_teardown (test_a_token_without_room_is_handed_back_as_its_event,
                                     dispatch_setup, dispatch_teardown),
    cmocka_unit_test_setup_teardown (test_tokens_offered_as_text_the_long_way,
                                     dispatch_setup, dispatch_teardown),
    cmocka_unit_test_setup_teardown (test_a_token_nobody_wants_is_done_at_once,
                                     dispatch_setup, dispatch_teardown),
    cmocka_unit_test (test_raise_error_failure_reaches_the_emitter),
    cmocka_unit_test (test_flush_async),
    cmocka_unit_test (test_events_of_a_run_are_numbered_from_one),
    cmocka_unit_test (test_events_made_on_several_threads_have_numbers_of_their_own),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
