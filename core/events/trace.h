/* A trace is a run tree: the root run and its descendants. It carries the
 * failure a raise_error handler reported, so that the next emission anywhere
 * in the tree returns it and the pipeline fails the run, as LangChain
 * re-raises a handler's exception into the model or chain code. */
#pragma once

#include <glib.h>

typedef struct _ChimeTrace ChimeTrace;

/* Here rather than in trace.c so that the check every emit makes twice is
 * a load, not a call. */
struct _ChimeTrace {
  gint    ref_count;
  GError *failure;   /* set once, atomically; read without a lock */
};

ChimeTrace *chime_trace_new   (void);
ChimeTrace *chime_trace_ref   (ChimeTrace *trace);
void        chime_trace_unref (ChimeTrace *trace);

/* Records @failure (copied) unless an earlier failure is recorded. */
void        chime_trace_fail  (ChimeTrace   *trace,
                               const GError *failure);
gboolean    chime_trace_check_failed (ChimeTrace *trace,
                                      GError    **error);

/* TRUE when no failure is recorded; else FALSE with a copy in @error. */
static inline gboolean
chime_trace_check (ChimeTrace *trace,
                   GError    **error)
{
  if (G_LIKELY (g_atomic_pointer_get (&trace->failure) == NULL))
    return TRUE;
  return chime_trace_check_failed (trace, error);
}
