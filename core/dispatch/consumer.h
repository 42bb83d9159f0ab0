/* The consumer state machine (consumer.c): claiming, scheduling, going
 * idle, fences, and the progress notifications that wake waiters. */
#pragma once

#include "dispatch-types.h"
#include "barrier.h"

/* Makes a consumer that was claimed (RUNNING) run, on its route. */
static inline void
chime_consumer_schedule (ChimeConsumer *consumer)
{
  consumer->route->schedule (consumer);
}

/* Claims an IDLE consumer and schedules it. Inline: emitters look at
 * every handler of every event they publish, and a running consumer
 * costs only this relaxed load. */
static inline void
chime_consumer_wake (ChimeConsumer *consumer)
{
  guint64 idle = CONSUMER_IDLE;

  if (__atomic_load_n (&consumer->state, __ATOMIC_RELAXED) == CONSUMER_IDLE &&
      __atomic_compare_exchange_n (&consumer->state, &idle, CONSUMER_RUNNING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    chime_consumer_schedule (consumer);
}

/* The consumer found nothing at @pos: become IDLE unless something arrived
 * meanwhile. TRUE when it went idle (the caller must stop), FALSE when it
 * claimed itself back (the caller continues, from `done`: while it was
 * IDLE another thread may have owned it and moved on). */
gboolean chime_consumer_go_idle          (ChimeConsumer   *consumer,
                                          guint64          pos);
/* The consumer reached a fence at @pos it must handle. TRUE when every
 * handler has handled everything before it; else the consumer parks and
 * FALSE is returned (the caller must stop: whoever completes the barrier
 * schedules it again). */
static inline gboolean chime_consumer_pass_fence (ChimeConsumer *consumer,
                                                  guint64        pos);
/* chime_consumer_pass_fence when some handler is behind: helps it, or
 * parks. */
gboolean chime_consumer_pass_fence_behind (ChimeConsumer  *consumer,
                                           guint64         pos);

/* The waking side of chime_consumer_notify_progress, when some waiter is
 * registered. */
void     chime_consumer_notify_waiters   (ChimeDispatcher *d);

/* Wakes whoever waits on consumer progress: emitters (blocked, iterating
 * the main loop, or with a callback) and parked consumers. Every waiter
 * registers in a count, runs the heavy barrier and then looks (wait.c,
 * chime_consumer_pass_fence); so this side, on every awaited event, needs
 * only the light one (barrier.h), where a full fence cost an awaited event
 * a fifth of its time. Inline: with nobody waiting, which is the common
 * case, it is four loads of one cache line and no call. */
static inline void
chime_consumer_notify_progress (ChimeDispatcher *d)
{
  chime_barrier_light ();
  if (G_UNLIKELY ((__atomic_load_n (&d->n_parked, __ATOMIC_RELAXED) |
                   __atomic_load_n (&d->n_cond_waiters, __ATOMIC_RELAXED) |
                   __atomic_load_n (&d->n_loop_waiters, __ATOMIC_ACQUIRE) |
                   __atomic_load_n (&d->n_async_waiters, __ATOMIC_RELAXED)) != 0))
    chime_consumer_notify_waiters (d);
}
/* chime_consumer_wake_parked when some consumer is parked. */
void     chime_consumer_unpark           (ChimeDispatcher *d);

/* Schedules every parked consumer whose fence barrier has been passed.
 * Inline: nobody is parked in the common case, and a parker counts itself
 * before it parks and looks at the barrier again after its heavy barrier,
 * so it cannot be left parked by this relaxed look (as in
 * chime_consumer_notify_progress). */
static inline void
chime_consumer_wake_parked (ChimeDispatcher *d)
{
  if (__atomic_load_n (&d->n_parked, __ATOMIC_RELAXED) > 0)
    chime_consumer_unpark (d);
}
/* Moves idle consumers over positions below @target that are not for
 * them, and schedules (or, caller_runs, runs) those with work there. */
void     chime_consumer_help_laggards    (ChimeDispatcher *d,
                                          guint64          target);

/* Publishes the consumer's progress and wakes whoever waits on it. Inline:
 * an awaited event publishes twice (at its fence and when it is done). */
static inline void
chime_consumer_publish_done (ChimeConsumer *consumer,
                             guint64        done)
{
  /* Under drop policies `done` moves under the consumer's lock (a
   * dropping emitter may move it too); only notify here. */
  if (consumer->dispatcher->drop == NULL)
    chime_consumer_store_done (consumer, done);
  chime_consumer_notify_progress (consumer->dispatcher);
}

/* Whether every consumer has handled everything before @pos. */
static inline gboolean
chime_consumer_barrier_passed (ChimeDispatcher *d,
                               guint64          pos)
{
  for (guint i = 0; i < d->n_consumers; i++)
    if (__atomic_load_n (&d->consumers[i]->done, __ATOMIC_ACQUIRE) < pos)
      return FALSE;
  return TRUE;
}

static inline gboolean
chime_consumer_pass_fence (ChimeConsumer *consumer,
                           guint64        pos)
{
  chime_consumer_publish_done (consumer, pos);
  /* Every handler there already (always, with one handler, or awaited):
   * helping would find nobody behind. */
  if (G_LIKELY (chime_consumer_barrier_passed (consumer->dispatcher, pos)))
    return TRUE;
  return chime_consumer_pass_fence_behind (consumer, pos);
}
