/* Run managers: the events of one run (LangChain's CallbackManagerFor*Run),
 * prepared and emitted, blocking or not. Runs are created by callback
 * managers (callback-manager.c), which also build their child managers. */
#include "config.h"

#include "run-private.h"
#include "events/llm-result.h"
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
  /* Aligned: events take references to it (though a stream's usually
   * come from the emitter's event cache, event.c), so its counter must
   * not share a cache line with anything another thread writes. */
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
  run->runtime = chime_runtime_ref (manager->runtime);
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
  g_return_val_if_fail (run != NULL, NULL);
  g_atomic_int_inc (&run->ref_count);
  return run;
}

void
chime_run_unref (ChimeRun *run)
{
  if (run == NULL || !g_atomic_int_dec_and_test (&run->ref_count))
    return;
  /* The run is finished here: this thread's event cache gives back the
   * references it kept for the run's next events. */
  chime_event_cache_drop_run (run->info);
  chime_run_info_unref (run->info);
  g_ptr_array_unref (run->inheritable_tags);
  json_decref (run->inheritable_metadata);
  chime_runtime_unref (run->runtime);
  g_free (run);
}

const ChimeRunInfo *
chime_run_get_info (ChimeRun *run)
{
  g_return_val_if_fail (run != NULL, NULL);
  return run->info;
}

ChimeRuntime *
chime_run_get_runtime (ChimeRun *run)
{
  g_return_val_if_fail (run != NULL, NULL);
  return run->runtime;
}

ChimeEvent *
chime_run_new_event (ChimeRun      *run,
                     ChimeEventType type,
                     const char    *inline_text)
{
  return chime_event_new (type, run->info, inline_text);
}

/* The handlers of @run that may get @event: a chunk of a step's output
 * stream (CHIME_STREAM_EVENT) goes only to the plugins that asked for
 * streams. The name is looked at for custom events only, so no other
 * event pays for it. */
static inline guint64
handlers_for (ChimeRun   *run,
              ChimeEvent *event)
{
  if (G_UNLIKELY (event->type == CHIME_EVENT_CUSTOM_EVENT) &&
      g_strcmp0 (chime_event_get_custom_name (event), CHIME_STREAM_EVENT) == 0)
    return run->handlers & run->runtime->stream_mask;
  return run->handlers;
}

gboolean
chime_run_emit (ChimeRun   *run,
                ChimeEvent *event,
                GError    **error)
{
  return chime_runtime_emit (run->runtime, event, handlers_for (run, event), error);
}

/* ------------------------------------------------------------------
 * Emitting without blocking
 * ---------------------------------------------------------------- */

ChimeEmitStatus
chime_run_emit_nowait (ChimeRun   *run,
                       ChimeEvent *event,
                       guint64    *ticket,
                       GError    **error)
{
  g_return_val_if_fail (run != NULL && event != NULL && ticket != NULL, CHIME_EMIT_FAILED);
  g_return_val_if_fail (event->run == run->info, CHIME_EMIT_FAILED);
  return chime_runtime_emit_nowait (run->runtime, event, handlers_for (run, event), ticket, error);
}

ChimeEmitStatus
chime_run_emit_token_nowait (ChimeRun   *run,
                             const char *token,
                             json_t     *chunk,
                             ChimeEvent **held,
                             guint64    *ticket,
                             GError    **error)
{
  g_return_val_if_fail (run != NULL && run->info->kind == CHIME_RUN_KIND_LLM, CHIME_EMIT_FAILED);
  g_return_val_if_fail (held != NULL && ticket != NULL, CHIME_EMIT_FAILED);
  return chime_runtime_emit_token_nowait (run->runtime, run->info, token != NULL ? token : "", chunk,
                                          run->handlers, held, ticket, error);
}

typedef struct {
  ChimeRun          *run;
  ChimeEmitReadyFunc callback;
  gpointer           user_data;
} ReadyWait;

static gboolean
on_ready (gpointer data)
{
  ReadyWait *wait = data;
  g_autoptr (GError) failure = NULL;

  /* The handlers are done: a raise_error one may have failed the tree. */
  chime_trace_check (wait->run->info->trace, &failure);
  wait->callback (failure, wait->user_data);
  chime_run_unref (wait->run);
  g_free (wait);
  return G_SOURCE_REMOVE;
}

void
chime_run_when_ready (ChimeRun          *run,
                      guint64            ticket,
                      ChimeEmitReadyFunc callback,
                      gpointer           user_data)
{
  ReadyWait *wait;

  g_return_if_fail (run != NULL && callback != NULL);
  g_return_if_fail (run->runtime->dispatcher != NULL);
  wait = g_new (ReadyWait, 1);
  wait->run = chime_run_ref (run);
  wait->callback = callback;
  wait->user_data = user_data;
  chime_dispatcher_when_done (run->runtime->dispatcher, ticket, on_ready, wait);
}

/* ------------------------------------------------------------------
 * Events, prepared
 * ---------------------------------------------------------------- */

#define REQUIRE_KIND(run, expected)                                        \
  g_return_val_if_fail ((run) != NULL && (run)->info->kind == (expected), NULL)

static ChimeEvent *
prepare_token (ChimeRun   *run,
               const char *token,
               json_t     *chunk)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_LLM);
  return chime_event_new_token (run->info, token != NULL ? token : "", chunk);
}

ChimeEvent *
chime_run_prepare_llm_new_token (ChimeRun   *run,
                                 const char *token,
                                 json_t     *chunk)
{
  return prepare_token (run, token, chunk);
}

/* An event whose payload carries @value as its data (agent actions,
 * documents, retry states, custom data). */
static ChimeEvent *
prepare_data (ChimeRun      *run,
              ChimeEventType type,
              json_t        *value)
{
  ChimeEvent *event = chime_run_new_event (run, type, NULL);

  chime_event_set_json (&event->payload->data, value);
  return event;
}

/* An end event whose payload carries @outputs. */
static ChimeEvent *
prepare_outputs (ChimeRun      *run,
                 ChimeEventType type,
                 json_t        *outputs)
{
  ChimeEvent *event = chime_run_new_event (run, type, NULL);

  chime_event_set_json (&event->payload->outputs, outputs);
  return event;
}

/* The *_error events: @failure is copied into the event. */
static ChimeEvent *
prepare_error (ChimeRun      *run,
               ChimeEventType type,
               const GError  *failure,
               json_t        *response)
{
  ChimeEvent *event = chime_run_new_event (run, type, NULL);

  event->payload->error = failure != NULL ? g_error_copy (failure)
                                          : g_error_new_literal (CHIME_HANDLER_ERROR,
                                                                 CHIME_HANDLER_ERROR_FAILED,
                                                                 "unknown error");
  chime_event_set_json (&event->payload->response, response);
  return event;
}

ChimeEvent *
chime_run_prepare_llm_end (ChimeRun *run,
                           json_t   *response)
{
  ChimeEvent *event;

  REQUIRE_KIND (run, CHIME_RUN_KIND_LLM);
  event = chime_run_new_event (run, CHIME_EVENT_LLM_END, NULL);
  chime_event_set_json (&event->payload->response, response);
  return event;
}

ChimeEvent *
chime_run_prepare_llm_error (ChimeRun     *run,
                             const GError *failure,
                             json_t       *partial_response)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_LLM);
  return prepare_error (run, CHIME_EVENT_LLM_ERROR, failure, partial_response);
}

ChimeEvent *
chime_run_prepare_chain_end (ChimeRun *run,
                             json_t   *outputs)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return prepare_outputs (run, CHIME_EVENT_CHAIN_END, outputs);
}

ChimeEvent *
chime_run_prepare_chain_end_with_inputs (ChimeRun *run,
                                         json_t   *outputs,
                                         json_t   *inputs)
{
  ChimeEvent *event;

  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  event = prepare_outputs (run, CHIME_EVENT_CHAIN_END, outputs);
  chime_event_set_json (&event->payload->inputs, inputs);
  return event;
}

ChimeEvent *
chime_run_prepare_chain_error (ChimeRun     *run,
                               const GError *failure)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return prepare_error (run, CHIME_EVENT_CHAIN_ERROR, failure, NULL);
}

ChimeEvent *
chime_run_prepare_agent_action (ChimeRun *run,
                                json_t   *action)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return prepare_data (run, CHIME_EVENT_AGENT_ACTION, action);
}

ChimeEvent *
chime_run_prepare_agent_finish (ChimeRun *run,
                                json_t   *finish)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_CHAIN);
  return prepare_data (run, CHIME_EVENT_AGENT_FINISH, finish);
}

ChimeEvent *
chime_run_prepare_tool_end (ChimeRun *run,
                            json_t   *output)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_TOOL);
  return prepare_outputs (run, CHIME_EVENT_TOOL_END, output);
}

ChimeEvent *
chime_run_prepare_tool_error (ChimeRun     *run,
                              const GError *failure)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_TOOL);
  return prepare_error (run, CHIME_EVENT_TOOL_ERROR, failure, NULL);
}

ChimeEvent *
chime_run_prepare_retriever_end (ChimeRun *run,
                                 json_t   *documents)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_RETRIEVER);
  return prepare_data (run, CHIME_EVENT_RETRIEVER_END, documents);
}

ChimeEvent *
chime_run_prepare_retriever_error (ChimeRun     *run,
                                   const GError *failure)
{
  REQUIRE_KIND (run, CHIME_RUN_KIND_RETRIEVER);
  return prepare_error (run, CHIME_EVENT_RETRIEVER_ERROR, failure, NULL);
}

ChimeEvent *
chime_run_prepare_text (ChimeRun   *run,
                        const char *text)
{
  ChimeEvent *event;

  g_return_val_if_fail (run != NULL && text != NULL, NULL);
  event = chime_run_new_event (run, CHIME_EVENT_TEXT, NULL);
  event->payload->text = g_strdup (text);
  return event;
}

ChimeEvent *
chime_run_prepare_retry (ChimeRun *run,
                         json_t   *retry_state)
{
  g_return_val_if_fail (run != NULL, NULL);
  return prepare_data (run, CHIME_EVENT_RETRY, retry_state);
}

ChimeEvent *
chime_run_prepare_custom_event (ChimeRun   *run,
                                const char *name,
                                json_t     *data)
{
  ChimeEvent *event;

  g_return_val_if_fail (run != NULL && name != NULL, NULL);
  event = prepare_data (run, CHIME_EVENT_CUSTOM_EVENT, data);
  event->payload->custom_name = g_strdup (name);
  return event;
}

/* ------------------------------------------------------------------
 * Events, emitted (blocking as the delivery mode says)
 * ---------------------------------------------------------------- */

/* Emits a prepared event; NULL (a failed precondition) stays FALSE. */
static gboolean
emit_prepared (ChimeRun   *run,
               ChimeEvent *event,
               GError    **error)
{
  if (event == NULL)
    return FALSE;
  return chime_run_emit (run, event, error);
}

gboolean
chime_run_on_llm_new_token (ChimeRun   *run,
                            const char *token,
                            json_t     *chunk,
                            GError    **error)
{
  g_return_val_if_fail (run != NULL && run->info->kind == CHIME_RUN_KIND_LLM, FALSE);
  /* A token is never a custom event: no stream check (handlers_for). */
  return chime_runtime_emit_token (run->runtime, run->info, token != NULL ? token : "", chunk,
                                   run->handlers, error);
}

gboolean
chime_run_on_llm_end (ChimeRun *run,
                      json_t   *response,
                      GError  **error)
{
  return emit_prepared (run, chime_run_prepare_llm_end (run, response), error);
}

gboolean
chime_run_on_llm_error (ChimeRun     *run,
                        const GError *failure,
                        json_t       *partial_response,
                        GError      **error)
{
  return emit_prepared (run, chime_run_prepare_llm_error (run, failure, partial_response), error);
}

gboolean
chime_run_on_chain_end (ChimeRun *run,
                        json_t   *outputs,
                        GError  **error)
{
  return emit_prepared (run, chime_run_prepare_chain_end (run, outputs), error);
}

gboolean
chime_run_on_chain_error (ChimeRun     *run,
                          const GError *failure,
                          GError      **error)
{
  return emit_prepared (run, chime_run_prepare_chain_error (run, failure), error);
}

gboolean
chime_run_on_agent_action (ChimeRun *run,
                           json_t   *action,
                           GError  **error)
{
  return emit_prepared (run, chime_run_prepare_agent_action (run, action), error);
}

gboolean
chime_run_on_agent_finish (ChimeRun *run,
                           json_t   *finish,
                           GError  **error)
{
  return emit_prepared (run, chime_run_prepare_agent_finish (run, finish), error);
}

gboolean
chime_run_on_tool_end (ChimeRun *run,
                       json_t   *output,
                       GError  **error)
{
  return emit_prepared (run, chime_run_prepare_tool_end (run, output), error);
}

gboolean
chime_run_on_tool_error (ChimeRun     *run,
                         const GError *failure,
                         GError      **error)
{
  return emit_prepared (run, chime_run_prepare_tool_error (run, failure), error);
}

gboolean
chime_run_on_retriever_end (ChimeRun *run,
                            json_t   *documents,
                            GError  **error)
{
  return emit_prepared (run, chime_run_prepare_retriever_end (run, documents), error);
}

gboolean
chime_run_on_retriever_error (ChimeRun     *run,
                              const GError *failure,
                              GError      **error)
{
  return emit_prepared (run, chime_run_prepare_retriever_error (run, failure), error);
}

gboolean
chime_run_on_text (ChimeRun   *run,
                   const char *text,
                   GError    **error)
{
  return emit_prepared (run, chime_run_prepare_text (run, text), error);
}

gboolean
chime_run_on_retry (ChimeRun *run,
                    json_t   *retry_state,
                    GError  **error)
{
  return emit_prepared (run, chime_run_prepare_retry (run, retry_state), error);
}

gboolean
chime_run_on_custom_event (ChimeRun   *run,
                           const char *name,
                           json_t     *data,
                           GError    **error)
{
  return emit_prepared (run, chime_run_prepare_custom_event (run, name, data), error);
}

gboolean
chime_run_dispatch_custom_event (ChimeRun   *run,
                                 const char *name,
                                 json_t     *data,
                                 GError    **error)
{
  g_return_val_if_fail (run != NULL && name != NULL, FALSE);
  if (g_str_has_prefix (name, "chime."))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "custom event names starting with \"chime.\" are chime's own; '%s' was not "
                   "dispatched (choose another name)", name);
      return FALSE;
    }
  return chime_run_on_custom_event (run, name, data, error);
}

/* ------------------------------------------------------------------ */

json_t *
chime_llm_chunk_new (ChimeRun   *run,
                     const char *text,
                     json_t     *message)
{
  g_autofree char *message_id = NULL;
  json_t *chunk;

  g_return_val_if_fail (run != NULL && text != NULL, NULL);
  message_id = chime_llm_message_id (&run->info->id);
  chunk = chime_llm_chunk_build (text, message_id);
  if (message != NULL)
    json_object_update (json_object_get (chunk, "message"), message);
  return chunk;
}

json_t *
chime_llm_result_new (ChimeRun   *run,
                      const char *text,
                      json_t     *response_metadata,
                      json_t     *usage_metadata,
                      json_t     *generation_info)
{
  g_autofree char *message_id = NULL;

  g_return_val_if_fail (run != NULL && text != NULL, NULL);
  message_id = chime_llm_message_id (&run->info->id);
  return chime_llm_result_build (text, message_id, response_metadata, usage_metadata,
                                 generation_info);
}
