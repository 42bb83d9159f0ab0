/* What the run managers know of a runtime (runtime.c builds it,
 * runtime-emit.c emits through it). */
#pragma once

#include <chime/runtime.h>
#include <chime/emit.h>
#include "config/config-private.h"
#include "runtime-config.h"
#include "dispatch/dispatcher.h"
#include "events/event-private.h"
#include "events/trace.h"
#include "plugins/handler.h"

struct _ChimeRuntime {
  gint                 ref_count;
  gboolean             shut_down;
  ChimeRuntimeSettings settings;
  ChimeConfig         *config;
  ChimeHandler       **handlers;          /* all, in file order */
  ChimeHandlerInfo    *infos;             /* one per handler, same order */
  guint                n_handlers;
  ChimeHandler       **inline_handlers;   /* run_inline ones, in file order */
  guint                n_inline;
  guint64              all_mask;
  guint64              inline_mask;
  guint64              queued_mask;       /* handlers on the ring */
  guint64              inheritable_mask;
  guint64              raise_mask;        /* queued handlers with raise_error */
  guint64              stream_mask;       /* plugins with CHIME_PLUGIN_WANTS_STREAM */
  guint64              type_masks[CHIME_EVENT_N_TYPES];
  /* The handlers a token may reach through the ring alone: queued ones,
   * without raise_error, unless delivery is awaited (then every token is
   * waited for). chime_runtime_emit_token() takes its short way when
   * every handler of the token is one of these. */
  guint64              token_ring_mask;
  GMainContext        *main_context;
  ChimeDispatcher     *dispatcher;        /* NULL once shut down */
};

/* Emits @event (taking the reference) to the handlers of @handler_mask that
 * want it: run_inline handlers first, on this thread, then the queued ones;
 * then waits as the delivery mode says. FALSE with @error when a raise_error
 * handler failed on this run tree. */
gboolean        chime_runtime_emit        (ChimeRuntime *runtime,
                                           ChimeEvent   *event,
                                           guint64       handler_mask,
                                           GError      **error);
/* Whether a token for the handlers of @mask (those of the run that want
 * tokens) needs nothing but the ring: every one is in token_ring_mask,
 * and the runtime is not shut down. */
static inline gboolean
chime_runtime_token_rides_ring (ChimeRuntime *runtime,
                                guint64       mask)
{
  return mask != 0 && (mask & ~runtime->token_ring_mask) == 0 && runtime->dispatcher != NULL;
}

/* Whether a token for @mask is for no handler and nobody waits for it
 * (with awaited delivery the emitter still waits for what came before):
 * then there is nothing to make, only the run tree's failure to look at,
 * as chime_runtime_emit would. `chime run` with no token handler. */
static inline gboolean
chime_runtime_token_goes_nowhere (ChimeRuntime *runtime,
                                  guint64       mask)
{
  return mask == 0 && runtime->settings.delivery != CHIME_DELIVERY_AWAITED && runtime->dispatcher != NULL;
}

/* chime_runtime_emit_token() when the token needs more than the ring. */
gboolean        chime_runtime_emit_token_slow (ChimeRuntime *runtime,
                                               ChimeRunInfo *run,
                                               const char   *token,
                                               json_t       *chunk,
                                               guint64       handler_mask,
                                               GError      **error);

/* chime_runtime_emit of a token of @run (@token not NULL, @chunk may be),
 * without making an event when it needs nothing but the ring: no
 * run_inline handler takes it and nobody waits for it. What the general
 * path does first (the trace check) and last (the check again) it does
 * too. Inline into chime_run_on_llm_new_token(): each call and its
 * prologue on this path cost a stream as much as the ring's own work
 * (docs/benchmarks.md, "The fourth round"). */
static inline gboolean
chime_runtime_emit_token (ChimeRuntime *runtime,
                          ChimeRunInfo *run,
                          const char   *token,
                          json_t       *chunk,
                          guint64       handler_mask,
                          GError      **error)
{
  guint64 mask = handler_mask & runtime->type_masks[CHIME_EVENT_LLM_NEW_TOKEN];

  if (chime_runtime_token_goes_nowhere (runtime, mask))
    return chime_trace_check (run->trace, error);
  if (G_LIKELY (chime_runtime_token_rides_ring (runtime, mask)))
    {
      if (!chime_trace_check (run->trace, error))
        return FALSE;
      /* FALSE under a drop policy, which may move the slot's event. */
      if (G_LIKELY (chime_dispatcher_publish_token (runtime->dispatcher, run, token, chunk, mask)))
        return chime_trace_check (run->trace, error);
    }
  return chime_runtime_emit_token_slow (runtime, run, token, chunk, handler_mask, error);
}

/* chime_runtime_emit_token_nowait() when the token needs more than the
 * ring. */
ChimeEmitStatus chime_runtime_emit_token_nowait_slow (ChimeRuntime *runtime,
                                                      ChimeRunInfo *run,
                                                      const char   *token,
                                                      json_t       *chunk,
                                                      guint64       handler_mask,
                                                      ChimeEvent  **held,
                                                      guint64      *ticket,
                                                      GError      **error);

/* chime_runtime_emit_token() without ever blocking, as
 * chime_runtime_emit_nowait() answers; on CHIME_EMIT_WOULD_BLOCK *@held is
 * the token's event, not emitted, the caller's to offer again. Inline into
 * chime_run_emit_token_nowait(), the token path of a pipeline. */
static inline ChimeEmitStatus
chime_runtime_emit_token_nowait (ChimeRuntime *runtime,
                                 ChimeRunInfo *run,
                                 const char   *token,
                                 json_t       *chunk,
                                 guint64       handler_mask,
                                 ChimeEvent  **held,
                                 guint64      *ticket,
                                 GError      **error)
{
  guint64 mask = handler_mask & runtime->type_masks[CHIME_EVENT_LLM_NEW_TOKEN];

  *held = NULL;
  *ticket = 0;
  if (chime_runtime_token_goes_nowhere (runtime, mask))
    return chime_trace_check (run->trace, error) ? CHIME_EMIT_DONE : CHIME_EMIT_FAILED;
  if (G_LIKELY (chime_runtime_token_rides_ring (runtime, mask)))
    {
      if (!chime_trace_check (run->trace, error))
        return CHIME_EMIT_FAILED;
      switch (chime_dispatcher_try_publish_token (runtime->dispatcher, run, token, chunk, mask))
        {
        case CHIME_TOKEN_PUBLISHED:
          return chime_trace_check (run->trace, error) ? CHIME_EMIT_DONE : CHIME_EMIT_FAILED;
        case CHIME_TOKEN_NO_ROOM:
          /* The ticket of a full ring is 0: "when there is room". */
          *held = chime_event_new_token (run, token, chunk);
          return CHIME_EMIT_WOULD_BLOCK;
        case CHIME_TOKEN_ELSEWHERE:
          break;
        }
    }
  return chime_runtime_emit_token_nowait_slow (runtime, run, token, chunk, handler_mask, held, ticket,
                                               error);
}

/* The same without ever blocking; see ChimeEmitStatus (chime/emit.h). On
 * CHIME_EMIT_WOULD_BLOCK the event is not consumed. */
ChimeEmitStatus chime_runtime_emit_nowait (ChimeRuntime *runtime,
                                           ChimeEvent   *event,
                                           guint64       handler_mask,
                                           guint64      *ticket,
                                           GError      **error);

/* The handler named @name, or NULL. */
ChimeHandler   *chime_runtime_find_handler (ChimeRuntime *runtime,
                                            const char   *name);
