/* A sync recorder: see recorder.h. */
#include "recorder.h"

static gboolean
on_event (gpointer    instance,
          ChimeEvent *event,
          GError    **error)
{
  Recorder *self = instance;

  if (self->delay_us > 0)
    g_usleep (self->delay_us);
  return recorder_record (self, event, error);
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "recorder_sync",
  .description = "test plugin: records every event (sync)",
  .version = "1",
  .config_keys = recorder_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_event = on_event,
);
