/* A sync recorder: see recorder.h. Built as recorder_sync and, with
 * RECORDER_WANTS_STREAM, as recorder_stream. */
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

#ifndef RECORDER_WANTS_STREAM
CHIME_SYNC_PLUGIN_DEFINE (
  .name = "recorder_sync",
  .description = "test plugin: records every event (sync)",
  .version = "1",
#else
/* Built again as recorder_stream: the same, asking for the steps' output
 * streams (CHIME_STREAM_EVENT custom events). */
CHIME_SYNC_PLUGIN_DEFINE (
  .name = "recorder_stream",
  .description = "test plugin: records every event, the steps' output streams included (sync)",
  .version = "1",
  .flags = CHIME_PLUGIN_WANTS_STREAM,
#endif
  .config_keys = recorder_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_event = on_event,
);
