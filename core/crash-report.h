/* What the crash report knows of the calling thread: the handler whose
 * entry point it is running, if any. Set around every entry point call
 * (handler.c), read only by the signal handler (crash-report.c).
 *
 * Setting it must cost nothing on the emit path: three stores to a
 * thread-local struct, no call, no lock, no formatting. The strings the
 * report prints are the handler's own, preformatted when it was built;
 * the run id is formatted only when a crash happens. */
#pragma once

#include "plugins/handler.h"
#include "events/event-private.h"

typedef struct {
  const ChimeHandler *handler;   /* NULL: no entry point is running */
  const ChimeEvent   *event;
  /* The event type whose entry point runs, or CHIME_EVENT_N_TYPES for the
   * catch-all (on_event). */
  guint               entry;
  /* Whether this thread was given an alternate signal stack, once. */
  gboolean            thread_ready;
} ChimeCrashContext;

/* initial-exec: a plain %fs-relative access, both on the emit path and in
 * the signal handler (where __tls_get_addr, which may allocate, must not
 * run). */
extern __thread ChimeCrashContext chime_crash_context __attribute__ ((tls_model ("initial-exec")));

/* Gives the calling thread an alternate signal stack, when the crash
 * report is installed, so that a stack overflow is reported too. */
void chime_crash_report_prepare_thread (void);

/* Marks the start of @handler's entry point for @type (@route: how the
 * type reaches it) on @event; returns what was there before, for
 * chime_crash_context_leave() (an entry point may emit, and a run_inline
 * handler then runs inside it). */
static inline ChimeCrashContext
chime_crash_context_enter (const ChimeHandler *handler,
                           ChimeEventType      type,
                           const ChimeEvent   *event)
{
  ChimeCrashContext saved = chime_crash_context;

  if (G_UNLIKELY (!saved.thread_ready))
    chime_crash_report_prepare_thread ();
  chime_crash_context.handler = handler;
  chime_crash_context.event = event;
  chime_crash_context.entry = handler->routes[type] == CHIME_ROUTE_CATCH_ALL ? CHIME_EVENT_N_TYPES
                            : handler->routes[type] == CHIME_ROUTE_LLM_FALLBACK ? CHIME_EVENT_LLM_START
                            : type;
  /* The signal handler runs on this thread: the stores must be done
   * before the call, which a compiler barrier is enough for. */
  __atomic_signal_fence (__ATOMIC_SEQ_CST);
  return saved;
}

static inline void
chime_crash_context_leave (const ChimeCrashContext *saved)
{
  __atomic_signal_fence (__ATOMIC_SEQ_CST);
  chime_crash_context.handler = saved->handler;
  chime_crash_context.event = saved->event;
  chime_crash_context.entry = saved->entry;
}
