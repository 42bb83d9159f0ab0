/* A trace is a run tree: the root run and its descendants. It carries the
 * failure a raise_error handler reported, so that the next emission anywhere
 * in the tree returns it and the pipeline fails the run, as LangChain
 * re-raises a handler's exception into the model or chain code. */
#pragma once

#include <glib.h>

typedef struct _ChimeTrace ChimeTrace;

ChimeTrace *chime_trace_new   (void);
ChimeTrace *chime_trace_ref   (ChimeTrace *trace);
void        chime_trace_unref (ChimeTrace *trace);

/* Records @failure (copied) unless an earlier failure is recorded. */
void        chime_trace_fail  (ChimeTrace   *trace,
                               const GError *failure);
/* TRUE when no failure is recorded; else FALSE with a copy in @error. */
gboolean    chime_trace_check (ChimeTrace   *trace,
                               GError      **error);
