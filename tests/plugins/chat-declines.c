/* A plugin whose on_chat_model_start declines with NOT_IMPLEMENTED, as a
 * LangChain handler raising NotImplementedError does, asking for the
 * on_llm_start fallback; on_llm_start records. Built sync (chat_declines)
 * and, with CHAT_DECLINES_ASYNC, async (chat_declines_async), completing
 * on the main loop. With CHAT_DECLINES_WITHOUT_LLM_START
 * (chat_declines_alone[_async]) it has no on_llm_start at all, so the
 * fallback is LangChain's base-class no-op; on_llm_end records instead,
 * to show the handler goes on. */
#include "recorder.h"

#ifdef CHAT_DECLINES_WITHOUT_LLM_START
#define PLUGIN_NAME "chat_declines_alone"
#define RECORDING_SLOT on_llm_end
#else
#define PLUGIN_NAME "chat_declines"
#define RECORDING_SLOT on_llm_start
#endif

static GError *
decline (void)
{
  return g_error_new_literal (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_NOT_IMPLEMENTED,
                              "use on_llm_start");
}

#ifndef CHAT_DECLINES_ASYNC

static gboolean
on_chat_model_start (gpointer    instance,
                     ChimeEvent *event,
                     GError    **error)
{
  g_propagate_error (error, decline ());
  return FALSE;
}

static gboolean
record (gpointer    instance,
        ChimeEvent *event,
        GError    **error)
{
  return recorder_record (instance, event, error);
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = PLUGIN_NAME,
  .description = "test plugin: on_chat_model_start declines, asking for on_llm_start",
  .config_keys = recorder_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_chat_model_start = on_chat_model_start,
  .RECORDING_SLOT = record,
);

#else

static void
on_chat_model_start (gpointer         instance,
                     ChimeEvent      *event,
                     ChimeCompletion *completion)
{
  chime_completion_fail (completion, decline ());
}

static void
record (gpointer         instance,
        ChimeEvent      *event,
        ChimeCompletion *completion)
{
  g_autoptr (GError) error = NULL;

  if (recorder_record (instance, event, &error))
    chime_completion_complete (completion);
  else
    chime_completion_fail (completion, g_steal_pointer (&error));
}

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = PLUGIN_NAME "_async",
  .description = "test plugin: on_chat_model_start declines, asking for on_llm_start (async)",
  .config_keys = recorder_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_chat_model_start = on_chat_model_start,
  .RECORDING_SLOT = record,
);

#endif
