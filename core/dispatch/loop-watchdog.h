/* Watching the main loop for async handlers that hold it (loop-watchdog.c). */
#pragma once

#include "plugins/handler.h"

typedef struct _ChimeLoopWatchdog ChimeLoopWatchdog;

/* What the async route marks around each entry-point call. Written by the
 * thread that runs the main context, read by the watchdog's thread. */
typedef struct {
  ChimeHandler  *holder;   /* the handler in a call, or NULL */
  gint           type;     /* its event type */
  guint64        calls;    /* calls so far: tells two calls apart */
} ChimeLoopMark;

/* Starts a thread that says when one async call has held the main loop
 * for @limit_ms (> 0), reading @mark. */
ChimeLoopWatchdog *chime_loop_watchdog_new  (ChimeLoopMark *mark,
                                             guint          limit_ms);
void               chime_loop_watchdog_free (ChimeLoopWatchdog *watchdog);

/* Two stores, no clock: the watchdog samples. */
static inline void
chime_loop_mark_enter (ChimeLoopMark  *mark,
                       ChimeHandler   *handler,
                       ChimeEventType  type)
{
  __atomic_store_n (&mark->type, (gint) type, __ATOMIC_RELAXED);
  __atomic_store_n (&mark->holder, handler, __ATOMIC_RELAXED);
  /* Release: a watchdog that reads this count sees the holder above. One
   * writer (whoever runs the main context; acquiring it orders them), so
   * a load and a store, not a locked add. */
  __atomic_store_n (&mark->calls, __atomic_load_n (&mark->calls, __ATOMIC_RELAXED) + 1,
                    __ATOMIC_RELEASE);
}

static inline void
chime_loop_mark_leave (ChimeLoopMark *mark)
{
  __atomic_store_n (&mark->holder, NULL, __ATOMIC_RELEASE);
}
