/* Callback managers: the handlers, tags and metadata a new run gets, and
 * the start events that create runs (LangChain's CallbackManager). */
#include "config.h"

#include "run-private.h"
#include "events/trace.h"

static ChimeCallbackManager *
manager_alloc (ChimeRuntime *runtime)
{
  ChimeCallbackManager *manager = g_new0 (ChimeCallbackManager, 1);

  manager->ref_count = 1;
  manager->runtime = chime_runtime_ref (runtime);
  manager->tags = g_ptr_array_new_with_free_func (g_free);
  manager->inheritable_tags = g_ptr_array_new_with_free_func (g_free);
  manager->metadata = json_object ();
  manager->inheritable_metadata = json_object ();
  return manager;
}

ChimeCallbackManager *
chime_runtime_new_callback_manager (ChimeRuntime *runtime)
{
  ChimeCallbackManager *manager;

  g_return_val_if_fail (runtime != NULL, NULL);
  manager = manager_alloc (runtime);
  manager->handlers = runtime->all_mask;
  manager->inheritable_handlers = runtime->inheritable_mask;
  return manager;
}

ChimeCallbackManager *
chime_callback_manager_ref (ChimeCallbackManager *manager)
{
  g_return_val_if_fail (manager != NULL, NULL);
  g_atomic_int_inc (&manager->ref_count);
  return manager;
}

void
chime_callback_manager_unref (ChimeCallbackManager *manager)
{
  if (manager == NULL || !g_atomic_int_dec_and_test (&manager->ref_count))
    return;
  g_ptr_array_unref (manager->tags);
  g_ptr_array_unref (manager->inheritable_tags);
  json_decref (manager->metadata);
  json_decref (manager->inheritable_metadata);
  if (manager->parent_info != NULL)
    chime_run_info_unref (manager->parent_info);
  chime_runtime_unref (manager->runtime);
  g_free (manager);
}

static GPtrArray *
copy_tags (GPtrArray *tags)
{
  return g_ptr_array_copy (tags, chime_copy_string, NULL);
}

ChimeCallbackManager *
chime_callback_manager_copy (ChimeCallbackManager *manager)
{
  ChimeCallbackManager *copy = manager_alloc (manager->runtime);

  copy->handlers = manager->handlers;
  copy->inheritable_handlers = manager->inheritable_handlers;
  g_ptr_array_unref (copy->tags);
  g_ptr_array_unref (copy->inheritable_tags);
  copy->tags = copy_tags (manager->tags);
  g_ptr_array_set_free_func (copy->tags, g_free);
  copy->inheritable_tags = copy_tags (manager->inheritable_tags);
  g_ptr_array_set_free_func (copy->inheritable_tags, g_free);
  json_object_update (copy->metadata, manager->metadata);
  json_object_update (copy->inheritable_metadata, manager->inheritable_metadata);
  copy->parent_run_id = manager->parent_run_id;
  copy->has_parent = manager->has_parent;
  if (manager->parent_info != NULL)
    copy->parent_info = chime_run_info_ref (manager->parent_info);
  return copy;
}

static gboolean
remove_tag (GPtrArray  *tags,
            const char *tag)
{
  for (guint i = 0; i < tags->len; i++)
    if (g_str_equal (g_ptr_array_index (tags, i), tag))
      {
        g_ptr_array_remove_index (tags, i);
        return TRUE;
      }
  return FALSE;
}

void
chime_callback_manager_remove_tags (ChimeCallbackManager *manager,
                                    const char * const   *tags)
{
  for (; tags != NULL && *tags != NULL; tags++)
    {
      remove_tag (manager->tags, *tags);
      remove_tag (manager->inheritable_tags, *tags);
    }
}

void
chime_callback_manager_add_tags (ChimeCallbackManager *manager,
                                 const char * const   *tags,
                                 gboolean              inherit)
{
  for (; tags != NULL && *tags != NULL; tags++)
    {
      const char *one[] = { *tags, NULL };

      /* LangChain removes a tag already present (from both lists) and
       * appends it again: de-duplication that moves it to the end. */
      chime_callback_manager_remove_tags (manager, one);
      g_ptr_array_add (manager->tags, g_strdup (*tags));
      if (inherit)
        g_ptr_array_add (manager->inheritable_tags, g_strdup (*tags));
    }
}

void
chime_callback_manager_add_metadata (ChimeCallbackManager *manager,
                                     json_t               *metadata,
                                     gboolean              inherit)
{
  g_return_if_fail (metadata == NULL || json_is_object (metadata));
  if (metadata == NULL)
    return;
  json_object_update (manager->metadata, metadata);
  if (inherit)
    json_object_update (manager->inheritable_metadata, metadata);
}

gboolean
chime_callback_manager_add_handler (ChimeCallbackManager *manager,
                                    const char           *name,
                                    gboolean              inherit)
{
  ChimeHandler *handler = chime_runtime_find_handler (manager->runtime, name);

  if (handler == NULL)
    return FALSE;
  manager->handlers |= handler->bit;
  if (inherit)
    manager->inheritable_handlers |= handler->bit;
  return TRUE;
}

gboolean
chime_callback_manager_remove_handler (ChimeCallbackManager *manager,
                                       const char           *name)
{
  ChimeHandler *handler = chime_runtime_find_handler (manager->runtime, name);

  if (handler == NULL)
    return FALSE;
  manager->handlers &= ~handler->bit;
  manager->inheritable_handlers &= ~handler->bit;
  return TRUE;
}

void
chime_callback_manager_set_parent_run_id (ChimeCallbackManager *manager,
                                          const ChimeRunId     *parent_run_id)
{
  g_clear_pointer (&manager->parent_info, chime_run_info_unref);
  manager->has_parent = parent_run_id != NULL;
  if (parent_run_id != NULL)
    manager->parent_run_id = *parent_run_id;
}

guint
chime_callback_manager_get_n_handlers (ChimeCallbackManager *manager)
{
  return (guint) __builtin_popcountll (manager->handlers);
}

ChimeCallbackManager *
chime_run_get_child (ChimeRun   *run,
                     const char *tag)
{
  ChimeCallbackManager *child;

  g_return_val_if_fail (run != NULL, NULL);
  child = manager_alloc (run->runtime);
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

const char *
chime_run_pick_name (const char *name,
                     json_t     *serialized,
                     const char *fallback)
{
  json_t *id;

  if (name != NULL)
    return name;
  if (json_is_string (json_object_get (serialized, "name")))
    return json_string_value (json_object_get (serialized, "name"));
  id = json_object_get (serialized, "id");
  if (json_is_array (id) && json_array_size (id) > 0 &&
      json_is_string (json_array_get (id, json_array_size (id) - 1)))
    return json_string_value (json_array_get (id, json_array_size (id) - 1));
  return fallback;
}

/* Emits a start event; on failure the run is discarded. */
static ChimeRun *
start_run (ChimeRun   *run,
           ChimeEvent *event,
           GError    **error)
{
  if (!chime_run_emit (run, event, error))
    {
      chime_run_unref (run);
      return NULL;
    }
  return run;
}

ChimeRun *
chime_callback_manager_prepare_chain_start (ChimeCallbackManager *manager,
                                            json_t               *serialized,
                                            json_t               *inputs,
                                            const char           *name,
                                            const char           *run_type,
                                            ChimeEvent          **out_event)
{
  ChimeRun *run;
  ChimeEvent *event;

  g_return_val_if_fail (manager != NULL && out_event != NULL, NULL);
  run = chime_run_new_from_manager (manager, CHIME_RUN_KIND_CHAIN,
                                    run_type != NULL ? run_type : "chain",
                                    chime_run_pick_name (name, serialized, "Unnamed"));
  event = chime_run_new_event (run, CHIME_EVENT_CHAIN_START, NULL);

  chime_event_set_json (&event->payload->serialized, serialized);
  chime_event_set_json (&event->payload->inputs, inputs);
  *out_event = event;
  return run;
}

ChimeRun *
chime_callback_manager_on_chain_start (ChimeCallbackManager *manager,
                                       json_t               *serialized,
                                       json_t               *inputs,
                                       const char           *name,
                                       const char           *run_type,
                                       GError              **error)
{
  ChimeEvent *event;
  ChimeRun *run;

  g_return_val_if_fail (manager != NULL, NULL);
  run = chime_callback_manager_prepare_chain_start (manager, serialized, inputs, name, run_type,
                                                    &event);
  return start_run (run, event, error);
}

ChimeRun *
chime_callback_manager_prepare_llm_start (ChimeCallbackManager *manager,
                                          json_t               *serialized,
                                          const char           *prompt,
                                          const char           *name,
                                          json_t               *kwargs,
                                          ChimeEvent          **out_event)
{
  ChimeRun *run;
  ChimeEvent *event;

  g_return_val_if_fail (manager != NULL && prompt != NULL && out_event != NULL, NULL);
  run = chime_run_new_from_manager (manager, CHIME_RUN_KIND_LLM, "llm",
                                    chime_run_pick_name (name, serialized, "LLM"));
  event = chime_run_new_event (run, CHIME_EVENT_LLM_START, NULL);
  chime_event_set_json (&event->payload->serialized, serialized);
  event->payload->prompts = json_pack ("[s]", prompt);
  chime_event_set_json (&event->payload->kwargs, kwargs);
  *out_event = event;
  return run;
}

ChimeRun *
chime_callback_manager_on_llm_start (ChimeCallbackManager *manager,
                                     json_t               *serialized,
                                     const char           *prompt,
                                     const char           *name,
                                     json_t               *kwargs,
                                     GError              **error)
{
  ChimeEvent *event;
  ChimeRun *run;

  g_return_val_if_fail (manager != NULL && prompt != NULL, NULL);
  run = chime_callback_manager_prepare_llm_start (manager, serialized, prompt, name, kwargs, &event);
  return start_run (run, event, error);
}

ChimeRun *
chime_callback_manager_prepare_chat_model_start (ChimeCallbackManager *manager,
                                                 json_t               *serialized,
                                                 json_t               *messages,
                                                 const char           *name,
                                                 json_t               *kwargs,
                                                 ChimeEvent          **out_event)
{
  ChimeRun *run;
  ChimeEvent *event;

  g_return_val_if_fail (manager != NULL && json_is_array (messages) && out_event != NULL, NULL);
  run = chime_run_new_from_manager (manager, CHIME_RUN_KIND_LLM, "chat_model",
                                    chime_run_pick_name (name, serialized, "ChatModel"));
  event = chime_run_new_event (run, CHIME_EVENT_CHAT_MODEL_START, NULL);

  chime_event_set_json (&event->payload->serialized, serialized);
  /* LangChain passes a list of message lists, one per prompt. */
  event->payload->messages = json_pack ("[O]", messages);
  chime_event_set_json (&event->payload->kwargs, kwargs);
  *out_event = event;
  return run;
}

ChimeRun *
chime_callback_manager_on_chat_model_start (ChimeCallbackManager *manager,
                                            json_t               *serialized,
                                            json_t               *messages,
                                            const char           *name,
                                            json_t               *kwargs,
                                            GError              **error)
{
  ChimeEvent *event;
  ChimeRun *run;

  g_return_val_if_fail (manager != NULL && json_is_array (messages), NULL);
  run = chime_callback_manager_prepare_chat_model_start (manager, serialized, messages, name, kwargs,
                                                         &event);
  return start_run (run, event, error);
}

ChimeRun *
chime_callback_manager_prepare_tool_start (ChimeCallbackManager *manager,
                                           json_t               *serialized,
                                           const char           *input_str,
                                           json_t               *inputs,
                                           const char           *name,
                                           ChimeEvent          **out_event)
{
  ChimeRun *run;
  ChimeEvent *event;

  g_return_val_if_fail (manager != NULL && out_event != NULL, NULL);
  run = chime_run_new_from_manager (manager, CHIME_RUN_KIND_TOOL, "tool",
                                    chime_run_pick_name (name, serialized, "Tool"));
  event = chime_run_new_event (run, CHIME_EVENT_TOOL_START, NULL);
  chime_event_set_json (&event->payload->serialized, serialized);
  event->payload->text = g_strdup (input_str != NULL ? input_str : "");
  chime_event_set_json (&event->payload->inputs, inputs);
  *out_event = event;
  return run;
}

ChimeRun *
chime_callback_manager_on_tool_start (ChimeCallbackManager *manager,
                                      json_t               *serialized,
                                      const char           *input_str,
                                      json_t               *inputs,
                                      const char           *name,
                                      GError              **error)
{
  ChimeEvent *event;
  ChimeRun *run;

  g_return_val_if_fail (manager != NULL, NULL);
  run = chime_callback_manager_prepare_tool_start (manager, serialized, input_str, inputs, name,
                                                   &event);
  return start_run (run, event, error);
}

ChimeRun *
chime_callback_manager_prepare_retriever_start (ChimeCallbackManager *manager,
                                                json_t               *serialized,
                                                const char           *query,
                                                const char           *name,
                                                ChimeEvent          **out_event)
{
  ChimeRun *run;
  ChimeEvent *event;

  g_return_val_if_fail (manager != NULL && query != NULL && out_event != NULL, NULL);
  run = chime_run_new_from_manager (manager, CHIME_RUN_KIND_RETRIEVER, "retriever",
                                    chime_run_pick_name (name, serialized, "Retriever"));
  event = chime_run_new_event (run, CHIME_EVENT_RETRIEVER_START, NULL);
  chime_event_set_json (&event->payload->serialized, serialized);
  event->payload->text = g_strdup (query);
  *out_event = event;
  return run;
}

ChimeRun *
chime_callback_manager_on_retriever_start (ChimeCallbackManager *manager,
                                           json_t               *serialized,
                                           const char           *query,
                                           const char           *name,
                                           GError              **error)
{
  ChimeEvent *event;
  ChimeRun *run;

  g_return_val_if_fail (manager != NULL && query != NULL, NULL);
  run = chime_callback_manager_prepare_retriever_start (manager, serialized, query, name, &event);
  return start_run (run, event, error);
}

gboolean
chime_callback_manager_on_custom_event (ChimeCallbackManager *manager,
                                        const char           *name,
                                        json_t               *data,
                                        const ChimeRunId     *run_id,
                                        GError              **error)
{
  g_autoptr (ChimeRun) run = NULL;
  ChimeEvent *event;

  g_return_val_if_fail (manager != NULL && name != NULL && run_id != NULL, FALSE);
  /* LangChain's custom events carry the enclosing run's id and no parent. */
  run = chime_run_new_from_manager (manager, CHIME_RUN_KIND_CHAIN, "chain", name);
  run->info->id = *run_id;
  run->info->has_parent = FALSE;
  g_clear_pointer (&run->info->parent, chime_run_info_unref);
  event = chime_run_new_event (run, CHIME_EVENT_CUSTOM_EVENT, NULL);
  event->payload->custom_name = g_strdup (name);
  chime_event_set_json (&event->payload->data, data);
  return chime_run_emit (run, event, error);
}
