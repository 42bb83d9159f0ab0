/* A sync plugin whose on_chat_model_start declines with NOT_IMPLEMENTED,
 * as a LangChain handler raising NotImplementedError does, asking for the
 * on_llm_start fallback; on_llm_start records. */
#include "recorder.h"

static gboolean
on_chat_model_start (gpointer    instance,
                     ChimeEvent *event,
                     GError    **error)
{
  g_set_error_literal (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_NOT_IMPLEMENTED,
                       "use on_llm_start");
  return FALSE;
}

static gboolean
on_llm_start (gpointer    instance,
              ChimeEvent *event,
              GError    **error)
{
  return recorder_record (instance, event, error);
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "chat_declines",
  .description = "test plugin: on_chat_model_start declines, asking for on_llm_start",
  .config_keys = recorder_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_chat_model_start = on_chat_model_start,
  .on_llm_start = on_llm_start,
);
