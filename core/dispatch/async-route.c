/* The async route: handlers called on the GLib main loop.
 *
 * Each async consumer has a GSource on the runtime's main context. Its
 * dispatch calls the handler for the next event with a ChimeCompletion;
 * when the handler completes at once, the next event follows in the same
 * dispatch, otherwise the source sleeps until the completion (from any
 * thread) or the handler's deadline wakes it. So a handler's calls are
 * ordered, while different handlers' calls overlap (LangChain's gather).
 * No timer is created per call: the deadline is the source's ready time.
 *
 * The consumer state machine (consumer.c) reaches this file only through
 * chime_async_route: schedule makes the source ready. */
#include "config.h"

#include "async-route.h"
#include "consumer.h"
#include "drop-policy.h"
#include "events/event-clock.h"

/* Events per main-loop dispatch, so one busy handler cannot starve the
 * loop. */
#define BUDGET 256
/* Progress is announced to waiters every this many events, and whenever
 * run() stops (as the sync route does). */
#define NOTIFY_EVERY 64

enum {
  COMPLETION_PENDING,
  COMPLETION_COMPLETING,   /* a completer is storing its result */
  COMPLETION_DONE,
  COMPLETION_ABANDONED,
};

struct _ChimeCompletion {
  ChimeConsumer *consumer;
  /* Under the block policy, borrowed from the ring while in flight (the
   * ring keeps it until the consumer's `done` passes it), and a
   * reference once abandoned; under drop policies, a reference: see
   * own_event(). A reference per call cost two locked instructions. */
  ChimeEvent    *event;
  gboolean       owns_event;
  gint           state;
  GError        *error;        /* written before state becomes DONE */
  gboolean       is_fallback;  /* this call is the llm_start fallback */
};

typedef struct {
  GSource        source;
  ChimeConsumer *consumer;
  /* The thread in the source's dispatch (chime_dispatch_thread_self), or
   * NULL; atomic, as a completion from any thread reads it. */
  gconstpointer  dispatching;
} AsyncSource;

/* Lets go of the completion's event. */
static void
drop_event (ChimeCompletion *completion)
{
  if (completion->owns_event)
    g_clear_pointer (&completion->event, chime_event_unref);
  completion->event = NULL;
  completion->owns_event = FALSE;
}

/* Makes the completion's event its own reference: before the consumer's
 * `done` moves past an event whose call may still use it (a call cut off
 * by its timeout may complete, and read its event, later). */
static void
own_event (ChimeCompletion *completion)
{
  if (completion->event != NULL && !completion->owns_event)
    {
      chime_event_ref (completion->event);
      completion->owns_event = TRUE;
    }
}

void
chime_completion_free (ChimeCompletion *completion)
{
  if (completion == NULL)
    return;
  drop_event (completion);
  g_clear_error (&completion->error);
  g_free (completion);
}

ChimeEvent *
chime_completion_get_event (ChimeCompletion *completion)
{
  return completion->event;
}

static void
finish (ChimeCompletion *completion,
        GError          *error)
{
  ChimeConsumer *consumer = completion->consumer;
  AsyncSource *source = (AsyncSource *) consumer->source;
  gint pending = COMPLETION_PENDING;

  /* Claim the completion first, then store the result: a second, stray
   * completion can then never overwrite the first one's error. */
  if (__atomic_compare_exchange_n (&completion->state, &pending, COMPLETION_COMPLETING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    {
      completion->error = error;
      __atomic_store_n (&completion->state, COMPLETION_DONE, __ATOMIC_RELEASE);
      /* Completed inside the call: the dispatch loop is looking. Only
       * the dispatching thread finds itself there; a completion from any
       * other thread (a client library's own, as libnats's ack handler)
       * wakes the source. A name compared, not g_main_context_is_owner(),
       * which cost an inline completion a fifth of its time. */
      if (__atomic_load_n (&source->dispatching, __ATOMIC_RELAXED) == chime_dispatch_thread_self ())
        return;
      g_source_set_ready_time (consumer->source, 0);
      return;
    }
  if (pending == COMPLETION_ABANDONED)
    g_log ("chime", G_LOG_LEVEL_INFO, "handler '%s' (%s) completed %s after its timeout",
           consumer->handler->settings.name, consumer->handler->descriptor->name,
           chime_event_type_to_string (chime_event_get_event_type (completion->event)));
  else
    g_critical ("handler '%s' (%s) completed the same %s twice",
                consumer->handler->settings.name, consumer->handler->descriptor->name,
                chime_event_type_to_string (chime_event_get_event_type (completion->event)));
  if (error != NULL)
    g_error_free (error);
}

void
chime_completion_complete (ChimeCompletion *completion)
{
  g_return_if_fail (completion != NULL);
  finish (completion, NULL);
}

void
chime_completion_fail (ChimeCompletion *completion,
                       GError          *error)
{
  g_return_if_fail (completion != NULL);
  if (error == NULL)
    error = g_error_new_literal (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                 "the handler failed without an error");
  finish (completion, error);
}

/* The consumer has finished the event in flight. Its progress is stored,
 * not announced: run() announces it when it stops and every NOTIFY_EVERY
 * events, where a notification per event cost an event about a tenth of
 * its time. */
static void
end_in_flight (ChimeConsumer *consumer)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint64 done = consumer->in_flight_pos + 1;

  consumer->in_flight = FALSE;
  consumer->deadline = 0;
  if (consumer->completion != NULL)
    drop_event (consumer->completion);
  if (d->drop != NULL)
    chime_drop_policy_settle (consumer);
  else
    chime_consumer_store_done (consumer, done);
}

/* Calls the handler for @event, at @pos; @event is borrowed from the
 * ring, or (@owned) a reference the completion takes over. */
static void
start_call (ChimeConsumer *consumer,
            guint64        pos,
            ChimeEvent    *event,
            gboolean       owned,
            gboolean       fallback)
{
  ChimeHandler *handler = consumer->handler;
  ChimeCompletion *completion = consumer->completion;

  if (completion == NULL)
    {
      completion = consumer->completion = g_new0 (ChimeCompletion, 1);
      completion->consumer = consumer;
    }
  if (completion->event != event)
    {
      drop_event (completion);
      completion->event = event;
      completion->owns_event = owned;
    }
  if (completion->error != NULL)
    g_clear_error (&completion->error);
  completion->is_fallback = fallback;
  __atomic_store_n (&completion->state, COMPLETION_PENDING, __ATOMIC_RELEASE);
  consumer->in_flight = TRUE;
  consumer->in_flight_pos = pos;
  /* The events' clock (the monotonic clock, cheaper to read per call). */
  if (!fallback)
    consumer->deadline = handler->settings.timeout_ms > 0
                           ? chime_event_clock_now () + handler->settings.timeout_ms * 1000
                           : 0;
  chime_loop_mark_enter (&consumer->dispatcher->loop_mark, handler, chime_event_get_event_type (event));
  if (fallback)
    chime_handler_call_async_fallback (handler, event, completion);
  else
    chime_handler_call_async (handler, event, completion);
  chime_loop_mark_leave (&consumer->dispatcher->loop_mark);
}

/* Cuts off a call that outlived its deadline. The completion is parked
 * with the dispatcher (a late complete() must still find valid memory). */
static void
abandon (ChimeConsumer *consumer)
{
  ChimeDispatcher *d = consumer->dispatcher;
  ChimeCompletion *completion = consumer->completion;
  g_autoptr (GError) error = NULL;

  error = g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_TIMED_OUT,
                       "did not complete within its timeout of %" G_GINT64_FORMAT " ms",
                       consumer->handler->settings.timeout_ms);
  chime_handler_report_failure (consumer->handler, completion->event, error);
  own_event (completion);
  consumer->completion = NULL;
  g_mutex_lock (&d->async_lock);
  g_ptr_array_add (d->abandoned, completion);
  g_mutex_unlock (&d->async_lock);
  consumer->in_flight = FALSE;
  consumer->deadline = 0;
  if (d->drop != NULL)
    chime_drop_policy_settle (consumer);
  chime_consumer_publish_done (consumer, consumer->in_flight_pos + 1);
}

/* Looks at the call in flight. TRUE when it is over (the consumer may go
 * on), FALSE when it is still pending (the source's ready time is set to
 * its deadline). */
static gboolean
settle_in_flight (ChimeConsumer *consumer)
{
  ChimeCompletion *completion = consumer->completion;
  ChimeHandler *handler = consumer->handler;
  gint state;

  /* A completer in the middle of storing its result is done in a moment. */
  while ((state = __atomic_load_n (&completion->state, __ATOMIC_ACQUIRE)) == COMPLETION_COMPLETING)
    g_thread_yield ();

  if (state == COMPLETION_PENDING)
    {
      gint pending = COMPLETION_PENDING;

      if (consumer->deadline == 0 || g_get_monotonic_time () < consumer->deadline)
        {
          g_source_set_ready_time (consumer->source, consumer->deadline ? consumer->deadline : -1);
          return FALSE;
        }
      if (__atomic_compare_exchange_n (&completion->state, &pending, COMPLETION_ABANDONED, FALSE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
          abandon (consumer);
          return TRUE;
        }
      /* It completed just now. */
      while (__atomic_load_n (&completion->state, __ATOMIC_ACQUIRE) != COMPLETION_DONE)
        g_thread_yield ();
    }

  if (completion->error != NULL && !completion->is_fallback &&
      chime_handler_can_fall_back (handler, completion->event, completion->error))
    {
      /* LangChain's NotImplementedError fallback: retry as llm_start. */
      start_call (consumer, consumer->in_flight_pos, completion->event, completion->owns_event, TRUE);
      return settle_in_flight (consumer);
    }
  chime_handler_count_delivered (handler);
  if (completion->error != NULL)
    chime_handler_report_failure (handler, completion->event, completion->error);
  end_in_flight (consumer);
  return TRUE;
}

/* Position and event for the consumer's next step; FALSE when nothing is
 * published. *event is borrowed (block) or a reference (drop policies). */
static gboolean
next_event (ChimeConsumer *consumer,
            guint64       *pos,
            ChimeEvent   **event,
            gboolean      *fence)
{
  ChimeDispatcher *d = consumer->dispatcher;
  gboolean block = d->drop == NULL;
  const ChimeSlot *slot;

  if (!block)
    {
      guint64 word;

      if (!chime_drop_policy_peek_next (consumer, pos, &word))
        return FALSE;
      *fence = chime_slot_is_fence (word) && (word & consumer->bit);
      *event = NULL;   /* taken with chime_drop_policy_take_next() */
      return TRUE;
    }
  *pos = consumer->done;
  if (chime_dispatcher_published (d) <= *pos)
    return FALSE;
  slot = &d->ring[*pos & d->mask];
  *fence = chime_slot_is_fence (slot->word) && (slot->word & consumer->bit);
  *event = (slot->word & consumer->bit) ? slot->event : NULL;
  return TRUE;
}

static void
run (ChimeConsumer *consumer)
{
  ChimeDispatcher *d = consumer->dispatcher;
  gboolean block = d->drop == NULL;

  for (guint budget = BUDGET; budget > 0; budget--)
    {
      guint64 pos;
      ChimeEvent *event = NULL;
      gboolean fence = FALSE;

      if (!next_event (consumer, &pos, &event, &fence))
        {
          chime_consumer_publish_done (consumer, pos);
          if (chime_consumer_go_idle (consumer, pos))
            return;
          continue;
        }
      if (fence && !chime_consumer_pass_fence (consumer, pos))
        return;
      if (!block)
        {
          ChimeEventType type;
          if (!chime_drop_policy_take_next (consumer, &pos, &event, &type))
            continue;
        }
      if (event == NULL)
        {
          if (block)
            chime_consumer_store_done (consumer, pos + 1);
          continue;
        }
      /* Under drop policies the event taken is a reference: the
       * completion's now. */
      start_call (consumer, pos, event, !block, FALSE);
      if (!settle_in_flight (consumer))
        {
          /* Pending: what came before it is done. */
          chime_consumer_notify_progress (d);
          return;
        }
      if ((pos + 1) % NOTIFY_EVERY == 0)
        chime_consumer_notify_progress (d);
    }
  /* Budget spent: continue on the next loop iteration. */
  chime_consumer_publish_done (consumer, block ? consumer->done : 0);
  g_source_set_ready_time (consumer->source, 0);
}

static gboolean
async_source_dispatch (GSource    *source,
                       GSourceFunc callback,
                       gpointer    user_data)
{
  AsyncSource *self = (AsyncSource *) source;
  ChimeConsumer *consumer = self->consumer;

  g_source_set_ready_time (source, -1);
  __atomic_store_n (&self->dispatching, chime_dispatch_thread_self (), __ATOMIC_RELAXED);
  CHIME_OWNER_TAKE (consumer);
  if (!consumer->in_flight || settle_in_flight (consumer))
    run (consumer);
  CHIME_OWNER_DROP_IF_MINE (consumer);
  __atomic_store_n (&self->dispatching, NULL, __ATOMIC_RELAXED);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs async_source_funcs = {
  .dispatch = async_source_dispatch,
};

/* ChimeRouteFuncs.init: the consumer's source, on the dispatcher's
 * context. */
static void
async_route_init (ChimeConsumer *consumer)
{
  GSource *source = g_source_new (&async_source_funcs, sizeof (AsyncSource));
  g_autofree char *name = g_strdup_printf ("chime async handler '%s'",
                                           consumer->handler->settings.name);

  ((AsyncSource *) source)->consumer = consumer;
  g_source_set_name (source, name);
  consumer->source = source;
  g_source_attach (consumer->source, consumer->dispatcher->main_context);
}

/* ChimeRouteFuncs.clear. */
static void
async_route_clear (ChimeConsumer *consumer)
{
  g_source_destroy (consumer->source);
  g_clear_pointer (&consumer->source, g_source_unref);
  g_clear_pointer (&consumer->completion, chime_completion_free);
}

/* ChimeRouteFuncs.schedule: the next main-loop iteration dispatches it. */
static void
async_route_schedule (ChimeConsumer *consumer)
{
  g_source_set_ready_time (consumer->source, 0);
}

const ChimeRouteFuncs chime_async_route = {
  .schedule = async_route_schedule,
  .init = async_route_init,
  .clear = async_route_clear,
};
