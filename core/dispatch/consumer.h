/* The consumer state machine (consumer.c): claiming, scheduling, going
 * idle, fences, and the progress notifications that wake waiters. */
#pragma once

#include "dispatch-types.h"

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

/* Publishes the consumer's progress and wakes whoever waits on it. */
void     chime_consumer_publish_done     (ChimeConsumer   *consumer,
                                          guint64          done);
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
gboolean chime_consumer_pass_fence       (ChimeConsumer   *consumer,
                                          guint64          pos);

/* Wakes whoever waits on consumer progress: emitters (blocked, iterating
 * the main loop, or with a callback) and parked consumers. */
void     chime_consumer_notify_progress  (ChimeDispatcher *d);
/* Schedules every parked consumer whose fence barrier has been passed. */
void     chime_consumer_wake_parked      (ChimeDispatcher *d);
/* Moves idle consumers over positions below @target that are not for
 * them, and schedules (or, caller_runs, runs) those with work there. */
void     chime_consumer_help_laggards    (ChimeDispatcher *d,
                                          guint64          target);
