/* The non-blocking on_full policies: drop_newest and drop_oldest.
 *
 * Under the block policy an emitter with no room waits (ring.c, wait.c).
 * A drop policy never does: the ring moves on past a consumer a whole
 * ring behind, from the emitter's thread, under that consumer's lock.
 * drop_oldest loses (and counts) that consumer's oldest positions;
 * drop_newest denies new events to a handler too far behind and keeps
 * what the ring needs again in the consumer's overflow queue. Because an
 * emitter may move a consumer's cursors, consumers under these policies
 * take each event under their lock with a reference of their own
 * (chime_drop_policy_take_next), release ring slots by their `read`
 * cursor rather than `done`, and move `done` under the lock.
 *
 * This is the only file that knows which policy is in force; the others
 * only test the dispatcher's `drop` for NULL (the block policy) and call
 * the hooks of drop-policy.h when it is set, so all the block policy's
 * hot path pays for these policies is that test. See
 * docs/architecture.md. */
#include "config.h"

#include "drop-policy.h"
#include "consumer.h"

struct _ChimeDropPolicy {
  /* drop_newest: what the ring needs again moves to the consumer's
   * overflow queue; drop_oldest loses it. */
  gboolean keeps_queued;
};

static const ChimeDropPolicy drop_oldest_policy = { .keeps_queued = FALSE };
static const ChimeDropPolicy drop_newest_policy = { .keeps_queued = TRUE };

guint64
chime_drop_policy_setup (ChimeDispatcher *d,
                         ChimeOnFull      on_full,
                         guint64          queue_limit)
{
  d->newest_limit = queue_limit;
  if (on_full == CHIME_ON_FULL_BLOCK)
    {
      d->drop = NULL;
      return queue_limit;
    }
  if (on_full != CHIME_ON_FULL_DROP_NEWEST)
    {
      d->drop = &drop_oldest_policy;
      return queue_limit;
    }
  d->drop = &drop_newest_policy;
  /* drop_newest keeps room beyond the limit so the ring rarely has to drop
   * old positions as well. */
  return 2 * queue_limit;
}

/* An event kept for a drop_newest consumer outside the ring. */
typedef struct {
  guint64     pos;
  guint64     word;
  ChimeEvent *event;
} ChimeOverflowEntry;

/* Where the consumer's `done` may stand once nothing is in flight: its
 * oldest overflow entry, else its ring cursor. Under @lock. */
static guint64
pending_locked (ChimeConsumer *consumer)
{
  const ChimeOverflowEntry *oldest = g_queue_peek_head (&consumer->overflow);

  return oldest != NULL ? oldest->pos : consumer->read;
}

gboolean
chime_drop_policy_peek_next (ChimeConsumer *consumer,
                             guint64       *pos,
                             guint64       *word)
{
  ChimeDispatcher *d = consumer->dispatcher;
  const ChimeOverflowEntry *oldest;
  gboolean found;

  g_mutex_lock (&consumer->lock);
  oldest = g_queue_peek_head (&consumer->overflow);
  if (oldest != NULL)
    {
      *pos = oldest->pos;
      *word = oldest->word;
      found = TRUE;
    }
  else
    {
      *pos = consumer->read;
      found = chime_dispatcher_is_published (d, *pos);
      *word = found ? d->ring[*pos & d->mask].word : 0;
    }
  g_mutex_unlock (&consumer->lock);
  return found;
}

/* Takes the oldest overflow entry if it is at *pos. Under @lock. */
static gboolean
take_overflow_locked (ChimeConsumer  *consumer,
                      guint64         pos,
                      ChimeEvent    **event,
                      ChimeEventType *type)
{
  ChimeOverflowEntry *oldest = g_queue_peek_head (&consumer->overflow);

  if (oldest->pos != pos)
    return FALSE;
  g_queue_pop_head (&consumer->overflow);
  __atomic_store_n (&consumer->n_overflow, consumer->n_overflow - 1, __ATOMIC_RELEASE);
  *type = chime_slot_type (oldest->word);
  *event = oldest->event;   /* the entry's reference */
  g_free (oldest);
  return TRUE;
}

gboolean
chime_drop_policy_take_next (ChimeConsumer  *consumer,
                             guint64        *pos,
                             ChimeEvent    **event,
                             ChimeEventType *type)
{
  ChimeDispatcher *d = consumer->dispatcher;
  ChimeSlot *slot;
  gboolean taken = FALSE;

  g_mutex_lock (&consumer->lock);
  if (consumer->overflow.length > 0)
    {
      taken = take_overflow_locked (consumer, *pos, event, type);
      g_mutex_unlock (&consumer->lock);
      return taken;
    }
  slot = &d->ring[*pos & d->mask];
  if (consumer->read == *pos && chime_dispatcher_is_published (d, *pos))
    {
      *type = chime_slot_type (slot->word);
      *event = (slot->word & consumer->bit) ? chime_event_ref (slot->event) : NULL;
      __atomic_store_n (&consumer->read, *pos + 1, __ATOMIC_RELEASE);
      if (*event == NULL)
        chime_consumer_store_done (consumer, *pos + 1);
      taken = TRUE;
    }
  g_mutex_unlock (&consumer->lock);
  return taken;
}

/* drop_newest: the events a consumer still has queued in positions the
 * ring needs again move to its overflow queue; chime_drop_policy_admit()
 * has already kept the queue within the limit, so nothing is lost here.
 * Under @lock. */
static void
keep_in_overflow_locked (ChimeConsumer *consumer,
                         guint64        pos,
                         ChimeSlot     *slot)
{
  ChimeOverflowEntry *entry = g_new (ChimeOverflowEntry, 1);

  entry->pos = pos;
  entry->word = slot->word;
  entry->event = chime_event_ref (slot->event);
  g_queue_push_tail (&consumer->overflow, entry);
  __atomic_store_n (&consumer->n_overflow, consumer->n_overflow + 1, __ATOMIC_RELEASE);
}

/* Drop policies never wait: the ring moves on past a consumer a whole ring
 * behind, under its lock so it never reads a slot that is being reused.
 * drop_oldest loses (and counts) that consumer's oldest positions;
 * drop_newest keeps them in the consumer's overflow queue. */
void
chime_drop_policy_make_room (ChimeDispatcher *d,
                             guint64          pos)
{
  guint64 floor = pos - d->size + 1;   /* lowest position still needed */
  gboolean keep = d->drop->keeps_queued;

  for (guint i = 0; i < d->n_consumers; i++)
    {
      ChimeConsumer *consumer = d->consumers[i];
      guint64 dropped = 0;
      guint64 kept = 0;

      if (__atomic_load_n (&consumer->read, __ATOMIC_ACQUIRE) >= floor)
        continue;
      g_mutex_lock (&consumer->lock);
      for (guint64 p = consumer->read; p < floor; p++)
        {
          ChimeSlot *slot = &d->ring[p & d->mask];

          /* A position claimed by a slower emitter: wait until it is
           * published, it is about to be. */
          while (!chime_dispatcher_is_published (d, p))
            chime_cpu_relax ();
          if (!(slot->word & consumer->bit))
            continue;
          if (keep)
            {
              keep_in_overflow_locked (consumer, p, slot);
              kept++;
            }
          else
            dropped++;
        }
      if (consumer->read < floor)
        {
          /* Not `done` while a call is in flight or overflow waits. */
          gboolean busy = __atomic_load_n (&consumer->done, __ATOMIC_ACQUIRE) < consumer->read ||
                          consumer->overflow.length > 0;

          __atomic_store_n (&consumer->read, floor, __ATOMIC_RELEASE);
          if (!busy)
            chime_consumer_store_done (consumer, floor);
        }
      g_mutex_unlock (&consumer->lock);
      if (dropped > 0)
        __atomic_add_fetch (&consumer->handler->dropped, dropped, __ATOMIC_RELAXED);
      if (kept > 0)
        chime_consumer_wake (consumer);
    }
  chime_consumer_notify_progress (d);
}

/* drop_newest: a handler already `newest_limit` events behind — counting
 * every ring position it has not passed, and its overflow — does not get
 * this event (counted). drop_oldest admits every handler. */
guint64
chime_drop_policy_admit (ChimeDispatcher *d,
                         guint64          pos,
                         guint64          call_mask)
{
  if (!d->drop->keeps_queued)
    return call_mask;
  for (guint i = 0; i < d->n_consumers; i++)
    {
      ChimeConsumer *consumer = d->consumers[i];

      if ((call_mask & consumer->bit) &&
          pos - __atomic_load_n (&consumer->read, __ATOMIC_ACQUIRE) +
            __atomic_load_n (&consumer->n_overflow, __ATOMIC_ACQUIRE) >= d->newest_limit)
        {
          call_mask &= ~consumer->bit;
          __atomic_add_fetch (&consumer->handler->dropped, 1, __ATOMIC_RELAXED);
        }
    }
  return call_mask;
}

static void
overflow_entry_free (gpointer data)
{
  ChimeOverflowEntry *entry = data;

  chime_event_unref (entry->event);
  g_free (entry);
}

void
chime_drop_policy_settle (ChimeConsumer *consumer)
{
  g_mutex_lock (&consumer->lock);
  chime_consumer_store_done (consumer, pending_locked (consumer));
  g_mutex_unlock (&consumer->lock);
}

void
chime_drop_policy_clear (ChimeConsumer *consumer)
{
  /* Empty after a flush; freed anyway in case a handler was cut off. */
  g_queue_clear_full (&consumer->overflow, overflow_entry_free);
}
