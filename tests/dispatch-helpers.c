/* Helpers shared by the dispatch tests: see dispatch-helpers.h. */
#include "dispatch-helpers.h"

ChimeRun *
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

ChimeRun *
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

void
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

void
end_llm (ChimeRun *llm)
{
  g_autoptr (GError) error = NULL;
  json_t *result = json_pack ("{s:[]}", "generations");

  assert_true (chime_run_on_llm_end (llm, result, &error));
  json_decref (result);
}

void
end_chain (ChimeRun *chain)
{
  g_autoptr (GError) error = NULL;
  json_t *outputs = json_pack ("{s:s}", "output", "done");

  assert_true (chime_run_on_chain_end (chain, outputs, &error));
  json_decref (outputs);
}

json_int_t
report_int (json_t     *report,
            const char *key)
{
  return json_integer_value (json_object_get (report, key));
}

json_int_t
report_count (json_t     *report,
              const char *type)
{
  return json_integer_value (json_object_get (json_object_get (report, "by_type"), type));
}

ChimeHandlerStats
stats_of (ChimeRuntime *runtime,
          const char   *name)
{
  ChimeHandlerStats stats;

  assert_true (chime_runtime_get_handler_stats (runtime, name, &stats, sizeof stats));
  return stats;
}

int
dispatch_setup (void **state)
{
  *state = g_new0 (DispatchFixture, 1);
  return 0;
}

int
dispatch_setup_capturing_log (void **state)
{
  DispatchFixture *fixture;

  dispatch_setup (state);
  fixture = *state;
  fixture->capturing_log = TRUE;
  test_log_capture_start ();
  return 0;
}

int
dispatch_teardown (void **state)
{
  DispatchFixture *fixture = *state;

  dispatch_stop (fixture);
  /* After the runtime is freed: its shutdown may still log. */
  if (fixture->capturing_log)
    test_log_capture_stop ();
  g_free (fixture);
  return 0;
}

void
dispatch_start (DispatchFixture *fixture,
                const char      *format,
                ...)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ini = NULL;
  va_list args;

  va_start (args, format);
  ini = g_strdup_vprintf (format, args);
  va_end (args);
  fixture->runtime = test_runtime_new (&error, "%s", ini);
  if (fixture->runtime == NULL)
    fail_msg ("the runtime was refused: %s\n%s", error != NULL ? error->message : "(no error)", ini);
  assert_null (error);
  fixture->manager = chime_runtime_new_callback_manager (fixture->runtime);
}

void
dispatch_stop (DispatchFixture *fixture)
{
  g_clear_pointer (&fixture->llm, chime_run_unref);
  g_clear_pointer (&fixture->child, chime_callback_manager_unref);
  g_clear_pointer (&fixture->chain, chime_run_unref);
  g_clear_pointer (&fixture->manager, chime_callback_manager_unref);
  g_clear_pointer (&fixture->runtime, chime_runtime_unref);
}
