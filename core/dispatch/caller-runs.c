/* The caller-runs short path: an awaited event handled at once by its
 * emitter, on its own thread, without entering the ring (caller_runs, as
 * LangChain's sync manager calls sync handlers on the caller's thread).
 *
 * An awaited event's emitter waits until every handler has handled it and
 * everything before it. When every handler is a sync one, idle, and has
 * handled everything the ring holds, that wait is the handler calls
 * themselves: this file claims every consumer, calls the handlers the
 * event is for, and gives the consumers back. No ring position is taken,
 * so there is no slot to fill, no `done` to store and no progress to
 * announce: nothing the ring holds moved. Anything else (a consumer owned
 * by another thread, one with work queued, an async or a slow handler)
 * leaves the event to the ring and the general wait (wait.c), which are
 * what they always were.
 *
 * The rules hold as on the ring. A handler is called only while its
 * consumer is owned (the CAS to RUNNING), so never concurrently with
 * itself. Owning every consumer, each at `head`, this thread has seen
 * every earlier event handled by every handler (the fence rule, and this
 * thread's own order), and no handler can take a later event until it
 * lets go: the event is where a ring position claimed now would be. */
#include "config.h"

#include "dispatcher.h"
#include "consumer.h"
#include "events/event-clock.h"
#include "plugins/handler-call.h"

/* Claims @consumer when it is idle, sync, not found slow, and has handled
 * every position below @head and no more. TRUE when this thread owns it. */
static inline gboolean
claim_at (ChimeConsumer *consumer,
          guint64        head)
{
  guint64 idle = CONSUMER_IDLE;

  if (consumer->is_async ||
      __atomic_load_n (&consumer->state, __ATOMIC_RELAXED) != CONSUMER_IDLE ||
      !__atomic_compare_exchange_n (&consumer->state, &idle, CONSUMER_RUNNING, FALSE,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    return FALSE;
  CHIME_OWNER_TAKE (consumer);
  /* Read as its owner: `slow` is the owner's, and another owner may have
   * moved `done` since @head was read. */
  if (G_LIKELY (consumer->done == head && !consumer->slow))
    return TRUE;
  CHIME_OWNER_DROP (consumer);
  __atomic_store_n (&consumer->state, CONSUMER_IDLE, __ATOMIC_RELEASE);
  return FALSE;
}

/* Gives up @consumer, as go_idle (consumer.c) does under caller_runs: a
 * release store, since waiting emitters look for idle consumers
 * themselves. An event published at or after @head meanwhile may have an
 * emitter that saw the consumer owned and went on waiting: claimed back,
 * the consumer goes to the pool for it, as help_consumer's does. */
static inline void
release (ChimeConsumer *consumer,
         guint64        head)
{
  guint64 idle = CONSUMER_IDLE;

  CHIME_OWNER_DROP (consumer);
  __atomic_store_n (&consumer->state, CONSUMER_IDLE, __ATOMIC_RELEASE);
  if (G_UNLIKELY (chime_dispatcher_is_published (consumer->dispatcher, head)) &&
      __atomic_compare_exchange_n (&consumer->state, &idle, CONSUMER_RUNNING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    chime_consumer_schedule (consumer);
}

/* One call in SLOW_SAMPLE_EVERY is timed, as help_consumer times the runs
 * it makes: a handler slow SLOW_SAMPLES_NEEDED times in a row moves to the
 * pool, so that several slow handlers work in parallel. */
static __attribute__ ((noinline)) void
call_sampled (ChimeConsumer *consumer,
              ChimeEvent    *event)
{
  gint64 started = chime_event_clock_now ();

  chime_handler_call_sync (consumer->handler, event->type, event, NULL);
  if (chime_event_clock_now () - started <= SLOW_CALL_US)
    consumer->slow_samples = 0;
  else if (++consumer->slow_samples >= SLOW_SAMPLES_NEEDED)
    consumer->slow = TRUE;
}

/* Calls @consumer's handler, which this thread owns, for @event. */
static inline void
call (ChimeConsumer *consumer,
      ChimeEvent    *event)
{
  if (G_UNLIKELY ((++consumer->inline_runs % SLOW_SAMPLE_EVERY) == 0))
    call_sampled (consumer, event);
  else
    chime_handler_call_sync_inline (consumer->handler, event->type, event);
  /* Nothing is queued for it: an isolated handler's host gets the event
   * now, not with a later one. */
  chime_handler_caught_up (consumer->handler);
}

gboolean
chime_dispatcher_run_now (ChimeDispatcher *d,
                          ChimeEvent      *event,
                          guint64          call_mask)
{
  guint64 head;
  guint claimed;

  if (!d->caller_runs)
    return FALSE;
  head = chime_dispatcher_head (d);
  for (claimed = 0; claimed < d->n_consumers; claimed++)
    if (!claim_at (d->consumers[claimed], head))
      break;
  if (G_LIKELY (claimed == d->n_consumers))
    for (guint i = 0; i < d->n_consumers; i++)
      if (call_mask & d->consumers[i]->bit)
        call (d->consumers[i], event);
  for (guint i = 0; i < claimed; i++)
    release (d->consumers[i], head);
  if (claimed < d->n_consumers)
    return FALSE;
  /* Handlers that kept the event hold references of their own. */
  chime_event_unref_from_ring (event);
  return TRUE;
}
