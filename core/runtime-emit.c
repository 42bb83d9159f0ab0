/* Emitting: the run_inline handlers on the emitting thread, then the
 * ring for the queued ones, then waiting as the delivery mode says —
 * blocking (chime_runtime_emit) or not (chime_runtime_emit_nowait, the
 * public chime_run_emit_nowait). */
#include "config.h"

#include "runtime-private.h"
#include "events/trace.h"
#include "dispatch/consumer.h"

#include <gio/gio.h>

/* run_inline handlers: called here, on the emitting thread, in file order,
 * before any queued handler sees the event. */
static gboolean
call_inline (ChimeRuntime *runtime,
             ChimeEvent   *event,
             guint64       mask,
             GError      **error)
{
  for (guint i = 0; i < runtime->n_inline; i++)
    {
      ChimeHandler *handler = runtime->inline_handlers[i];
      g_autoptr (GError) local_error = NULL;
      gboolean ok;

      if (!(mask & handler->bit))
        continue;
      if (!handler->thread_safe)
        g_mutex_lock (&handler->inline_lock);
      ok = chime_handler_call_sync (handler, event->type, event, &local_error);
      if (!handler->thread_safe)
        g_mutex_unlock (&handler->inline_lock);
      /* As LangChain's sync path: a raise_error handler stops the event. */
      if (!ok && handler->settings.raise_error)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
    }
  return TRUE;
}

/* Whether the emitter waits for an event of @type going to @mask. As in
 * LangChain.js, where raiseError forces awaiting, an event for a raise_error
 * handler is always waited for: its failure must reach the run, even in
 * background delivery. */
static gboolean
needs_wait (ChimeRuntime  *runtime,
            ChimeEventType type,
            guint64        mask)
{
  if (mask & runtime->raise_mask)
    return TRUE;
  switch (runtime->settings.delivery)
    {
    case CHIME_DELIVERY_AWAITED: return TRUE;
    case CHIME_DELIVERY_FENCED: return chime_event_type_is_fence (type);
    default: return FALSE;
    }
}

/* Checks the run tree for a raise_error failure; error events are always
 * delivered (they are how a failure is reported). */
static gboolean
check_trace (ChimeEvent *event,
             GError    **error)
{
  if (chime_event_type_is_error (event->type))
    return TRUE;
  return chime_trace_check (event->run->trace, error);
}

/* The run_inline handlers, once per event. FALSE with @error when a
 * raise_error one failed: then no queued handler gets the event. */
static gboolean
deliver_inline (ChimeRuntime *runtime,
                ChimeEvent   *event,
                guint64       mask,
                GError      **error)
{
  if (event->inline_done || !(mask & runtime->inline_mask))
    return TRUE;
  event->inline_done = TRUE;
  return call_inline (runtime, event, mask, error);
}

/* Where a waiting emitter waits until: after its own position, or, when no
 * queued handler takes the event, after everything emitted before it (a
 * fence still waits for what came before, so that a raise_error handler's
 * failure on an earlier event surfaces here). */
static guint64
queue_or_drop (ChimeRuntime *runtime,
               ChimeEvent   *event,
               guint64       mask,
               gboolean      wait,
               gboolean      claimed,
               guint64       pos)
{
  /* An event its emitter waits for is a fence. */
  if (claimed)
    {
      chime_dispatcher_fill (runtime->dispatcher, pos, event, mask & runtime->queued_mask, wait);
      return pos + 1;
    }
  chime_event_unref (event);
  return chime_dispatcher_get_head (runtime->dispatcher);
}

/* Whether everything below @end is handled, once this thread has run
 * what it may itself: with awaited delivery a sync handler's consumer is
 * not woken (caller_runs), its emitter runs it. This is the nowait side
 * of chime_dispatcher_wait, for an event chime_dispatcher_run_now could
 * not take (a handler was busy or behind). Without this look every such
 * awaited event was PENDING, and chime_run_when_ready ran the handler
 * here anyway, then took a round of the main loop to say so (~2 us a
 * token). */
static gboolean
handled_here (ChimeDispatcher *dispatcher,
              guint64          end)
{
  if (chime_dispatcher_is_done (dispatcher, end))
    return TRUE;
  chime_consumer_help_laggards (dispatcher, end);
  return chime_dispatcher_is_done (dispatcher, end);
}

gboolean
chime_runtime_emit (ChimeRuntime *runtime,
                    ChimeEvent   *event,
                    guint64       handler_mask,
                    GError      **error)
{
  guint64 mask = handler_mask & runtime->type_masks[event->type];
  gboolean queued = (mask & runtime->queued_mask) != 0;
  gboolean wait = needs_wait (runtime, event->type, mask);
  ChimeTrace *trace = event->run->trace;
  gboolean is_error = chime_event_type_is_error (event->type);
  guint64 pos = 0, end;

  if (G_UNLIKELY (runtime->dispatcher == NULL))
    {
      g_critical ("chime: %s emitted after chime_runtime_shutdown()",
                  chime_event_type_to_string (event->type));
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "the runtime was shut down");
      chime_event_unref (event);
      return FALSE;
    }
  if (!check_trace (event, error) || !deliver_inline (runtime, event, mask, error))
    {
      chime_event_unref (event);
      return FALSE;
    }
  /* Awaited, with every queued handler free: handled here and now. */
  if (queued && wait &&
      chime_dispatcher_run_now (runtime->dispatcher, event, mask & runtime->queued_mask))
    return is_error || chime_trace_check (trace, error);
  /* Inline handlers ran before the claim: a slow one must not hold up
   * other emitters, which publish in claim order. */
  if (queued)
    chime_dispatcher_claim (runtime->dispatcher, TRUE, &pos);
  end = queue_or_drop (runtime, event, mask, wait, queued, pos);
  if (wait && end > 0)
    chime_dispatcher_wait (runtime->dispatcher, end);
  return is_error || chime_trace_check (trace, error);
}

gboolean
chime_runtime_emit_token_slow (ChimeRuntime *runtime,
                               ChimeRunInfo *run,
                               const char   *token,
                               json_t       *chunk,
                               guint64       handler_mask,
                               GError      **error)
{
  return chime_runtime_emit (runtime, chime_event_new_token (run, token, chunk), handler_mask, error);
}

ChimeEmitStatus
chime_runtime_emit_token_nowait_slow (ChimeRuntime *runtime,
                                      ChimeRunInfo *run,
                                      const char   *token,
                                      json_t       *chunk,
                                      guint64       handler_mask,
                                      ChimeEvent  **held,
                                      guint64      *ticket,
                                      GError      **error)
{
  ChimeEvent *event = chime_event_new_token (run, token, chunk);
  ChimeEmitStatus status;

  status = chime_runtime_emit_nowait (runtime, event, handler_mask, ticket, error);
  /* Not consumed: the caller's, with its run_inline handlers had. */
  if (status == CHIME_EMIT_WOULD_BLOCK)
    *held = event;
  return status;
}

ChimeEmitStatus
chime_runtime_emit_nowait (ChimeRuntime *runtime,
                           ChimeEvent   *event,
                           guint64       handler_mask,
                           guint64      *ticket,
                           GError      **error)
{
  ChimeEventType type = event->type;
  ChimeTrace *trace = event->run->trace;   /* the caller's run keeps it alive */
  guint64 mask = handler_mask & runtime->type_masks[type];
  gboolean queued = (mask & runtime->queued_mask) != 0;
  gboolean wait = needs_wait (runtime, type, mask);
  guint64 pos = 0, end;

  *ticket = 0;
  if (G_UNLIKELY (runtime->dispatcher == NULL))
    {
      g_critical ("chime: %s emitted after chime_runtime_shutdown()", chime_event_type_to_string (type));
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "the runtime was shut down");
      chime_event_unref (event);
      return CHIME_EMIT_FAILED;
    }
  if (!check_trace (event, error) || !deliver_inline (runtime, event, mask, error))
    {
      chime_event_unref (event);
      return CHIME_EMIT_FAILED;
    }
  /* Awaited, with every queued handler free: handled here and now, as
   * chime_runtime_emit does. */
  if (queued && wait &&
      chime_dispatcher_run_now (runtime->dispatcher, event, mask & runtime->queued_mask))
    return chime_event_type_is_error (type) || chime_trace_check (trace, error) ? CHIME_EMIT_DONE
                                                                               : CHIME_EMIT_FAILED;
  /* The ticket of a full ring is 0: "when there is room". */
  if (queued && !chime_dispatcher_claim (runtime->dispatcher, FALSE, &pos))
    return CHIME_EMIT_WOULD_BLOCK;
  /* From here on the event belongs to the ring: do not touch it. */
  end = queue_or_drop (runtime, event, mask, wait, queued, pos);
  if (wait && end > 0 && !handled_here (runtime->dispatcher, end))
    {
      *ticket = end;
      return CHIME_EMIT_PENDING;
    }
  /* Handled already: a raise_error failure it caused is known now. */
  if (!chime_event_type_is_error (type) && !chime_trace_check (trace, error))
    return CHIME_EMIT_FAILED;
  return CHIME_EMIT_DONE;
}

gboolean
chime_runtime_replay (ChimeRuntime *runtime,
                      ChimeEvent   *event,
                      GError      **error)
{
  g_return_val_if_fail (runtime != NULL && event != NULL, FALSE);
  return chime_runtime_emit (runtime, chime_event_ref (event), runtime->all_mask, error);
}
