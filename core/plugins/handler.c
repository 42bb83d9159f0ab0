/* Handlers: plugin instances, their routes and their calls. */
#include "config.h"

#include "handler.h"
#include "handler-call.h"
#include "crash-report.h"
#include "events/event-private.h"
#include "events/trace.h"
#include "isolation/host-link.h"

#include <string.h>

guint
chime_ignore_flag_for_event (ChimeEventType type)
{
  switch (type)
    {
    case CHIME_EVENT_LLM_START:
    case CHIME_EVENT_LLM_NEW_TOKEN:
    case CHIME_EVENT_LLM_END:
    case CHIME_EVENT_LLM_ERROR:
      return CHIME_IGNORE_LLM;
    case CHIME_EVENT_CHAT_MODEL_START:
      return CHIME_IGNORE_CHAT_MODEL;
    case CHIME_EVENT_CHAIN_START:
    case CHIME_EVENT_CHAIN_END:
    case CHIME_EVENT_CHAIN_ERROR:
      return CHIME_IGNORE_CHAIN;
    /* As in LangChain, tools are covered by ignore_agent. */
    case CHIME_EVENT_TOOL_START:
    case CHIME_EVENT_TOOL_END:
    case CHIME_EVENT_TOOL_ERROR:
    case CHIME_EVENT_AGENT_ACTION:
    case CHIME_EVENT_AGENT_FINISH:
      return CHIME_IGNORE_AGENT;
    case CHIME_EVENT_RETRIEVER_START:
    case CHIME_EVENT_RETRIEVER_END:
    case CHIME_EVENT_RETRIEVER_ERROR:
      return CHIME_IGNORE_RETRIEVER;
    case CHIME_EVENT_RETRY:
      return CHIME_IGNORE_RETRY;
    case CHIME_EVENT_CUSTOM_EVENT:
      return CHIME_IGNORE_CUSTOM_EVENT;
    case CHIME_EVENT_TEXT:
    default:
      /* on_text is never ignored. */
      return 0;
    }
}

static void
compute_routes (ChimeHandler *handler)
{
  gpointer catch_all = handler->plugin->catch_all;
  gpointer llm_start = handler->plugin->entries[CHIME_EVENT_LLM_START];
  guint ignore = handler->settings.ignore;

  for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
    {
      gpointer direct = handler->plugin->entries[type];

      handler->routes[type] = CHIME_ROUTE_NONE;
      handler->entries[type] = NULL;
      if (ignore & chime_ignore_flag_for_event (type))
        continue;
      if (direct != NULL)
        {
          handler->routes[type] = CHIME_ROUTE_DIRECT;
          handler->entries[type] = direct;
        }
      else if (type == CHIME_EVENT_CHAT_MODEL_START && llm_start != NULL &&
               !(ignore & CHIME_IGNORE_LLM))
        {
          /* LangChain: a handler without on_chat_model_start gets
           * on_llm_start with the messages rendered as text, gated by
           * ignore_llm. */
          handler->routes[type] = CHIME_ROUTE_LLM_FALLBACK;
          handler->entries[type] = llm_start;
        }
      else if (catch_all != NULL)
        {
          handler->routes[type] = CHIME_ROUTE_CATCH_ALL;
          handler->entries[type] = catch_all;
        }
    }
}

ChimeHandler *
chime_handler_new (guint                 index,
                   ChimeHandlerSettings *settings,
                   const ChimePlugin    *plugin,
                   ChimeHandlerContext  *context)
{
  ChimeHandler *handler = g_aligned_alloc0 (1, sizeof (ChimeHandler), 64);

  handler->index = index;
  handler->bit = G_GUINT64_CONSTANT (1) << index;
  handler->settings = *settings;
  memset (settings, 0, sizeof *settings);
  handler->plugin = plugin;
  handler->descriptor = plugin->descriptor;
  handler->thread_safe = (plugin->descriptor->flags & CHIME_PLUGIN_THREAD_SAFE) != 0;
  handler->context = context;
  context->handler = handler;
  g_mutex_init (&handler->inline_lock);
  compute_routes (handler);
  return handler;
}

gboolean
chime_handler_start (ChimeHandler *handler,
                     GError      **error)
{
  g_autoptr (GError) local_error = NULL;

  if (handler->settings.host_init != NULL)
    {
      handler->link = chime_host_link_new (handler, &local_error);
      if (handler->link == NULL && g_error_matches (local_error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN))
        {
          /* The host's own message: the same as without isolation. */
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (handler->link == NULL)
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                       "handler '%s' (plugin '%s' from %s, isolation = process) failed to start: %s",
                       handler->settings.name, handler->descriptor->name,
                       handler->plugin->path, local_error->message);
          return FALSE;
        }
    }
  else if (handler->descriptor->instance_new != NULL)
    {
      handler->instance = handler->descriptor->instance_new (handler->context, &local_error);
      if (handler->instance == NULL && local_error == NULL)
        g_set_error_literal (&local_error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                             "instance_new returned NULL without saying why");
      if (handler->instance == NULL)
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                       "handler '%s' (plugin '%s' from %s) failed to start: %s",
                       handler->settings.name, handler->descriptor->name,
                       handler->plugin->path, local_error->message);
          return FALSE;
        }
    }
  handler->started = TRUE;
  return TRUE;
}

void
chime_handler_settings_clear (ChimeHandlerSettings *settings)
{
  g_clear_pointer (&settings->name, g_free);
  g_clear_pointer (&settings->plugin_spec, g_free);
  g_clear_pointer (&settings->host_init, json_decref);
}

void
chime_handler_stop (ChimeHandler *handler)
{
  if (handler->link != NULL)
    g_clear_pointer (&handler->link, chime_host_link_free);
  else if (handler->started && handler->descriptor->instance_free != NULL)
    handler->descriptor->instance_free (handler->instance);
  handler->started = FALSE;
  handler->instance = NULL;
}

void
chime_handler_free (ChimeHandler *handler)
{
  if (handler == NULL)
    return;
  chime_handler_stop (handler);
  chime_handler_context_free (handler->context);
  chime_handler_settings_clear (&handler->settings);
  g_mutex_clear (&handler->inline_lock);
  g_free (handler->first_failure);
  g_aligned_free (handler);
}

/* A chat model start declined with NOT_IMPLEMENTED, whose fallback to
 * on_llm_start does nothing: with ignore = llm, LangChain hands it to
 * handle_event with ignore_llm, which skips it; without an on_llm_start
 * of the plugin's own, it calls BaseCallbackHandler's, a no-op. Either
 * way nothing failed. */
static gboolean
declined_into_no_op_fallback (ChimeHandler *handler,
                              ChimeEvent   *event,
                              const GError *failure)
{
  return event->type == CHIME_EVENT_CHAT_MODEL_START &&
         g_error_matches (failure, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_NOT_IMPLEMENTED) &&
         ((handler->settings.ignore & CHIME_IGNORE_LLM) ||
          handler->plugin->entries[CHIME_EVENT_LLM_START] == NULL);
}

/* Counts @failure; the first one that is not a timeout is kept for the
 * summary (timeouts have their own counter and their own report). */
static void
count_failure (ChimeHandler *handler,
               const GError *failure)
{
  char *message;

  __atomic_add_fetch (&handler->failed, 1, __ATOMIC_RELAXED);
  if (g_error_matches (failure, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_TIMED_OUT))
    {
      __atomic_add_fetch (&handler->timed_out, 1, __ATOMIC_RELAXED);
      return;
    }
  if (__atomic_load_n (&handler->first_failure, __ATOMIC_ACQUIRE) != NULL)
    return;
  message = g_strdup (failure->message);
  if (!g_atomic_pointer_compare_and_exchange (&handler->first_failure, NULL, message))
    g_free (message);
}

void
chime_handler_report_failure (ChimeHandler *handler,
                              ChimeEvent   *event,
                              const GError *failure)
{
  /* The async route reports a settled call here. */
  if (declined_into_no_op_fallback (handler, event, failure))
    return;
  count_failure (handler, failure);
  g_log ("chime", G_LOG_LEVEL_WARNING, "handler '%s' (%s) failed on %s: %s",
         handler->settings.name, handler->descriptor->name,
         chime_event_type_to_string (event->type), failure->message);
  if (handler->settings.raise_error)
    chime_trace_fail (event->run->trace, failure);
}

void
chime_handler_report_failure_outside (ChimeHandler *handler,
                                      const GError *failure)
{
  count_failure (handler, failure);
  g_log ("chime", G_LOG_LEVEL_WARNING, "handler '%s' (%s) failed: %s",
         handler->settings.name, handler->descriptor->name, failure->message);
}

gboolean
chime_handler_can_fall_back (ChimeHandler *handler,
                             ChimeEvent   *event,
                             const GError *failure)
{
  return event->type == CHIME_EVENT_CHAT_MODEL_START &&
         handler->routes[event->type] == CHIME_ROUTE_DIRECT &&
         g_error_matches (failure, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_NOT_IMPLEMENTED) &&
         handler->plugin->entries[CHIME_EVENT_LLM_START] != NULL &&
         !(handler->settings.ignore & CHIME_IGNORE_LLM);
}

/* The body of chime_handler_invoke_sync, inlined into the sync call of
 * every event. */
static inline __attribute__ ((always_inline)) gboolean
invoke_in_process (ChimeHandler  *handler,
                   ChimeEventType type,
                   ChimeEvent    *event,
                   GError       **error)
{
  ChimeSyncFunc func = handler->entries[type];
  ChimeCrashContext saved = chime_crash_context_enter (handler, type, event);
  gboolean ok;

  ok = func (handler->instance, event, error);
  if (G_UNLIKELY (!ok) && chime_handler_can_fall_back (handler, event, *error))
    {
      ChimeSyncFunc llm_start = handler->plugin->entries[CHIME_EVENT_LLM_START];
      g_clear_error (error);
      chime_crash_context.entry = CHIME_EVENT_LLM_START;
      ok = llm_start (handler->instance, event, error);
    }
  chime_crash_context_leave (&saved);
  return ok;
}

gboolean
chime_handler_invoke_sync (ChimeHandler  *handler,
                           ChimeEventType type,
                           ChimeEvent    *event,
                           GError       **error)
{
  g_autoptr (GError) local_error = NULL;
  gboolean ok = invoke_in_process (handler, type, event, &local_error);

  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return ok;
}

/* A sync call failed with @local_error (taken; NULL when the entry point
 * returned FALSE without one): reports it unless it was a declined
 * chat model start with nothing to fall back to. */
static gboolean
sync_call_failed (ChimeHandler *handler,
                  ChimeEvent   *event,
                  GError       *local_error,
                  GError      **error)
{
  if (declined_into_no_op_fallback (handler, event, local_error))
    {
      g_clear_error (&local_error);
      return TRUE;
    }
  if (local_error == NULL)
    g_set_error (&local_error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                 "the handler returned FALSE without an error");
  chime_handler_report_failure (handler, event, local_error);
  g_propagate_error (error, local_error);
  return FALSE;
}

gboolean
chime_handler_finish_sync_call (ChimeHandler  *handler,
                                ChimeEventType type,
                                ChimeEvent    *event,
                                gboolean       ok,
                                GError        *local_error,
                                GError       **error)
{
  if (!ok && chime_handler_can_fall_back (handler, event, local_error))
    {
      ChimeSyncFunc llm_start = handler->plugin->entries[CHIME_EVENT_LLM_START];
      ChimeCrashContext saved = chime_crash_context_enter (handler, type, event);

      g_clear_error (&local_error);
      chime_crash_context.entry = CHIME_EVENT_LLM_START;
      ok = llm_start (handler->instance, event, &local_error);
      chime_crash_context_leave (&saved);
    }
  chime_handler_count_delivered (handler);
  if (ok)
    {
      /* A plugin that set an error anyway. */
      g_clear_error (&local_error);
      return TRUE;
    }
  return sync_call_failed (handler, event, local_error, error);
}

gboolean
chime_handler_call_sync (ChimeHandler  *handler,
                         ChimeEventType type,
                         ChimeEvent    *event,
                         GError       **error)
{
  if (G_UNLIKELY (handler->link != NULL))
    {
      GError *local_error = NULL;
      gboolean ok;

      /* After max_restarts crashes: said once, then only counted. */
      if (chime_host_link_is_stopped (handler->link))
        {
          chime_handler_count_lost (handler, 1);
          return TRUE;
        }
      ok = chime_host_link_call (handler->link, event, &local_error);
      chime_handler_count_delivered (handler);
      if (ok)
        {
          g_clear_error (&local_error);
          return TRUE;
        }
      return sync_call_failed (handler, event, local_error, error);
    }
  return chime_handler_call_in_process (handler, type, event, error);
}

void
chime_handler_flush_host (ChimeHandler *handler)
{
  chime_host_link_flush (handler->link);
}

void
chime_handler_call_async (ChimeHandler    *handler,
                          ChimeEvent      *event,
                          ChimeCompletion *completion)
{
  ChimeAsyncFunc func = handler->entries[event->type];
  ChimeCrashContext saved = chime_crash_context_enter (handler, event->type, event);

  func (handler->instance, event, completion);
  chime_crash_context_leave (&saved);
}

void
chime_handler_call_async_fallback (ChimeHandler    *handler,
                                   ChimeEvent      *event,
                                   ChimeCompletion *completion)
{
  ChimeAsyncFunc llm_start = handler->plugin->entries[CHIME_EVENT_LLM_START];
  ChimeCrashContext saved = chime_crash_context_enter (handler, CHIME_EVENT_LLM_START, event);

  llm_start (handler->instance, event, completion);
  chime_crash_context_leave (&saved);
}

void
chime_handler_get_stats (ChimeHandler      *handler,
                         ChimeHandlerStats *out)
{
  out->delivered = __atomic_load_n (&handler->delivered, __ATOMIC_RELAXED);
  out->failed = __atomic_load_n (&handler->failed, __ATOMIC_RELAXED);
  out->dropped = __atomic_load_n (&handler->dropped, __ATOMIC_RELAXED);
  out->timed_out = __atomic_load_n (&handler->timed_out, __ATOMIC_RELAXED);
  out->restarts = __atomic_load_n (&handler->restarts, __ATOMIC_RELAXED);
  out->redelivered = __atomic_load_n (&handler->redelivered, __ATOMIC_RELAXED);
}

void
chime_handler_count_restart (ChimeHandler *handler,
                             guint64       redelivered)
{
  __atomic_add_fetch (&handler->restarts, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch (&handler->redelivered, redelivered, __ATOMIC_RELAXED);
}

void
chime_handler_count_lost (ChimeHandler *handler,
                          guint64       n)
{
  __atomic_add_fetch (&handler->failed, n, __ATOMIC_RELAXED);
}

const char *
chime_handler_get_first_failure (ChimeHandler *handler)
{
  return __atomic_load_n (&handler->first_failure, __ATOMIC_ACQUIRE);
}

void
chime_handler_context_report_error (ChimeHandlerContext *context,
                                    const GError        *error)
{
  g_return_if_fail (context != NULL && error != NULL);
  if (context->handler == NULL)
    {
      g_log ("chime", G_LOG_LEVEL_WARNING, "%s (%s): %s", context->name, context->plugin_name,
             error->message);
      return;
    }
  chime_handler_report_failure_outside (context->handler, error);
}
