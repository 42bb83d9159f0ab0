/* Delivery: every handler gets every event in order and is never called
 * twice at once, whichever delivery mode; what fenced, awaited and
 * background each wait for; and that flushing or freeing the runtime
 * delivers everything still queued. Real plugins, loaded from
 * tests/plugins. */
#include "dispatch-helpers.h"

#include <string.h>

/* Each test is given a DispatchFixture (dispatch-helpers.h): it builds
 * its runtime with dispatch_start(), keeps its runs in the fixture, and
 * the teardown frees them and the runtime, also when the test fails. A
 * test that reads the handlers' reports calls dispatch_stop() first: the
 * handlers write them when the runtime is freed. */

/* ------------------------------------------------------------------
 * Order and the never-concurrent rule: 4 emitting threads, 4 handlers on
 * 4 pool threads, 100,000 tokens.
 * ---------------------------------------------------------------- */

#define EMITTERS 4
#define TOKENS_PER_EMITTER 25000

typedef struct {
  ChimeCallbackManager *manager;
} EmitterArgs;

static gpointer
emitter_thread (gpointer data)
{
  EmitterArgs *args = data;
  g_autoptr (ChimeRun) chain = start_chain (args->manager, "Emitter");
  g_autoptr (ChimeCallbackManager) child = chime_run_get_child (chain, NULL);
  g_autoptr (ChimeRun) llm = start_chat (child);

  emit_tokens (llm, 1, TOKENS_PER_EMITTER);
  end_llm (llm);
  end_chain (chain);
  return NULL;
}

static void
run_order_test (DispatchFixture *f,
                const char      *delivery,
                const char      *fourth_plugin)
{
  g_autofree char *reports[4] = { NULL };
  GThread *threads[EMITTERS];
  EmitterArgs args;

  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("order-%s-%u.json", delivery, i);
      reports[i] = test_path (name);
    }
  dispatch_start (f, "[runtime]\nthreads = 4\ndelivery = %s\nqueue_limit = 1024\n"
                     "[handler a]\nplugin = recorder_sync\nreport = %s\n"
                     "[handler b]\nplugin = recorder_sync\nreport = %s\n"
                     "[handler c]\nplugin = recorder_sync\nreport = %s\n"
                     "[handler d]\nplugin = %s\nreport = %s\n",
                     delivery, reports[0], reports[1], reports[2], fourth_plugin,
                     reports[3]);
  args.manager = f->manager;
  for (guint i = 0; i < EMITTERS; i++)
    threads[i] = g_thread_new ("emitter", emitter_thread, &args);
  for (guint i = 0; i < EMITTERS; i++)
    g_thread_join (threads[i]);
  dispatch_stop (f);

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (json_t) report = test_read_json (reports[i]);
      assert_int_equal (report_count (report, "llm_new_token"), EMITTERS * TOKENS_PER_EMITTER);
      assert_int_equal (report_count (report, "chain_start"), EMITTERS);
      assert_int_equal (report_count (report, "chat_model_start"), EMITTERS);
      assert_int_equal (report_count (report, "llm_end"), EMITTERS);
      assert_int_equal (report_count (report, "chain_end"), EMITTERS);
      assert_int_equal (report_int (report, "order_violations"), 0);
      assert_int_equal (report_int (report, "overlaps"), 0);
    }
}

static void
test_order_background (void **state)
{
  run_order_test (*state, "background", "recorder_async");
}

static void
test_order_fenced (void **state)
{
  run_order_test (*state, "fenced", "recorder_async");
}

/* Awaited with sync handlers only: an emitter that finds every handler
 * free calls them itself, at once (core/dispatch/caller-runs.c); the
 * others, finding them taken or with work queued, go through the ring.
 * Four emitters keep both paths and the moves between them busy. */
static void
test_order_awaited (void **state)
{
  run_order_test (*state, "awaited", "recorder_sync");
}

/* ------------------------------------------------------------------
 * A second emitter joins a stream. While one thread emits, the ring
 * claims positions with plain stores; the first claim of another thread
 * switches it to CAS claims while the first keeps streaming. A claim lost
 * in that switch would put two events in one slot: a handler would miss
 * one or see one twice (and TSan would see the two emitters' stores).
 * The ring is small (queue_limit 16) so that slots are reused all the
 * time.
 * ---------------------------------------------------------------- */

#define JOIN_TOKENS 20000
#define JOIN_AFTER 2000

typedef struct {
  ChimeCallbackManager *manager;
  gint                  streaming;   /* the first emitter is past JOIN_AFTER */
} JoinArgs;

static gpointer
stream_thread (gpointer data)
{
  JoinArgs *args = data;
  g_autoptr (ChimeRun) llm = start_chat (args->manager);

  emit_tokens (llm, 1, JOIN_AFTER);
  g_atomic_int_set (&args->streaming, TRUE);
  emit_tokens (llm, JOIN_AFTER + 1, JOIN_TOKENS - JOIN_AFTER);
  end_llm (llm);
  return NULL;
}

static gpointer
joining_thread (gpointer data)
{
  JoinArgs *args = data;
  g_autoptr (ChimeRun) llm = start_chat (args->manager);

  emit_tokens (llm, 1, JOIN_TOKENS);
  end_llm (llm);
  return NULL;
}

static void
test_second_emitter_joins_a_stream (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *reports[2] = { test_path ("join-a.json"), test_path ("join-b.json") };
  JoinArgs args = { NULL, FALSE };
  GThread *first, *second;

  dispatch_start (f, "[runtime]\nthreads = 2\ndelivery = background\nqueue_limit = 16\n"
                     "[handler a]\nplugin = recorder_sync\nreport = %s\n"
                     "[handler b]\nplugin = recorder_sync\nreport = %s\n",
                  reports[0], reports[1]);
  args.manager = f->manager;
  first = g_thread_new ("first-emitter", stream_thread, &args);
  while (!g_atomic_int_get (&args.streaming))
    g_usleep (100);
  second = g_thread_new ("joining-emitter", joining_thread, &args);
  g_thread_join (first);
  g_thread_join (second);
  chime_runtime_flush (f->runtime);
  assert_int_equal (stats_of (f->runtime, "a").dropped, 0);
  assert_int_equal (stats_of (f->runtime, "a").delivered, 2 * (JOIN_TOKENS + 2));
  assert_int_equal (stats_of (f->runtime, "b").delivered, 2 * (JOIN_TOKENS + 2));
  dispatch_stop (f);

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) report = test_read_json (reports[i]);

      assert_int_equal (report_count (report, "llm_new_token"), 2 * JOIN_TOKENS);
      assert_int_equal (report_count (report, "chat_model_start"), 2);
      assert_int_equal (report_count (report, "llm_end"), 2);
      assert_int_equal (report_int (report, "order_violations"), 0);
      assert_int_equal (report_int (report, "overlaps"), 0);
    }
}

/* ------------------------------------------------------------------
 * Delivery modes
 * ---------------------------------------------------------------- */

/* Fenced: tokens stream, but llm_end reaches the fast handler only after
 * the slow one has handled every token, and the emitter continues only
 * once llm_end is handled by both. */
static void
test_fenced_end_waits_for_everything_before (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *log = test_path ("fenced.log");
  g_auto (GStrv) lines = NULL;
  ChimeHandlerStats slow, fast;

  dispatch_start (f, "[runtime]\ndelivery = fenced\n"
                     "[handler slow]\nplugin = recorder_sync\nlog = %s\ndelay_us = 2000\n"
                     "[handler fast]\nplugin = recorder_async\nlog = %s\n",
                     log, log);
  f->llm = start_chat (f->manager);
  /* The start is a fence: both handled it when the call returned. */
  assert_int_equal (stats_of (f->runtime, "slow").delivered, 1);
  assert_int_equal (stats_of (f->runtime, "fast").delivered, 1);
  emit_tokens (f->llm, 1, 20);
  end_llm (f->llm);
  slow = stats_of (f->runtime, "slow");
  fast = stats_of (f->runtime, "fast");
  assert_int_equal (slow.delivered, 22);
  assert_int_equal (fast.delivered, 22);
  dispatch_stop (f);

  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 44);
  /* Both starts before any token; both ends after every token. */
  assert_true (test_find_last_line (lines, "chat_model_start") <
               test_find_line (lines, "llm_new_token", 0));
  assert_true (test_find_last_line (lines, "slow llm_new_token 20") <
               test_find_line (lines, "llm_end", 0));
  assert_true (test_find_last_line (lines, "fast llm_new_token 20") <
               test_find_line (lines, "llm_end", 0));
}

/* Awaited: every call returns only once every handler handled it. */
static void
test_awaited_waits_on_every_event (void **state)
{
  DispatchFixture *f = *state;

  dispatch_start (f, "[runtime]\ndelivery = awaited\n"
                     "[handler s]\nplugin = recorder_sync\ndelay_us = 500\n"
                     "[handler a]\nplugin = recorder_async\ndelay_us = 1000\n");
  f->llm = start_chat (f->manager);
  for (guint i = 1; i <= 10; i++)
    {
      emit_tokens (f->llm, i, 1);
      assert_int_equal (stats_of (f->runtime, "s").delivered, 1 + i);
      assert_int_equal (stats_of (f->runtime, "a").delivered, 1 + i);
    }
  end_llm (f->llm);
}

/* Awaited, one emitting thread: sync handlers run on the emitter's own
 * thread, as LangChain's sync manager runs them, except one found slow,
 * which moves to the pool so that slow handlers work in parallel. */
static void
test_awaited_handlers_run_on_the_emitter (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *fast_report = test_path ("awaited-fast.json");
  g_autofree char *slow_report = test_path ("awaited-slow.json");
  g_autoptr (json_t) fast = NULL;
  g_autoptr (json_t) slow = NULL;

  dispatch_start (f, "[runtime]\ndelivery = awaited\nthreads = 2\n"
                     "[handler fast]\nplugin = recorder_sync\nreport = %s\n"
                     "[handler slow]\nplugin = recorder_sync\ndelay_us = 200\nreport = %s\n",
                     fast_report, slow_report);
  f->llm = start_chat (f->manager);
  for (guint i = 1; i <= 200; i++)
    {
      emit_tokens (f->llm, i, 1);
      assert_int_equal (stats_of (f->runtime, "fast").delivered, 1 + i);
      assert_int_equal (stats_of (f->runtime, "slow").delivered, 1 + i);
    }
  end_llm (f->llm);
  dispatch_stop (f);

  fast = test_read_json (fast_report);
  slow = test_read_json (slow_report);
  assert_int_equal (report_count (fast, "llm_new_token"), 200);
  assert_int_equal (report_count (slow, "llm_new_token"), 200);
  assert_int_equal (report_int (fast, "order_violations"), 0);
  assert_int_equal (report_int (slow, "order_violations"), 0);
  assert_int_equal (report_int (fast, "threads"), 1);
  assert_true (report_int (slow, "threads") >= 2);
}

/* Awaited: an event left pending by chime_run_emit_nowait() reaches the
 * handlers before the next one its thread emits, though nobody waited
 * for it (a waiting emitter handles only what comes before its event
 * first). */
static void
test_awaited_after_nowait_keeps_order (void **state)
{
  DispatchFixture *f = *state;
  g_autoptr (GError) error = NULL;
  g_autofree char *log = test_path ("awaited-nowait.log");
  g_auto (GStrv) lines = NULL;
  ChimeEmitStatus status;
  guint64 ticket;

  dispatch_start (f, "[runtime]\ndelivery = awaited\n"
                     "[handler s]\nplugin = recorder_sync\nlog = %s\n", log);
  f->llm = start_chat (f->manager);
  status = chime_run_emit_nowait (f->llm, chime_run_prepare_llm_new_token (f->llm, "1", NULL),
                                  &ticket, &error);
  assert_true (status == CHIME_EMIT_PENDING || status == CHIME_EMIT_DONE);
  emit_tokens (f->llm, 2, 1);
  assert_int_equal (stats_of (f->runtime, "s").delivered, 3);
  end_llm (f->llm);
  dispatch_stop (f);

  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 4);
  assert_string_equal (lines[1], "s llm_new_token 1");
  assert_string_equal (lines[2], "s llm_new_token 2");
}

/* Awaited, an isolated handler: its host gets each event when the
 * emitter's call returns, not with a later one (its tokens are gathered
 * for the host until its queue is caught up). */
static void
test_awaited_isolated_handler_gets_each_event (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *log = test_path ("awaited-isolated.log");
  g_autofree char *host = g_build_filename (g_getenv ("CHIME_TEST_BUILDDIR"), "chime-plugin-host", NULL);

  g_setenv ("CHIME_PLUGIN_HOST", host, TRUE);
  dispatch_start (f, "[runtime]\ndelivery = awaited\n"
                     "[handler iso]\nplugin = recorder_sync\nisolation = process\nlog = %s\n",
                     log);
  f->llm = start_chat (f->manager);
  for (guint i = 1; i <= 3; i++)
    {
      g_autofree char *line = g_strdup_printf ("iso llm_new_token %u", i);
      gint64 deadline = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
      gboolean seen = FALSE;

      emit_tokens (f->llm, i, 1);
      while (!seen && g_get_monotonic_time () < deadline)
        {
          g_auto (GStrv) lines = test_read_lines (log);

          seen = lines != NULL && test_find_line (lines, line, 0) >= 0;
          if (!seen)
            g_usleep (2000);
        }
      if (!seen)
        fail_msg ("the host had not handled token %u 10 s after its emit returned", i);
    }
  end_llm (f->llm);
  dispatch_stop (f);
  g_unsetenv ("CHIME_PLUGIN_HOST");
}

/* Background: nothing waits, yet flush delivers everything, in order. */
static void
test_background_flush_loses_nothing (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *report_sync = test_path ("bg-sync.json");
  g_autofree char *report_async = test_path ("bg-async.json");
  g_autoptr (json_t) sync_report = NULL;
  g_autoptr (json_t) async_report = NULL;

  dispatch_start (f, "[runtime]\ndelivery = background\nqueue_limit = 64\n"
                     "[handler s]\nplugin = recorder_sync\ndelay_us = 20\nreport = %s\n"
                     "[handler a]\nplugin = recorder_async\nreport = %s\n"
                     "[handler c]\nplugin = counter\n",
                     report_sync, report_async);
  f->llm = start_chat (f->manager);
  emit_tokens (f->llm, 1, 5000);
  end_llm (f->llm);
  chime_runtime_flush (f->runtime);
  assert_int_equal (stats_of (f->runtime, "s").delivered, 5002);
  assert_int_equal (stats_of (f->runtime, "a").delivered, 5002);
  assert_int_equal (stats_of (f->runtime, "c").delivered, 5000);
  assert_int_equal (stats_of (f->runtime, "s").dropped, 0);
  dispatch_stop (f);

  sync_report = test_read_json (report_sync);
  async_report = test_read_json (report_async);
  assert_int_equal (report_count (sync_report, "llm_new_token"), 5000);
  assert_int_equal (report_count (async_report, "llm_new_token"), 5000);
  assert_int_equal (report_int (sync_report, "order_violations"), 0);
  assert_int_equal (report_int (async_report, "order_violations"), 0);
}

/* Four handlers taking turns on one pool thread (each gives it up after
 * a quantum of events), the ring a quarter of a turn: drains store their
 * progress a batch at a time and the emitter waits for a batch of room,
 * yet the llm_end fence returns with every token handled by every
 * handler, in order, none handled twice at once. */
static void
test_handlers_sharing_a_thread_reach_every_fence (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *reports[4] = { NULL };
  g_autoptr (GString) ini = g_string_new ("[runtime]\nthreads = 1\ndelivery = fenced\nqueue_limit = 256\n");

  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("turns-%u.json", i);

      reports[i] = test_path (name);
      g_string_append_printf (ini, "[handler h%u]\nplugin = recorder_sync\nreport = %s\n", i, reports[i]);
    }
  dispatch_start (f, "%s", ini->str);
  f->llm = start_chat (f->manager);
  emit_tokens (f->llm, 1, 5000);
  end_llm (f->llm);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("h%u", i);

      assert_int_equal (stats_of (f->runtime, name).delivered, 5002);
    }
  dispatch_stop (f);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (json_t) report = test_read_json (reports[i]);

      assert_int_equal (report_count (report, "llm_new_token"), 5000);
      assert_int_equal (report_int (report, "order_violations"), 0);
      assert_int_equal (report_int (report, "overlaps"), 0);
    }
}

/* ------------------------------------------------------------------
 * The async route's batched announcement. An async handler's progress
 * is stored at each event and announced every 64 events (NOTIFY_EVERY in
 * core/dispatch/async-route.c) and when its run stops. A sync handler
 * parked at a fence the async handler does not receive (it ignores
 * chains, so it passes the fence without announcing it) can only be woken
 * by such an announcement. Here the async handler, still in its first
 * run, holds the main loop at token 100 until the sync handler has
 * handled token 1, after the fence: only the announcement at 64 events
 * releases it. Were it lost, the async handler would give up after 10 s
 * and fail token 100; the emitter (emit_nowait) never waits, so no
 * waiter's own timer can wake the sync handler instead.
 * ---------------------------------------------------------------- */

#define BATCH_TOKENS 200

/* Emits @event without waiting: a fence is PENDING, a token DONE. */
static void
emit_nowait (ChimeRun   *run,
             ChimeEvent *event)
{
  g_autoptr (GError) error = NULL;
  guint64 ticket;
  ChimeEmitStatus status = chime_run_emit_nowait (run, event, &ticket, &error);

  assert_null (error);
  assert_true (status == CHIME_EMIT_PENDING || status == CHIME_EMIT_DONE);
}

/* The index of the line @line (all of it) in @lines from @from, or -1. */
static int
line_index (char * const *lines,
            const char   *line,
            int           from)
{
  for (int i = MAX (from, 0); lines[i] != NULL; i++)
    if (strcmp (lines[i], line) == 0)
      return i;
  return -1;
}

/* Whether @lines has "HANDLER llm_new_token 1" to "... @count", each
 * after the one before. */
static gboolean
tokens_in_order (char * const *lines,
                 const char   *handler,
                 guint         count)
{
  int at = -1;

  for (guint i = 1; i <= count; i++)
    {
      g_autofree char *line = g_strdup_printf ("%s llm_new_token %u", handler, i);

      if ((at = line_index (lines, line, at + 1)) < 0)
        return FALSE;
    }
  return TRUE;
}

static void
test_async_progress_is_announced_in_batches (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *log = test_path ("async-batch.log");
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  g_autoptr (json_t) result = json_pack ("{s:[]}", "generations");
  g_autoptr (json_t) outputs = json_pack ("{s:s}", "output", "done");
  ChimeEvent *event = NULL;
  gint64 deadline;
  g_auto (GStrv) lines = NULL;
  ChimeHandlerStats sync_stats, async_stats;

  dispatch_start (f, "[runtime]\ndelivery = fenced\nqueue_limit = 1024\n"
                     "[handler s]\nplugin = recorder_sync\nlog = %s\n"
                     "[handler a]\nplugin = recorder_async\nignore = chain\nlog = %s\n"
                     "wait_at_token = 100\nwait_for_line = s llm_new_token 1\n", log, log);
  /* Position 0, a fence for both; 1, a fence for s alone; then the
   * tokens, which a handles in its first run (nobody iterates the main
   * loop before the flush below). */
  f->llm = chime_callback_manager_prepare_chat_model_start (f->manager, NULL, messages, "FakeChat",
                                                            NULL, &event);
  emit_nowait (f->llm, event);
  f->chain = chime_callback_manager_prepare_chain_start (f->manager, NULL, inputs, "Chain", NULL,
                                                         &event);
  emit_nowait (f->chain, event);
  for (guint i = 1; i <= BATCH_TOKENS; i++)
    {
      char token[16];

      g_snprintf (token, sizeof token, "%u", i);
      emit_nowait (f->llm, chime_run_prepare_llm_new_token (f->llm, token, NULL));
    }
  emit_nowait (f->llm, chime_run_prepare_llm_end (f->llm, result));
  emit_nowait (f->chain, chime_run_prepare_chain_end (f->chain, outputs));
  /* s handles chat_model_start and parks at chain_start, where a, whose
   * main loop has not run yet, is behind. (Were s slower than the sleep
   * and a already past, the test would pass without testing anything.) */
  deadline = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  while (stats_of (f->runtime, "s").delivered < 1 && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  assert_int_equal (stats_of (f->runtime, "s").delivered, 1);
  g_usleep (5000);
  chime_runtime_flush (f->runtime);

  sync_stats = stats_of (f->runtime, "s");
  async_stats = stats_of (f->runtime, "a");
  assert_int_equal (async_stats.failed, 0);
  assert_int_equal (async_stats.delivered, BATCH_TOKENS + 2);
  assert_int_equal (sync_stats.failed, 0);
  assert_int_equal (sync_stats.delivered, BATCH_TOKENS + 4);
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 2 * BATCH_TOKENS + 6);
  assert_true (tokens_in_order (lines, "a", BATCH_TOKENS));
  assert_true (tokens_in_order (lines, "s", BATCH_TOKENS));
  /* What the wait at token 100 saw. */
  assert_true (line_index (lines, "s llm_new_token 1", 0) >= 0);
  assert_true (line_index (lines, "s llm_new_token 1", 0) < line_index (lines, "a llm_new_token 100", 0));
}

/* Freeing the runtime without a flush still delivers everything. */
static void
test_free_drains (void **state)
{
  DispatchFixture *f = *state;
  g_autofree char *report = test_path ("drain.json");
  g_autoptr (json_t) json = NULL;

  dispatch_start (f, "[runtime]\ndelivery = background\n"
                     "[handler s]\nplugin = recorder_async\ndelay_us = 1000\nreport = %s\n",
                     report);
  f->llm = start_chat (f->manager);
  emit_tokens (f->llm, 1, 50);
  dispatch_stop (f);
  json = test_read_json (report);
  assert_int_equal (report_count (json, "llm_new_token"), 50);
}

/* ------------------------------------------------------------------ */

/* Every test in a fresh fixture. */
#define CASE(test) cmocka_unit_test_setup_teardown (test, dispatch_setup, dispatch_teardown)

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CASE (test_order_background),
    CASE (test_order_fenced),
    CASE (test_order_awaited),
    CASE (test_second_emitter_joins_a_stream),
    CASE (test_fenced_end_waits_for_everything_before),
    CASE (test_awaited_waits_on_every_event),
    CASE (test_awaited_handlers_run_on_the_emitter),
    CASE (test_awaited_after_nowait_keeps_order),
    CASE (test_awaited_isolated_handler_gets_each_event),
    CASE (test_background_flush_loses_nothing),
    CASE (test_handlers_sharing_a_thread_reach_every_fence),
    CASE (test_async_progress_is_announced_in_batches),
    CASE (test_free_drains),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
