/* Run managers: the events of one run, and child managers
 * (LangChain's CallbackManagerFor*Run and get_child). */
#include "config.h"

#include "run-private.h"
#include "events/trace.h"
#include "events/uuid.h"

gpointer
chime_copy_string (gconstpointer src,
                   gpointer      user_data)
{
  return g_strdup (src);
}

static char **
tags_to_strv (GPtrArray *tags)
{
  char **strv = g_new0 (char *, tags->len + 1);

  for (guint i = 0; i < tags->len; i++)
    strv[i] = g_strdup (g_ptr_array_index (tags, i));
  return strv;
}

ChimeRun *
chime_run_new_from_manager (ChimeCallbackManager *manager,
                            ChimeRunKind          kind,
                            const char           *run_type,
                            const char           *name)
{
  ChimeRun *run = g_new0 (ChimeRun, 1);
  /* Aligned: every event of the run takes a reference, so its counter
   * must not share a cache line with anything another thread writes. */
  ChimeRunInfo *info = g_aligned_alloc0 (1, sizeof (ChimeRunInfo), 64);

  info->ref_count = 1;
  chime_run_id_generate (&info->id);
  info->has_parent = manager->has_parent;
  info->parent_id = manager->parent_run_id;
  if (manager->parent_info != NULL)
    info->parent = chime_run_info_ref (manager->parent_info);
  info->kind = kind;
  info->run_type = g_strdup (run_type);
  info->name = g_strdup (name);
  info->tags = tags_to_strv (manager->tags);
  info->metadata = json_deep_copy (manager->metadata);
  info->start_time = g_get_monotonic_time ();
  info->trace = info->parent != NULL ? chime_trace_ref (info->parent->trace) : chime_trace_new ();

  run->ref_count = 1;
  run->runtime = manager->runtime;
  run->info = info;
  run->handlers = manager->handlers;
  run->inheritable_handlers = manager->inheritable_handlers;
  run->inheritable_tags = g_ptr_array_copy (manager->inheritable_tags, chime_copy_string, NULL);
  g_ptr_array_set_free_func (run->inheritable_tags, g_free);
  run->inheritable_metadata = json_deep_copy (manager->inheritable_metadata);
  return run;
}

ChimeRun *
chime_run_ref (ChimeRun *run)
{
  g_atomic_int_inc (&run->ref_count);
  return run;
}

void
chime_run_unref (ChimeRun *run)
{
  if (run == NULL || !g_atomic_int_dec_and_test (&run->ref_count))
    return;
  chime_run_info_unref (run->info);
  g_ptr_array_unref (run->inheritable_tags);
  json_decref (run->inheritable_metadata);
  g_free (run);
}

const ChimeRunInfo *
chime_run_get_info (ChimeRun *run)
{
  return run->info;
}

ChimeCallbackManager *
chime_run_get_child (ChimeRun   *run,
                     const char *tag)
{
  ChimeCallbackManager *child = chime_runtime_new_callback_manager (run->runtime);

  /* Only what is inheritable crosses the boundary, and becomes both local
   * and inheritable in the child. */
  child->handlers = run->inheritable_handlers;
  child->inheritable_handlers = run->inheritable_handlers;
  for (guint i = 0; i < run->inheritable_tags->len; i++)
    {
      const char *inherited[] = { g_ptr_array_index (run->inheritable_tags, i), NULL };
      chime_callback_manager_add_tags (child, inherited, TRUE);
    }
  chime_callback_manager_add_metadata (child, run->inheritable_metadata, TRUE);
  child->has_parent = TRUE;
  child->parent_run_id = run->info->id;
  child->parent_info = chime_run_info_ref (run->info);
  if (tag != NULL)
    {
      const char *local[] = { tag, NULL };
      chime_callback_manager_add_tags (child, local, FALSE);
    }
  return child;
}

ChimeEvent *
chime_run_new_event (ChimeRun       *run,
                     ChimeEventType  type,
                     const char     *inline_text)
{
  return chime_event_new (type, run->info, inline_text);
}

gboolean
chime_run_emit (ChimeRun   *run,
                ChimeEvent *event,
                GError    **error)
{
  return chime_runtime_emit (run->runtime, event, run->handlers, error);
}

#define REQUIRE_KIND(run, expected)                                        \
  g_return_val_if_fail ((run) != NULL && (run)->info->kind == (expected), FALSE)

gboolean
chime_run_on_llm_new_token (ChimeRun   *run,
                            const char *token,
                            json_t     *chunk,
                            GError    **error)
{
  ChimeEvent *event;

  REQUIRE_KIND (run, CHIME_RUN_KIND_LLM);
  event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, run->info, token != NULL ? token : "");
  chime_event_take_json (&event->chunk, chunk);
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_llm_end (ChimeRun *run,
                      json_t   *response,
                      GError  **error)
{
  ChimeEvent *event;

  REQUIRE_KIND (run, CHIME_RUN_KIND_LLM);
  event = chime_run_new_event (run, CHIME_EVENT_LLM_END, NULL);
  chime_event_take_json (&event->payload->response, response);
  return chime_run_emit (run, event, error);
}

/* The *_error events: @failure is copied into the event. */
static gboolean
emit_error (ChimeRun      *run,
            ChimeEventType type,
            const GError  *failure,
            json_t        *response,
            GError       **error)
{
  ChimeEvent *event = chime_run_new_event (run, type, NULL);

  event->payload->error = failure != NULL ? g_error_copy (failure)
                                 : g_error_new_literal (CHIME_HANDLER_ERROR,
                                                        CHIME_HANDLER_ERROR_FAILED,
                                                        "unknown error");
  chime_event_take_json (&event->payload->response, response);
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_llm_error (ChimeRun     *run,
                        const GError *failure,
                        json_t       *partial_response,
                        GError      **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_LLM);
  return emit_error (run, CHIME_EVENT_LLM_ERROR, failure, partial_response, error);
}

gboolean
chime_run_on_chain_end (ChimeRun *run,
                        json_t   *outputs,
                        GError  **error)
{
  ChimeEvent *event;

  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  event = chime_run_new_event (run, CHIME_EVENT_CHAIN_END, NULL);
  chime_event_take_json (&event->payload->outputs, outputs);
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_chain_error (ChimeRun     *run,
                          const GError *failure,
                          GError      **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return emit_error (run, CHIME_EVENT_CHAIN_ERROR, failure, NULL, error);
}

static gboolean
emit_data (ChimeRun      *run,
           ChimeEventType type,
           json_t        *data,
           GError       **error)
{
  ChimeEvent *event = chime_run_new_event (run, type, NULL);

  chime_event_take_json (&event->payload->data, data);
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_agent_action (ChimeRun *run,
                           json_t   *action,
                           GError  **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return emit_data (run, CHIME_EVENT_AGENT_ACTION, action, error);
}

gboolean
chime_run_on_agent_finish (ChimeRun *run,
                           json_t   *finish,
                           GError  **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return emit_data (run, CHIME_EVENT_AGENT_FINISH, finish, error);
}

gboolean
chime_run_on_tool_end (ChimeRun *run,
                       json_t   *output,
                       GError  **error)
{
  ChimeEvent *event;

  REQUIRE_KIND (run, CHIME_RUN_KIND_TOOL);
  event = chime_run_new_event (run, CHIME_EVENT_TOOL_END, NULL);
  chime_event_take_json (&event->payload->outputs, output);
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_tool_error (ChimeRun     *run,
                         const GError *failure,
                         GError      **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_TOOL);
  return emit_error (run, CHIME_EVENT_TOOL_ERROR, failure, NULL, error);
}

gboolean
chime_run_on_retriever_end (ChimeRun *run,
                            json_t   *documents,
                            GError  **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_RETRIEVER);
  return emit_data (run, CHIME_EVENT_RETRIEVER_END, documents, error);
}

gboolean
chime_run_on_retriever_error (ChimeRun     *run,
                              const GError *failure,
                              GError      **error)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_RETRIEVER);
  return emit_error (run, CHIME_EVENT_RETRIEVER_ERROR, failure, NULL, error);
}

gboolean
chime_run_on_text (ChimeRun   *run,
                   const char *text,
                   GError    **error)
{
  ChimeEvent *event;

  g_return_val_if_fail (run != NULL && text != NULL, FALSE);
  event = chime_run_new_event (run, CHIME_EVENT_TEXT, NULL);
  event->payload->text = g_strdup (text);
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_retry (ChimeRun *run,
                    json_t   *retry_state,
                    GError  **error)
{
  g_return_val_if_fail (run != NULL, FALSE);
  return emit_data (run, CHIME_EVENT_RETRY, retry_state, error);
}

gboolean
chime_run_on_custom_event (ChimeRun   *run,
                           const char *name,
                           json_t     *data,
                           GError    **error)
{
  ChimeEvent *event;

  g_return_val_if_fail (run != NULL && name != NULL, FALSE);
  event = chime_run_new_event (run, CHIME_EVENT_CUSTOM_EVENT, NULL);
  event->payload->custom_name = g_strdup (name);
  chime_event_take_json (&event->payload->data, data);
  return chime_run_emit (run, event, error);
}
