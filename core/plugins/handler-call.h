/* A sync handler's call, inline, for the drain loops that make one per
 * handler per event (sync-route.c, caller-runs.c). */
#pragma once

#include "plugins/handler.h"
#include "crash-report.h"

/* chime_handler_call_sync() of a handler in this process: its common
 * case, an entry point that succeeds, inline; the rest in
 * chime_handler_finish_sync_call(). */
static inline __attribute__ ((always_inline)) gboolean
chime_handler_call_in_process (ChimeHandler  *handler,
                               ChimeEventType type,
                               ChimeEvent    *event,
                               GError       **error)
{
  GError *local_error = NULL;
  ChimeCrashContext saved = chime_crash_context_enter (handler, type, event);
  gboolean ok = ((ChimeSyncFunc) handler->entries[type]) (handler->instance, event, &local_error);

  chime_crash_context_leave (&saved);
  if (G_UNLIKELY (!ok || local_error != NULL))
    return chime_handler_finish_sync_call (handler, type, event, ok, local_error, error);
  chime_handler_count_delivered (handler);
  return TRUE;
}

/* chime_handler_call_sync (handler, type, event, NULL), inline but for a
 * handler in its own process. As a call of its own it cost a drain some
 * 65 instructions a handler an event, a third of them saving and
 * restoring registers around the entry point's. */
static inline __attribute__ ((always_inline)) void
chime_handler_call_sync_inline (ChimeHandler  *handler,
                                ChimeEventType type,
                                ChimeEvent    *event)
{
  if (G_UNLIKELY (handler->link != NULL))
    chime_handler_call_sync (handler, type, event, NULL);
  else
    chime_handler_call_in_process (handler, type, event, NULL);
}
