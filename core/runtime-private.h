/* Runtime internals shared by the run managers and the runner. */
#pragma once

#include <chime/runtime.h>
#include "dispatch/dispatcher.h"
#include "events/event-private.h"
#include "plugins/handler.h"
#include "config/ini.h"
#include "config/runtime-config.h"

struct _ChimeRuntime {
  ChimeRuntimeSettings settings;
  ChimeIni            *ini;
  ChimeHandler       **handlers;          /* all, in file order */
  guint                n_handlers;
  ChimeHandler       **inline_handlers;   /* run_inline ones, in file order */
  guint                n_inline;
  guint64              all_mask;
  guint64              inline_mask;
  guint64              queued_mask;       /* handlers on the ring */
  guint64              inheritable_mask;
  guint64              raise_mask;        /* queued handlers with raise_error */
  guint64              type_masks[CHIME_EVENT_N_TYPES];
  GMainContext        *main_context;
  ChimeDispatcher     *dispatcher;
};

/* Builds a runtime from @ini. @problems may already hold problems found
 * by the caller (the runner's [pipeline] checks): all are reported at once
 * in @error. */
ChimeRuntime   *chime_runtime_new_from_ini (ChimeIni      *ini,
                                            ChimeProblems *problems,
                                            GError       **error);

/* How an emission went when the emitter may not block. */
typedef enum {
  CHIME_EMIT_DONE,      /* delivered or queued; go on */
  CHIME_EMIT_PENDING,   /* queued; wait for *wait_end before going on */
  CHIME_EMIT_FULL,      /* not taken: the ring is full; wait for room, retry */
  CHIME_EMIT_FAILED,    /* a raise_error handler failed this run tree: @error */
} ChimeEmitStatus;

/* Emits @event (taking the reference) to the handlers of @handler_mask that
 * want it: run_inline handlers first, on this thread, then the queued ones;
 * then waits as the delivery mode says. FALSE with @error when a raise_error
 * handler failed on this run tree. */
gboolean        chime_runtime_emit        (ChimeRuntime *runtime,
                                           ChimeEvent   *event,
                                           guint64       handler_mask,
                                           GError      **error);
/* The same without ever blocking; see ChimeEmitStatus. On CHIME_EMIT_FULL
 * the event is not consumed. After it returns the caller must check the
 * run tree (chime_trace_check) once a PENDING wait is over. */
ChimeEmitStatus chime_runtime_emit_nowait (ChimeRuntime *runtime,
                                           ChimeEvent   *event,
                                           guint64       handler_mask,
                                           guint64      *wait_end,
                                           GError      **error);

ChimeHandler   *chime_runtime_find_handler (ChimeRuntime *runtime,
                                            const char   *name);
