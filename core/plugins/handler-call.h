/* A sync handler's call, inline, for the drain loops that make one per
 * handler per event (sync-route.c, caller-runs.c). */
#pragma once

#include "plugins/handler.h"
#include "crash-report.h"

/* chime_handler_call_sync (handler, type, event, NULL), its common case
 * inline: an in-process entry point that succeeds. As a call of its own
 * it cost a drain some 65 instructions a handler an event, a third of
 * them saving and restoring registers around the entry point's. */
static inline __attribute__ ((always_inline)) void
chime_handler_call_sync_inline (ChimeHandler  *handler,
                                ChimeEventType type,
                                ChimeEvent    *event)
{
  GError *local_error = NULL;
  ChimeCrashContext saved;
  gboolean ok;

  if (G_UNLIKELY (handler->link != NULL))
    {
      chime_handler_call_sync (handler, type, event, NULL);
      return;
    }
  saved = chime_crash_context_enter (handler, type, event);
  ok = ((ChimeSyncFunc) handler->entries[type]) (handler->instance, event, &local_error);
  chime_crash_context_leave (&saved);
  if (G_UNLIKELY (!ok || local_error != NULL))
    chime_handler_finish_sync_call (handler, type, event, ok, local_error, NULL);
  else
    chime_handler_count_delivered (handler);
}
