/* The sync route: drain tasks on the GThreadPool.
 *
 * A drain task owns one consumer (state RUNNING) and handles everything
 * published for it, in order, then spins briefly and goes idle. One pool
 * push therefore serves a whole burst of events, and because only the
 * owner of a RUNNING consumer calls its handler, a handler never runs
 * concurrently with itself. After a quantum of events the task re-queues
 * itself, so that with fewer threads than handlers every handler gets
 * its turn.
 *
 * The consumer state machine (consumer.c) reaches this file only through
 * chime_sync_route: schedule pushes a drain task, run_until lets a waiting
 * emitter drain the consumer on its own thread (caller_runs). */
#include "config.h"

#include "sync-route.h"
#include "consumer.h"
#include "drop-policy.h"
#include "plugins/handler-call.h"

/* Events per turn before yielding the thread to other handlers, when
 * some are waiting for a thread. */
#define QUANTUM 1024
/* Progress is announced to waiters every this many events. */
#define NOTIFY_EVERY 64
/* Waiting on an empty ring before going idle: up to IDLE_ROUNDS looks,
 * BACKOFF_PAUSES pauses apart (a few microseconds in all). Looking less
 * often than every event lets the emitter fill a few slots before the
 * consumer pulls their cache lines over, so lines cross cores once per
 * batch rather than once per event. */
#define IDLE_ROUNDS 16
#define BACKOFF_PAUSES 256

/* Queues the consumer on the pool (ChimeRouteFuncs.schedule). */
static void
sync_route_schedule (ChimeConsumer *consumer)
{
  /* Counted here rather than asked of the pool, which refuses
   * questions while it shuts down. */
  __atomic_add_fetch (&consumer->dispatcher->n_queued, 1, __ATOMIC_RELAXED);
  g_thread_pool_push (consumer->dispatcher->pool, consumer, NULL);
}

/* Whether other handlers wait for a pool thread. */
static gboolean
others_waiting (ChimeDispatcher *d)
{
  return __atomic_load_n (&d->n_queued, __ATOMIC_RELAXED) > 0;
}

/* Waits briefly for position @pos to be published; TRUE when it was. A
 * consumer never spins while other handlers wait for its thread. */
static gboolean
spin_until_published (ChimeDispatcher *d,
                      guint64          pos)
{
  /* With caller_runs the next event's emitter runs us itself. */
  if (d->caller_runs)
    return chime_dispatcher_published (d) > pos;
  for (guint round = 0; round < IDLE_ROUNDS; round++)
    {
      if (others_waiting (d))
        return chime_dispatcher_published (d) > pos;
      for (guint i = 0; i < BACKOFF_PAUSES; i++)
        chime_cpu_relax ();
      if (chime_dispatcher_published (d) > pos)
        return TRUE;
    }
  return FALSE;
}

/* After a quantum, gives the thread to other handlers waiting for one:
 * re-queues the consumer at the back of the pool's queue while it has
 * work left. TRUE
 * when it did (the caller must stop). Without work left the caller goes on
 * to its idle path instead: a consumer is never queued with nothing to do,
 * so a flush that saw it done can never race with a late re-queue. */
static gboolean
yield_turn (ChimeConsumer *consumer,
            guint64        pos)
{
  ChimeDispatcher *d = consumer->dispatcher;

  if (chime_dispatcher_published (d) <= pos || !others_waiting (d))
    return FALSE;
  chime_consumer_publish_done (consumer, pos);
  CHIME_OWNER_DROP (consumer);
  sync_route_schedule (consumer);
  return TRUE;
}

/* A handler moved to the pool for being slow (caller_runs) is timed now
 * and then; once a call is fast again, waiting emitters run it again. */
static void
call_timed (ChimeConsumer  *consumer,
            ChimeEventType  type,
            ChimeEvent     *event)
{
  gboolean timed = (++consumer->inline_runs % SLOW_SAMPLE_EVERY) == 0;
  gint64 started = timed ? g_get_monotonic_time () : 0;

  chime_handler_call_sync (consumer->handler, type, event, NULL);
  if (timed && g_get_monotonic_time () - started <= SLOW_CALL_US)
    {
      consumer->slow = FALSE;
      consumer->slow_samples = 0;
    }
}

/* Block policy: lock-free; the ring keeps each event alive until every
 * consumer's `done` has passed it. The published cursor is read once per
 * batch, and the slots of a batch are read without waiting on each.
 * Handles positions below @limit; returns TRUE when it stopped there still
 * owning the consumer, FALSE when it gave the consumer up (idle, parked at
 * a fence, or re-queued). Also the route's run_until, for an emitter that
 * runs the handler itself (caller_runs). */
static gboolean
run_block (ChimeConsumer *consumer,
           guint64        limit)
{
  ChimeDispatcher *d = consumer->dispatcher;
  ChimeHandler *handler = consumer->handler;
  const guint64 bit = consumer->bit;
  guint64 pos = consumer->done;
  guint64 available = chime_dispatcher_published (d);
  const guint64 batch_mask = chime_dispatcher_batch (d) - 1;
  guint budget = QUANTUM;

  for (;;)
    {
      const ChimeSlot *slot;
      guint64 word;

      if (pos >= limit)
        {
          if (pos >= available)
            chime_handler_caught_up (handler);
          chime_consumer_publish_done (consumer, pos);
          return TRUE;
        }
      if (pos >= available)
        {
          available = chime_dispatcher_published (d);
          if (pos < available)
            continue;
          chime_handler_caught_up (handler);
          chime_consumer_publish_done (consumer, pos);
          if (spin_until_published (d, pos))
            continue;
          if (chime_consumer_go_idle (consumer, pos))
            return FALSE;
          /* Claimed back; someone may have run us meanwhile. */
          pos = consumer->done;
          continue;
        }
      slot = &d->ring[pos & d->mask];
      word = slot->word;
      if (word & bit)
        {
          if (chime_slot_is_fence (word) && !chime_consumer_pass_fence (consumer, pos))
            return FALSE;
          if (G_UNLIKELY (consumer->slow))
            call_timed (consumer, chime_slot_type (word), slot->event);
          else
            chime_handler_call_sync_inline (handler, chime_slot_type (word), slot->event);
        }
      pos++;
      /* Progress a batch at a time (chime_dispatcher_batch), announced
       * to waiters every NOTIFY_EVERY events. */
      if ((pos & batch_mask) == 0)
        {
          if (pos % NOTIFY_EVERY == 0)
            chime_consumer_publish_done (consumer, pos);
          else
            chime_consumer_store_done (consumer, pos);
        }
      if (--budget == 0 && yield_turn (consumer, pos))
        return FALSE;
      if (budget == 0)
        budget = QUANTUM;
    }
}

/* Drop policies: each event is taken under the consumer's lock with its own
 * reference, because a dropping emitter may move the cursor meanwhile (and,
 * under drop_newest, move queued events to the consumer's overflow). The
 * loop stays here rather than in drop-policy.c because it is a drain task:
 * it spins, yields its turn and idles as run_block() does; the policy's
 * part of it is the peek, take and settle hooks. */
static void
run_locked (ChimeConsumer *consumer)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint budget = QUANTUM;

  for (;;)
    {
      guint64 pos;
      ChimeEvent *event = NULL;
      ChimeEventType type;
      guint64 word;

      if (!chime_drop_policy_peek_next (consumer, &pos, &word))
        {
          chime_handler_caught_up (consumer->handler);
          chime_consumer_publish_done (consumer, pos);
          if (spin_until_published (d, pos))
            continue;
          if (chime_consumer_go_idle (consumer, pos))
            return;
          continue;
        }
      if (chime_slot_is_fence (word) && (word & consumer->bit) &&
          !chime_consumer_pass_fence (consumer, pos))
        return;
      if (!chime_drop_policy_take_next (consumer, &pos, &event, &type))
        continue;
      if (event != NULL)
        {
          chime_handler_call_sync (consumer->handler, type, event, NULL);
          chime_event_unref (event);
          chime_drop_policy_settle (consumer);
        }
      if ((pos + 1) % NOTIFY_EVERY == 0)
        chime_consumer_publish_done (consumer, pos + 1);
      if (--budget == 0 && yield_turn (consumer, pos + 1))
        return;
      if (budget == 0)
        budget = QUANTUM;
    }
}

void
chime_sync_route_run (gpointer data,
                      gpointer user_data)
{
  ChimeConsumer *consumer = data;

  __atomic_sub_fetch (&consumer->dispatcher->n_queued, 1, __ATOMIC_RELAXED);
  CHIME_OWNER_TAKE (consumer);
  if (consumer->dispatcher->drop == NULL)
    run_block (consumer, G_MAXUINT64);
  else
    run_locked (consumer);
}

const ChimeRouteFuncs chime_sync_route = {
  .schedule = sync_route_schedule,
  .run_until = run_block,
};
