/* The consumer state machine: who owns a consumer, and who wakes it.
 *
 * A consumer is IDLE, RUNNING (owned by exactly one thread, or queued on
 * its route to run) or PARKED at a fence (dispatch-types.h). Whoever
 * finds work for an idle consumer claims it with a CAS and schedules it
 * on its route (ChimeRouteFuncs: the pool for sync handlers, the main
 * loop for async ones); this file calls a route only through that
 * vtable, so the routes can use the state machine without a cycle.
 *
 * Consumers sleep (IDLE) when they catch up. Waking uses the Dekker
 * pattern: the emitter publishes then reads the consumer's state; the
 * consumer stores IDLE then reads `published`. The barrier each side needs
 * between its store and its load is asymmetric (barrier.h): a compiler
 * barrier for emitters, on every event (ring.c), and membarrier(2) for a
 * consumer going to sleep, which is rare (chime_consumer_go_idle). See
 * docs/architecture.md. */
#include "config.h"

#include "consumer.h"
#include "barrier.h"
#include "events/event-clock.h"

void
chime_consumer_unpark (ChimeDispatcher *d)
{
  for (guint i = 0; i < d->n_consumers; i++)
    {
      ChimeConsumer *consumer = d->consumers[i];
      guint64 state = __atomic_load_n (&consumer->state, __ATOMIC_ACQUIRE);

      if (CONSUMER_STATE_KIND (state) != CONSUMER_PARKED ||
          !chime_consumer_barrier_passed (d, CONSUMER_PARKED_POS (state)))
        continue;
      if (__atomic_compare_exchange_n (&consumer->state, &state, CONSUMER_RUNNING, FALSE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        {
          __atomic_sub_fetch (&d->n_parked, 1, __ATOMIC_SEQ_CST);
          chime_consumer_schedule (consumer);
        }
    }
}

/* Progress was stored and some waiter is registered
 * (chime_consumer_notify_progress, consumer.h, made the barrier and the
 * first look). */
void
chime_consumer_notify_waiters (ChimeDispatcher *d)
{
  chime_consumer_wake_parked (d);
  if (__atomic_load_n (&d->n_cond_waiters, __ATOMIC_RELAXED) > 0)
    {
      g_mutex_lock (&d->wait_lock);
      g_cond_broadcast (&d->wait_cond);
      g_mutex_unlock (&d->wait_lock);
    }
  /* Not the loop waiter itself: an async handler's progress is made
   * inside its own iteration, which returns to its look at the end of
   * the dispatch. Waking it would cost a write(2) per event. */
  if (__atomic_load_n (&d->n_loop_waiters, __ATOMIC_ACQUIRE) > 0 &&
      __atomic_load_n (&d->loop_waiter, __ATOMIC_RELAXED) != chime_dispatch_thread_self ())
    g_main_context_wakeup (d->main_context);
  if (__atomic_load_n (&d->n_async_waiters, __ATOMIC_RELAXED) > 0)
    g_source_set_ready_time (d->progress_source, 0);
}

/* chime_consumer_go_idle, inlined where an emitter that ran a handler
 * itself (caller_runs) gives it up, once per awaited event. */
static inline __attribute__ ((always_inline)) gboolean
go_idle (ChimeConsumer *consumer,
         guint64        pos)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint64 idle = CONSUMER_IDLE;

  CHIME_OWNER_DROP (consumer);
  /* Pairs with the emitter's light barrier in fill_slot() (ring.c). Not
   * needed when emitters do not wake sync consumers but run them
   * (caller_runs): the emitter's wait loop looks for idle consumers with
   * work itself, and looks again before it sleeps, so a plain release
   * store will do there (a locked one per awaited event otherwise). */
  if (d->caller_runs && !consumer->is_async)
    __atomic_store_n (&consumer->state, CONSUMER_IDLE, __ATOMIC_RELEASE);
  else
    {
      __atomic_store_n (&consumer->state, CONSUMER_IDLE, __ATOMIC_SEQ_CST);
      chime_barrier_heavy ();
    }
  if (!chime_dispatcher_is_published (d, pos))
    return TRUE;
  /* An event arrived between our last look and going idle, and its
   * emitter may have seen us still running: claim ourselves back. */
  if (__atomic_compare_exchange_n (&consumer->state, &idle, CONSUMER_RUNNING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    {
      CHIME_OWNER_TAKE (consumer);
      return FALSE;
    }
  return TRUE;
}

gboolean
chime_consumer_go_idle (ChimeConsumer *consumer,
                        guint64        pos)
{
  return go_idle (consumer, pos);
}

/* Advances an IDLE consumer over positions below @target that are not for
 * it, so that a handler that ignores tokens never needs a thread just to
 * skip them. Stops at the first position it must handle and schedules it
 * there. Block policy only (drop policies move cursors under a lock). */
static void
help_consumer (ChimeConsumer *consumer,
               guint64        target)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint64 idle = CONSUMER_IDLE;
  guint64 start, pos, published;

  if (__atomic_load_n (&consumer->state, __ATOMIC_RELAXED) != CONSUMER_IDLE ||
      __atomic_load_n (&consumer->done, __ATOMIC_ACQUIRE) >= target)
    return;
  if (d->drop != NULL)
    {
      chime_consumer_wake (consumer);
      return;
    }
  if (!__atomic_compare_exchange_n (&consumer->state, &idle, CONSUMER_RUNNING, FALSE,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    return;
  CHIME_OWNER_TAKE (consumer);

  start = pos = consumer->done;
  published = chime_dispatcher_published (d);
  if (published < target)
    target = published;
  while (pos < target && !(d->ring[pos & d->mask].word & consumer->bit))
    pos++;
  if (pos != start)
    {
      chime_consumer_store_done (consumer, pos);
      chime_consumer_notify_progress (d);
    }
  if (pos < target && d->caller_runs && !consumer->is_async && !consumer->slow)
    {
      /* Its work is what we wait for: do it here rather than wake a
       * thread and sleep until it is done. */
      gboolean timed = (++consumer->inline_runs % SLOW_SAMPLE_EVERY) == 0;
      gint64 started = timed ? chime_event_clock_now () : 0;
      gboolean still_owned = consumer->route->run_until (consumer, target);

      /* The timing is the owner's to write: a run that gave the consumer
       * up (idle, parked, re-queued) may already have another owner. */
      if (timed && still_owned)
        {
          if (chime_event_clock_now () - started <= SLOW_CALL_US)
            consumer->slow_samples = 0;
          else if (++consumer->slow_samples >= SLOW_SAMPLES_NEEDED)
            consumer->slow = TRUE;
        }
      if (!still_owned)
        return;
      pos = consumer->done;
    }
  if (!go_idle (consumer, pos))
    {
      CHIME_OWNER_DROP (consumer);
      chime_consumer_schedule (consumer);
    }
}

void
chime_consumer_help_laggards (ChimeDispatcher *d,
                              guint64          target)
{
  for (guint i = 0; i < d->n_consumers; i++)
    help_consumer (d->consumers[i], target);
}

gboolean
chime_consumer_pass_fence_behind (ChimeConsumer *consumer,
                                  guint64        pos)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint64 parked = CONSUMER_PARKED_AT (pos);

  chime_consumer_help_laggards (d, pos);
  if (chime_consumer_barrier_passed (d, pos))
    return TRUE;

  __atomic_add_fetch (&d->n_parked, 1, __ATOMIC_SEQ_CST);
  CHIME_OWNER_DROP (consumer);
  __atomic_store_n (&consumer->state, parked, __ATOMIC_SEQ_CST);
  /* The last consumer to arrive may have looked before we parked: the
   * heavy side of notify_progress's barrier. */
  chime_barrier_heavy ();
  if (chime_consumer_barrier_passed (d, pos) &&
      __atomic_compare_exchange_n (&consumer->state, &parked, CONSUMER_RUNNING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    {
      CHIME_OWNER_TAKE (consumer);
      __atomic_sub_fetch (&d->n_parked, 1, __ATOMIC_SEQ_CST);
      return TRUE;
    }
  return FALSE;
}
