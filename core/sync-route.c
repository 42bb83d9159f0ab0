/* The sync route: drain tasks on the GThreadPool.
 *
 * A drain task owns one consumer (state RUNNING) and handles everything
 * published for it, in order, then spins briefly and goes idle. One pool
 * push therefore serves a whole burst of events, and because only the
 * owner of a RUNNING consumer calls its handler, a handler never runs
 * concurrently with itself. After a quantum of events the task re-queues
 * itself, so that with fewer threads than handlers every handler gets
 * its turn. */
#include "config.h"

#include "dispatcher-private.h"

/* Events per turn before yielding the thread to other handlers. */
#define QUANTUM 8192
/* Progress is announced to waiters every this many events. */
#define NOTIFY_EVERY 64
/* Spins on an empty ring before going idle (a few microseconds). */
#define IDLE_SPINS 256

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

static gboolean
spin_until_published (ChimeSlot *slot,
                      guint64    pos)
{
  for (guint i = 0; i < IDLE_SPINS; i++)
    {
      cpu_relax ();
      if (__atomic_load_n (&slot->seq, __ATOMIC_ACQUIRE) == pos)
        return TRUE;
    }
  return FALSE;
}

/* Block policy: lock-free; the ring keeps each event alive until every
 * consumer's `done` has passed it. */
static void
run_block (ChimeConsumer *consumer)
{
  ChimeDispatcher *d = consumer->dispatcher;
  ChimeHandler *handler = consumer->handler;
  const guint64 bit = consumer->bit;
  guint64 pos = consumer->done;
  guint budget = QUANTUM;

  for (;;)
    {
      ChimeSlot *slot = &d->ring[pos & d->mask];

      if (__atomic_load_n (&slot->seq, __ATOMIC_ACQUIRE) != pos)
        {
          chime_consumer_publish_done (consumer, pos);
          if (spin_until_published (slot, pos))
            continue;
          if (chime_consumer_go_idle (consumer, pos))
            return;
          /* Claimed back; someone may have run us meanwhile. */
          pos = consumer->done;
          continue;
        }
      if (slot->mask & bit)
        {
          if ((slot->flags & SLOT_FENCE) && !chime_consumer_pass_fence (consumer, pos))
            return;
          chime_handler_call_sync (handler, slot->event, NULL);
        }
      pos++;
      chime_consumer_store_done (consumer, pos);
      if (pos % NOTIFY_EVERY == 0)
        chime_consumer_publish_done (consumer, pos);
      if (--budget == 0)
        {
          chime_consumer_publish_done (consumer, pos);
          chime_consumer_schedule (consumer);
          return;
        }
    }
}

/* Drop policies: each event is taken under the consumer's lock with its own
 * reference, because a dropping emitter may move the cursor meanwhile. */
static void
run_locked (ChimeConsumer *consumer)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint budget = QUANTUM;

  for (;;)
    {
      guint64 pos = __atomic_load_n (&consumer->read, __ATOMIC_ACQUIRE);
      ChimeSlot *slot = &d->ring[pos & d->mask];
      ChimeEvent *event = NULL;
      guint32 flags = 0;

      if (__atomic_load_n (&slot->seq, __ATOMIC_ACQUIRE) != pos)
        {
          chime_consumer_publish_done (consumer, pos);
          if (spin_until_published (slot, pos))
            continue;
          if (chime_consumer_go_idle (consumer, pos))
            return;
          continue;
        }
      if ((slot->flags & SLOT_FENCE) && (slot->mask & consumer->bit) &&
          !chime_consumer_pass_fence (consumer, pos))
        return;
      if (!chime_consumer_take_locked_next (consumer, &pos, &event, &flags))
        continue;
      if (event != NULL)
        {
          chime_handler_call_sync (consumer->handler, event, NULL);
          chime_event_unref (event);
          g_mutex_lock (&consumer->lock);
          chime_consumer_store_done (consumer, consumer->read);
          g_mutex_unlock (&consumer->lock);
        }
      if ((pos + 1) % NOTIFY_EVERY == 0)
        chime_consumer_publish_done (consumer, pos + 1);
      if (--budget == 0)
        {
          chime_consumer_publish_done (consumer, pos + 1);
          chime_consumer_schedule (consumer);
          return;
        }
    }
}

void
chime_sync_route_run (gpointer data,
                      gpointer user_data)
{
  ChimeConsumer *consumer = data;

  if (consumer->dispatcher->on_full == CHIME_ON_FULL_BLOCK)
    run_block (consumer);
  else
    run_locked (consumer);
}
