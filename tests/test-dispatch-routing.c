/* Which handler gets which event: the ignore flags, the fallback of chat
 * model starts to on_llm_start for handlers without one, what child runs
 * inherit (handlers, tags, metadata), handlers that run inline on the
 * emitting thread, and a runtime without handlers. */
#include "dispatch-helpers.h"

#include <string.h>

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

/* A handler whose on_chat_model_start declines (NOT_IMPLEMENTED, asking
 * for the on_llm_start fallback) while it ignores llm events: LangChain
 * hands the fallback to handle_event with ignore_llm, which skips it
 * (reference 3.1). Nothing failed, so nothing is counted, logged or
 * raised, even with raise_error; without ignore = llm, it falls back. */
static void
check_declined_chat_start (const char *plugin)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log_name = g_strdup_printf ("%s.log", plugin);
  g_autofree char *log = test_path (log_name);
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = fenced\n"
                              "[handler probe]\nplugin = %s\nignore = llm\n"
                              "raise_error = true\nlog = %s\n"
                              "[handler legacy]\nplugin = %s\nlog = %s\n",
                              plugin, log, plugin, log);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  chime_runtime_flush (runtime);
  /* The run goes on: raise_error had nothing to raise. */
  assert_true (chime_run_on_llm_new_token (llm, "1", NULL, &error));
  end_llm (llm);
  chime_runtime_flush (runtime);
  assert_int_equal (stats_of (runtime, "probe").failed, 0);
  assert_null (chime_runtime_get_handler_failure (runtime, "probe"));
  assert_false (test_log_contains ("handler 'probe'"));
  assert_int_equal (stats_of (runtime, "legacy").failed, 0);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  test_log_capture_stop ();

  /* Only legacy's fallback call reached on_llm_start. */
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 1);
  assert_string_equal (lines[0], "legacy chat_model_start System: be brief\\nHuman: hi");
}

static void
test_declined_chat_start_with_ignore_llm_is_no_failure (void **state)
{
  check_declined_chat_start ("chat_declines");
}

/* The same through the async route, which settles the declined call on
 * the main loop. */
static void
test_declined_chat_start_with_ignore_llm_is_no_failure_async (void **state)
{
  check_declined_chat_start ("chat_declines_async");
}

/* A handler whose on_chat_model_start declines while its plugin has no
 * on_llm_start at all: LangChain's fallback then calls
 * BaseCallbackHandler.on_llm_start, a no-op. Nothing failed, so nothing
 * is counted, logged or raised, even with raise_error; the handler goes
 * on with the run's later events. */
static void
check_declined_chat_start_without_llm_start (const char *plugin)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log_name = g_strdup_printf ("%s.log", plugin);
  g_autofree char *log = test_path (log_name);
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;

  test_log_capture_start ();
  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = fenced\n"
                              "[handler alone]\nplugin = %s\nraise_error = true\nlog = %s\n",
                              plugin, log);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  chime_runtime_flush (runtime);
  /* The run goes on: raise_error had nothing to raise. */
  assert_true (chime_run_on_llm_new_token (llm, "1", NULL, &error));
  end_llm (llm);
  chime_runtime_flush (runtime);
  assert_int_equal (stats_of (runtime, "alone").failed, 0);
  assert_int_equal (stats_of (runtime, "alone").delivered, 2);
  assert_null (chime_runtime_get_handler_failure (runtime, "alone"));
  assert_false (test_log_contains ("handler 'alone'"));
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  test_log_capture_stop ();

  /* Only llm_end was recorded: no entry point ran for the fallback. */
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 1);
  assert_true (g_str_has_prefix (lines[0], "alone llm_end "));
}

static void
test_declined_chat_start_without_llm_start_is_no_failure (void **state)
{
  check_declined_chat_start_without_llm_start ("chat_declines_alone");
}

static void
test_declined_chat_start_without_llm_start_is_no_failure_async (void **state)
{
  check_declined_chat_start_without_llm_start ("chat_declines_alone_async");
}

/* How many of @lines start with @prefix. */
static guint
count_lines (char       **lines,
             const char  *prefix)
{
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    n += g_str_has_prefix (lines[i], prefix);
  return n;
}

/* A chunk of a step's output stream (a CHIME_STREAM_EVENT custom event)
 * goes only to the handlers whose plugin declares
 * CHIME_PLUGIN_WANTS_STREAM, queued or run_inline, whichever way it is
 * emitted; `ignore = custom_event` still drops it. Other custom events go
 * to every handler, as before. */
static void
test_stream_chunks_only_to_handlers_wanting_streams (void **state)
{
  g_autoptr (GError) error = NULL;
  const char *names[] = { "tap", "tap_inline", "plain", "plain_async", "tap_ignoring" };
  const json_int_t custom[] = { 4, 4, 1, 1, 0 };
  char *reports[G_N_ELEMENTS (names)];
  g_autofree char *log = test_path ("stream-chunks.log");
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (json_t) chunk = json_pack ("{s:s}", "chunk", "Why");
  g_auto (GStrv) lines = NULL;
  ChimeEmitStatus status;
  guint64 ticket;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *file = g_strdup_printf ("stream-%s.json", names[i]);
      reports[i] = test_path (file);
    }
  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = awaited\n"
                              "[handler tap]\nplugin = recorder_stream\nreport = %s\nlog = %s\n"
                              "[handler tap_inline]\nplugin = recorder_stream\nrun_inline = true\nreport = %s\n"
                              "[handler plain]\nplugin = recorder_sync\nreport = %s\nlog = %s\n"
                              "[handler plain_async]\nplugin = recorder_async\nreport = %s\n"
                              "[handler tap_ignoring]\nplugin = recorder_stream\nignore = custom_event\n"
                              "report = %s\n",
                              reports[0], log, reports[1], reports[2], log, reports[3], reports[4]);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  chain = start_chain (manager, "Chain");
  assert_true (chime_run_on_custom_event (chain, "progress", NULL, &error));
  assert_true (chime_run_on_custom_event (chain, CHIME_STREAM_EVENT, chunk, &error));
  status = chime_run_emit_nowait (chain, chime_run_prepare_custom_event (chain, CHIME_STREAM_EVENT, chunk),
                                  &ticket, &error);
  assert_true (status == CHIME_EMIT_DONE || status == CHIME_EMIT_PENDING);
  chime_runtime_flush (runtime);
  assert_true (chime_callback_manager_on_custom_event (manager, CHIME_STREAM_EVENT, chunk,
                                                       chime_run_info_get_id (chime_run_get_info (chain)),
                                                       &error));
  end_chain (chain);
  g_clear_pointer (&chain, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (json_t) report = test_read_json (reports[i]);

      if (report_count (report, "custom_event") != custom[i])
        fail_msg ("%s got %d custom events, expected %d", names[i],
                  (int) report_count (report, "custom_event"), (int) custom[i]);
      assert_int_equal (report_count (report, "chain_end"), 1);
      g_free (reports[i]);
    }
  /* The chunk as emitted, on the run it belongs to; plain's custom
   * events are the user's only. */
  lines = test_read_lines (log);
  assert_int_equal (g_strv_length (lines), 9);
  assert_int_equal (count_lines (lines, "tap custom_event progress chain null"), 1);
  assert_int_equal (count_lines (lines, "tap custom_event chime.stream chain {\"chunk\":\"Why\"}"), 3);
  assert_int_equal (count_lines (lines, "plain custom_event progress chain null"), 1);
  assert_int_equal (count_lines (lines, "plain custom_event chime.stream"), 0);
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

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_ignore_flags),
    cmocka_unit_test (test_chat_model_fallback),
    cmocka_unit_test (test_declined_chat_start_with_ignore_llm_is_no_failure),
    cmocka_unit_test (test_declined_chat_start_with_ignore_llm_is_no_failure_async),
    cmocka_unit_test (test_declined_chat_start_without_llm_start_is_no_failure),
    cmocka_unit_test (test_declined_chat_start_without_llm_start_is_no_failure_async),
    cmocka_unit_test (test_stream_chunks_only_to_handlers_wanting_streams),
    cmocka_unit_test (test_child_run_inheritance),
    cmocka_unit_test (test_run_inline_runs_on_the_emitting_thread),
    cmocka_unit_test (test_runtime_without_handlers),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
