/* A sync plugin that implements on_llm_start only: chat model starts must
 * reach it through LangChain's fallback, rendered "Role: content". */
#include "recorder.h"

static gboolean
on_llm_start (gpointer    instance,
              ChimeEvent *event,
              GError    **error)
{
  return recorder_record (instance, event, error);
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "llm_only",
  .description = "test plugin: on_llm_start only",
  .config_keys = recorder_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_llm_start = on_llm_start,
);
