/* Delivery: order, never-concurrent, delivery modes, fences, flush,
 * raise_error, timeouts, ignore flags, the chat-model fallback, child runs
 * and drop policies, with real plugins loaded from tests/plugins. */
#include "test-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------ */

static ChimeRun *
start_chain (ChimeCallbackManager *manager,
             const char           *name)
{
  g_autoptr (GError) error = NULL;
  json_t *inputs = json_pack ("{s:s}", "input", "hi");
  ChimeRun *run = chime_callback_manager_on_chain_start (manager, NULL, inputs, name, NULL, &error);

  json_decref (inputs);
  assert_null (error);
  assert_non_null (run);
  return run;
}

static ChimeRun *
start_chat (ChimeCallbackManager *manager)
{
  g_autoptr (GError) error = NULL;
  json_t *messages = test_messages ("system", "be brief", "human", "hi", NULL);
  ChimeRun *run = chime_callback_manager_on_chat_model_start (manager, NULL, messages,
                                                              "FakeChat", NULL, &error);

  json_decref (messages);
  assert_null (error);
  assert_non_null (run);
  return run;
}

static void
emit_tokens (ChimeRun *llm,
             guint     first,
             guint     count)
{
  for (guint i = first; i < first + count; i++)
    {
      char token[32];
      g_autoptr (GError) error = NULL;

      g_snprintf (token, sizeof token, "%u", i);
      assert_true (chime_run_on_llm_new_token (llm, token, NULL, &error));
    }
}

static void
end_llm (ChimeRun *llm)
{
  g_autoptr (GError) error = NULL;
  json_t *result = json_pack ("{s:[]}", "generations");

  assert_true (chime_run_on_llm_end (llm, result, &error));
  json_decref (result);
}

static void
end_chain (ChimeRun *chain)
{
  g_autoptr (GError) error = NULL;
  json_t *outputs = json_pack ("{s:s}", "output", "done");

  assert_true (chime_run_on_chain_end (chain, outputs, &error));
  json_decref (outputs);
}

static json_int_t
report_int (json_t     *report,
            const char *key)
{
  return json_integer_value (json_object_get (report, key));
}

static json_int_t
report_count (json_t     *report,
              const char *type)
{
  return json_integer_value (json_object_get (json_object_get (report, "by_type"), type));
}

static ChimeHandlerStats
stats_of (ChimeRuntime *runtime,
          const char   *name)
{
  ChimeHandlerStats stats;

  assert_true (chime_runtime_get_handler_stats (runtime, name, &stats, sizeof stats));
  return stats;
}

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
run_order_test (const char *delivery)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *reports[4] = { NULL };
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  GThread *threads[EMITTERS];
  EmitterArgs args;

  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("order-%s-%u.json", delivery, i);
      reports[i] = test_path (name);
    }
  runtime = test_runtime_new (&error,
                              "[runtime]\nthreads = 4\ndelivery = %s\nqueue_limit = 1024\n"
                              "[handler a]\nplugin = recorder_sync\nreport = %s\n"
                              "[handler b]\nplugin = recorder_sync\nreport = %s\n"
                              "[handler c]\nplugin = recorder_sync\nreport = %s\n"
                              "[handler d]\nplugin = recorder_async\nreport = %s\n",
                              delivery, reports[0], reports[1], reports[2], reports[3]);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  args.manager = manager;
  for (guint i = 0; i < EMITTERS; i++)
    threads[i] = g_thread_new ("emitter", emitter_thread, &args);
  for (guint i = 0; i < EMITTERS; i++)
    g_thread_join (threads[i]);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

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
  run_order_test ("background");
}

static void
test_order_fenced (void **state)
{
  run_order_test ("fenced");
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
  g_autoptr (GError) error = NULL;
  g_autofree char *log = test_path ("fenced.log");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;
  ChimeHandlerStats slow, fast;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = fenced\n"
                              "[handler slow]\nplugin = recorder_sync\nlog = %s\ndelay_us = 2000\n"
                              "[handler fast]\nplugin = recorder_async\nlog = %s\n",
                              log, log);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  /* The start is a fence: both handled it when the call returned. */
  assert_int_equal (stats_of (runtime, "slow").delivered, 1);
  assert_int_equal (stats_of (runtime, "fast").delivered, 1);
  emit_tokens (llm, 1, 20);
  end_llm (llm);
  slow = stats_of (runtime, "slow");
  fast = stats_of (runtime, "fast");
  assert_int_equal (slow.delivered, 22);
  assert_int_equal (fast.delivered, 22);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

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
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = awaited\n"
                              "[handler s]\nplugin = recorder_sync\ndelay_us = 500\n"
                              "[handler a]\nplugin = recorder_async\ndelay_us = 1000\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  for (guint i = 1; i <= 10; i++)
    {
      emit_tokens (llm, i, 1);
      assert_int_equal (stats_of (runtime, "s").delivered, 1 + i);
      assert_int_equal (stats_of (runtime, "a").delivered, 1 + i);
    }
  end_llm (llm);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

/* Background: nothing waits, yet flush delivers everything, in order. */
static void
test_background_flush_loses_nothing (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *report_sync = test_path ("bg-sync.json");
  g_autofree char *report_async = test_path ("bg-async.json");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (json_t) sync_report = NULL;
  g_autoptr (json_t) async_report = NULL;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = background\nqueue_limit = 64\n"
                              "[handler s]\nplugin = recorder_sync\ndelay_us = 20\nreport = %s\n"
                              "[handler a]\nplugin = recorder_async\nreport = %s\n"
                              "[handler c]\nplugin = counter\n",
                              report_sync, report_async);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  emit_tokens (llm, 1, 5000);
  end_llm (llm);
  chime_runtime_flush (runtime);
  assert_int_equal (stats_of (runtime, "s").delivered, 5002);
  assert_int_equal (stats_of (runtime, "a").delivered, 5002);
  assert_int_equal (stats_of (runtime, "c").delivered, 5000);
  assert_int_equal (stats_of (runtime, "s").dropped, 0);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  sync_report = test_read_json (report_sync);
  async_report = test_read_json (report_async);
  assert_int_equal (report_count (sync_report, "llm_new_token"), 5000);
  assert_int_equal (report_count (async_report, "llm_new_token"), 5000);
  assert_int_equal (report_int (sync_report, "order_violations"), 0);
  assert_int_equal (report_int (async_report, "order_violations"), 0);
}

/* Freeing the runtime without a flush still delivers everything. */
static void
test_free_drains (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *report = test_path ("drain.json");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (json_t) json = NULL;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = background\n"
                              "[handler s]\nplugin = recorder_async\ndelay_us = 1000\nreport = %s\n",
                              report);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  emit_tokens (llm, 1, 50);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  json = test_read_json (report);
  assert_int_equal (report_count (json, "llm_new_token"), 50);
}

/* ------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------- */

static void
test_handler_error_is_logged_not_raised (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[handler picky]\nplugin = recorder_sync\nfail_on = llm_new_token\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  emit_tokens (llm, 1, 3);
  end_llm (llm);
  assert_int_equal (stats_of (runtime, "picky").failed, 3);
  assert_true (test_log_contains ("handler 'picky' (recorder_sync) failed on llm_new_token: "
                                  "recorder picky refuses llm_new_token"));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  test_log_capture_stop ();
}

static void
test_raise_error_fails_the_run (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  json_t *result = json_pack ("{s:[]}", "generations");
  g_autofree char *log = test_path ("raise.log");
  g_auto (GStrv) lines = NULL;

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = fenced\n"
                              "[handler strict]\nplugin = recorder_sync\nfail_on = llm_new_token\n"
                              "raise_error = true\n"
                              "[handler other]\nplugin = recorder_sync\nlog = %s\n", log);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  chain = start_chain (manager, "Chain");
  child = chime_run_get_child (chain, NULL);
  llm = start_chat (child);
  /* Tokens do not wait, so this call may or may not see the failure yet;
   * it surfaces at the next fence at the latest. */
  (void) chime_run_on_llm_new_token (llm, "1", NULL, NULL);
  chime_runtime_flush (runtime);
  /* Once the failure is known, the run's next events are refused without
   * being emitted. */
  assert_false (chime_run_on_llm_end (llm, result, &error));
  assert_non_null (error);
  assert_string_contains (error->message, "recorder strict refuses llm_new_token");
  /* The whole run tree is failed: the parent chain cannot end normally... */
  g_clear_error (&error);
  assert_false (chime_run_on_chain_end (chain, result, &error));
  g_clear_error (&error);
  /* ...but error events are always delivered. */
  assert_true (chime_run_on_llm_error (llm, NULL, NULL, &error));
  assert_true (chime_run_on_chain_error (chain, NULL, &error));
  chime_runtime_flush (runtime);
  /* chain_start, chat_model_start, the token, llm_error, chain_error. */
  lines = test_read_lines (log);
  if (g_strv_length (lines) != 5)
    fail_msg ("other saw:\n%s", g_strjoinv ("\n", lines));
  assert_int_equal (stats_of (runtime, "other").delivered, 5);
  json_decref (result);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&child, chime_callback_manager_unref);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  test_log_capture_stop ();
}

/* A run_inline raise_error handler fails the very call that emitted. */
static void
test_raise_error_inline_is_immediate (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = background\n"
                              "[handler strict]\nplugin = recorder_sync\nfail_on = llm_new_token\n"
                              "raise_error = true\nrun_inline = true\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  assert_false (chime_run_on_llm_new_token (llm, "1", NULL, &error));
  assert_string_contains (error->message, "recorder strict refuses llm_new_token");
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  test_log_capture_stop ();
}

static void
test_async_timeout (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *report = test_path ("timeout.json");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (json_t) json = NULL;
  ChimeHandlerStats stats;

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = fenced\n"
                              "[handler sleepyhead]\nplugin = recorder_async\nhang_on = chat_model_start\n"
                              "timeout_ms = 100\nreport = %s\n", report);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  /* Returns once the timeout cut the hung call off. */
  llm = start_chat (manager);
  emit_tokens (llm, 1, 5);
  end_llm (llm);
  stats = stats_of (runtime, "sleepyhead");
  assert_int_equal (stats.timed_out, 1);
  assert_int_equal (stats.failed, 1);
  assert_true (test_log_contains ("handler 'sleepyhead' (recorder_async) failed on chat_model_start: "
                                  "did not complete within its timeout of 100 ms"));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  json = test_read_json (report);
  /* Everything after the hung call still arrived. */
  assert_int_equal (report_count (json, "llm_new_token"), 5);
  assert_int_equal (report_count (json, "llm_end"), 1);
  test_log_capture_stop ();
}

/* ------------------------------------------------------------------
 * Routing: ignore flags, the chat fallback, inheritance
 * ---------------------------------------------------------------- */

static void
emit_one_of_each (ChimeCallbackManager *manager)
{
  g_autoptr (ChimeRun) chain = start_chain (manager, "Chain");
  g_autoptr (ChimeCallbackManager) child = chime_run_get_child (chain, NULL);
  g_autoptr (ChimeRun) llm = start_chat (child);
  g_autoptr (ChimeRun) tool = NULL;
  g_autoptr (ChimeRun) retriever = NULL;
  json_t *data = json_pack ("{s:i}", "n", 1);

  emit_tokens (llm, 1, 2);
  end_llm (llm);
  tool = chime_callback_manager_on_tool_start (child, NULL, "2+2", NULL, "calculator", NULL);
  assert_true (chime_run_on_tool_end (tool, data, NULL));
  retriever = chime_callback_manager_on_retriever_start (child, NULL, "atoms", "docs", NULL);
  assert_true (chime_run_on_retriever_end (retriever, data, NULL));
  assert_true (chime_run_on_agent_action (chain, data, NULL));
  assert_true (chime_run_on_text (chain, "some text", NULL));
  assert_true (chime_run_on_retry (llm, data, NULL));
  assert_true (chime_run_on_custom_event (chain, "progress", data, NULL));
  end_chain (chain);
  json_decref (data);
}

static void
test_ignore_flags (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *all = test_path ("ignore-none.json");
  g_autofree char *no_llm = test_path ("ignore-llm.json");
  g_autofree char *no_chat = test_path ("ignore-chat.json");
  g_autofree char *no_agent = test_path ("ignore-agent.json");
  g_autofree char *nothing = test_path ("ignore-all.json");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) r_all = NULL, r_llm = NULL, r_chat = NULL, r_agent = NULL, r_nothing = NULL;

  runtime = test_runtime_new (&error,
                              "[handler all]\nplugin = recorder_sync\nreport = %s\n"
                              "[handler no_llm]\nplugin = recorder_sync\nignore = llm\nreport = %s\n"
                              "[handler no_chat]\nplugin = recorder_sync\nignore = chat_model\nreport = %s\n"
                              "[handler no_agent]\nplugin = recorder_sync\nignore = agent\nreport = %s\n"
                              "[handler nothing]\nplugin = recorder_sync\nreport = %s\n"
                              "ignore = llm, chat_model, chain, agent, retriever, retry, custom_event\n",
                              all, no_llm, no_chat, no_agent, nothing);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  emit_one_of_each (manager);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  r_all = test_read_json (all);
  assert_int_equal (report_int (r_all, "events"), 14);
  /* ignore_llm: no tokens, no llm_end, but chat_model_start still arrives
   * (it is gated by ignore_chat_model only). */
  r_llm = test_read_json (no_llm);
  assert_int_equal (report_count (r_llm, "llm_new_token"), 0);
  assert_int_equal (report_count (r_llm, "llm_end"), 0);
  assert_int_equal (report_count (r_llm, "chat_model_start"), 1);
  r_chat = test_read_json (no_chat);
  assert_int_equal (report_count (r_chat, "chat_model_start"), 0);
  assert_int_equal (report_count (r_chat, "llm_new_token"), 2);
  /* ignore_agent covers tools too. */
  r_agent = test_read_json (no_agent);
  assert_int_equal (report_count (r_agent, "tool_start"), 0);
  assert_int_equal (report_count (r_agent, "tool_end"), 0);
  assert_int_equal (report_count (r_agent, "agent_action"), 0);
  assert_int_equal (report_count (r_agent, "retriever_start"), 1);
  /* text is never ignored. */
  r_nothing = test_read_json (nothing);
  assert_int_equal (report_int (r_nothing, "events"), 1);
  assert_int_equal (report_count (r_nothing, "text"), 1);
}

static void
test_chat_model_fallback (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log = test_path ("fallback.log");
  g_autofree char *report = test_path ("fallback.json");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (json_t) json = NULL;

  runtime = test_runtime_new (&error,
                              "[handler legacy]\nplugin = llm_only\nlog = %s\nreport = %s\n"
                              "[handler legacy_ignoring_llm]\nplugin = llm_only\nignore = llm\n",
                              log, report);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  end_llm (llm);
  assert_int_equal (stats_of (runtime, "legacy_ignoring_llm").delivered, 0);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 1);
  /* The messages rendered as LangChain's get_buffer_string. */
  assert_string_equal (lines[0], "legacy chat_model_start System: be brief\\nHuman: hi");
  json = test_read_json (report);
  assert_int_equal (report_int (json, "fallback_prompts"), 1);
}

static void
test_child_run_inheritance (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (ChimeCallbackManager) grandchild = NULL;
  const char *inherited[] = { "team", NULL };
  const char *local[] = { "root-only", NULL };
  json_t *shared = json_pack ("{s:s}", "user", "ada");
  json_t *private_md = json_pack ("{s:s}", "secret", "x");
  const char * const *tags;

  runtime = test_runtime_new (&error,
                              "[handler everywhere]\nplugin = recorder_sync\n"
                              "[handler root_only]\nplugin = recorder_sync\ninheritable = false\n");
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  chime_callback_manager_add_tags (manager, inherited, TRUE);
  chime_callback_manager_add_tags (manager, local, FALSE);
  chime_callback_manager_add_metadata (manager, shared, TRUE);
  chime_callback_manager_add_metadata (manager, private_md, FALSE);
  chain = start_chain (manager, "Root");
  tags = chime_run_info_get_tags (chime_run_get_info (chain));
  assert_string_equal (tags[0], "team");
  assert_string_equal (tags[1], "root-only");
  assert_null (chime_run_info_get_parent_id (chime_run_get_info (chain)));

  child = chime_run_get_child (chain, "seq:step:2");
  assert_int_equal (chime_callback_manager_get_n_handlers (child), 1);
  llm = start_chat (child);
  tags = chime_run_info_get_tags (chime_run_get_info (llm));
  assert_int_equal (g_strv_length ((char **) tags), 2);
  assert_string_equal (tags[0], "team");
  assert_string_equal (tags[1], "seq:step:2");
  assert_true (chime_run_id_equal (chime_run_info_get_parent_id (chime_run_get_info (llm)),
                                   chime_run_info_get_id (chime_run_get_info (chain))));
  assert_ptr_equal (chime_run_info_get_parent (chime_run_get_info (llm)), chime_run_get_info (chain));
  assert_string_equal (json_string_value (json_object_get (
                         chime_run_info_get_metadata (chime_run_get_info (llm)), "user")), "ada");
  assert_null (json_object_get (chime_run_info_get_metadata (chime_run_get_info (llm)), "secret"));
  /* The local tag of the child does not reach the grandchild. */
  grandchild = chime_run_get_child (llm, NULL);
  assert_int_equal (g_strv_length ((char **) chime_run_info_get_tags (
                      chime_run_get_info (chain))), 2);
  end_llm (llm);
  end_chain (chain);
  chime_runtime_flush (runtime);
  assert_int_equal (stats_of (runtime, "everywhere").delivered, 4);
  assert_int_equal (stats_of (runtime, "root_only").delivered, 2);
  json_decref (shared);
  json_decref (private_md);
  g_clear_pointer (&grandchild, chime_callback_manager_unref);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&child, chime_callback_manager_unref);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

static void
test_run_inline_runs_on_the_emitting_thread (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log = test_path ("inline.log");
  g_autofree char *report = test_path ("inline.json");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (json_t) json = NULL;
  g_auto (GStrv) lines = NULL;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = background\n"
                              "[handler queued]\nplugin = recorder_sync\nlog = %s\n"
                              "[handler inline]\nplugin = recorder_sync\nrun_inline = true\n"
                              "log = %s\nreport = %s\n", log, log, report);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  /* Before the queued handler can have seen it, the inline one did. */
  assert_int_equal (stats_of (runtime, "inline").delivered, 1);
  emit_tokens (llm, 1, 100);
  assert_int_equal (stats_of (runtime, "inline").delivered, 101);
  end_llm (llm);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  json = test_read_json (report);
  assert_int_equal (report_int (json, "threads"), 1);
  lines = test_read_lines (log);
  /* Every event reached the inline handler first. */
  assert_true (test_find_line (lines, "inline llm_new_token 7", 0) <
               test_find_line (lines, "queued llm_new_token 7", 0));
}

/* ------------------------------------------------------------------
 * Bounded queues
 * ---------------------------------------------------------------- */

/* The tokens a recorder logged, in order. */
static GArray *
logged_tokens (const char *log,
               const char *handler)
{
  g_auto (GStrv) lines = test_read_lines (log);
  g_autofree char *prefix = g_strdup_printf ("%s llm_new_token ", handler);
  GArray *tokens = g_array_new (FALSE, FALSE, sizeof (guint));

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      {
        guint token = (guint) g_ascii_strtoull (lines[i] + strlen (prefix), NULL, 10);

        g_array_append_val (tokens, token);
      }
  return tokens;
}

/* What each policy keeps of a burst of 300 tokens (1..300) that a slow
 * handler cannot follow: drop_newest its queue's worth of the first ones
 * (16, of which chat_model_start may take one), drop_oldest the last ones;
 * either way in order. */
static void
check_kept_tokens (const char *policy,
                   GArray     *tokens)
{
  g_autoptr (GString) seen = g_string_new (NULL);

  for (guint i = 0; i < tokens->len; i++)
    g_string_append_printf (seen, " %u", g_array_index (tokens, guint, i));
  if (tokens->len < 15)
    fail_msg ("%s kept only%s", policy, seen->str);
  for (guint i = 1; i < tokens->len; i++)
    if (g_array_index (tokens, guint, i) <= g_array_index (tokens, guint, i - 1))
      fail_msg ("%s: token %u came after %u", policy, g_array_index (tokens, guint, i),
                g_array_index (tokens, guint, i - 1));
  if (g_str_equal (policy, "drop_newest"))
    for (guint i = 0; i < 15; i++)
      if (g_array_index (tokens, guint, i) != i + 1)
        fail_msg ("drop_newest lost token %u of the first 15:%s", i + 1, seen->str);
  if (g_str_equal (policy, "drop_oldest"))
    assert_int_equal (g_array_index (tokens, guint, tokens->len - 1), 300);
}

static void
run_on_full_test (const char *policy,
                  gboolean    expect_drops)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autofree char *log_name = g_strdup_printf ("on-full-%s.log", policy);
  g_autofree char *log = test_path (log_name);
  g_autoptr (GArray) tokens = NULL;
  ChimeHandlerStats slow, fast;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = background\nqueue_limit = 16\non_full = %s\n"
                              "[handler slow]\nplugin = recorder_sync\ndelay_us = 1000\nlog = %s\n"
                              "[handler fast]\nplugin = recorder_async\nlog = %s\n", policy, log, log);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  emit_tokens (llm, 1, 300);
  end_llm (llm);
  chime_runtime_flush (runtime);
  slow = stats_of (runtime, "slow");
  fast = stats_of (runtime, "fast");
  /* Every event is either delivered or counted as dropped. */
  assert_int_equal (slow.delivered + slow.dropped, 302);
  assert_int_equal (fast.delivered + fast.dropped, 302);
  tokens = logged_tokens (log, "slow");
  check_kept_tokens (policy, tokens);
  g_clear_pointer (&tokens, g_array_unref);
  /* The async handler, too: the main loop does not run while the burst
   * is emitted from it. */
  tokens = logged_tokens (log, "fast");
  check_kept_tokens (policy, tokens);
  if (expect_drops)
    assert_true (slow.dropped > 0);
  else
    {
      assert_int_equal (slow.dropped, 0);
      assert_int_equal (fast.dropped, 0);
    }
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

static void
test_on_full_block (void **state)
{
  run_on_full_test ("block", FALSE);
}

static void
test_on_full_drop_newest (void **state)
{
  run_on_full_test ("drop_newest", TRUE);
}

static void
test_on_full_drop_oldest (void **state)
{
  run_on_full_test ("drop_oldest", TRUE);
}

/* A runtime without handlers accepts events and drops them at once. */
static void
test_runtime_without_handlers (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[runtime]\n");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (ChimeRun) llm = start_chat (manager);

  assert_null (error);
  assert_int_equal (chime_runtime_get_n_handlers (runtime), 0);
  emit_tokens (llm, 1, 3);
  end_llm (llm);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_order_background),
    cmocka_unit_test (test_order_fenced),
    cmocka_unit_test (test_fenced_end_waits_for_everything_before),
    cmocka_unit_test (test_awaited_waits_on_every_event),
    cmocka_unit_test (test_background_flush_loses_nothing),
    cmocka_unit_test (test_free_drains),
    cmocka_unit_test (test_handler_error_is_logged_not_raised),
    cmocka_unit_test (test_raise_error_fails_the_run),
    cmocka_unit_test (test_raise_error_inline_is_immediate),
    cmocka_unit_test (test_async_timeout),
    cmocka_unit_test (test_ignore_flags),
    cmocka_unit_test (test_chat_model_fallback),
    cmocka_unit_test (test_child_run_inheritance),
    cmocka_unit_test (test_run_inline_runs_on_the_emitting_thread),
    cmocka_unit_test (test_on_full_block),
    cmocka_unit_test (test_on_full_drop_newest),
    cmocka_unit_test (test_on_full_drop_oldest),
    cmocka_unit_test (test_runtime_without_handlers),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
