/* The ring, its cursors, and waiting on them.
 *
 * Positions are claimed by emitters with a CAS on `head` and published in
 * claim order through the `published` cursor, so consumers read a slot
 * only once it is complete. A slot is reused only when every consumer's
 * release cursor has passed its previous occupant, which is the
 * back-pressure: an emitter waits while the slowest handler is a whole ring
 * behind (drop policies move that handler's cursor instead). The emitter
 * frees the previous occupant's event when it reuses the slot, so in the
 * common case events are allocated and freed by the same thread.
 *
 * Consumers sleep (IDLE) when they catch up. Waking uses the Dekker
 * pattern: the emitter publishes then reads the consumer's state; the
 * consumer stores IDLE then reads `published`. The barrier each side needs
 * between its store and its load is asymmetric (barrier.h): a compiler
 * barrier for emitters, on every event, and membarrier(2) for a consumer
 * going to sleep, which is rare. See docs/architecture.md. */
#include "config.h"

#include "dispatcher-private.h"
#include "barrier.h"

#include <string.h>

/* How long waiters spin before they sleep. */
#define WAIT_SPINS 4000
#define WAIT_YIELDS 16

typedef struct {
  guint64     end;        /* 0: waiting for room in the ring */
  GSourceFunc callback;
  gpointer    user_data;
} AsyncWait;

static gboolean
keep_ticking (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

static guint64
next_power_of_two (guint64 value)
{
  guint64 power = 1;

  while (power < value)
    power <<= 1;
  return power;
}

/* ------------------------------------------------------------------
 * Cursors
 * ---------------------------------------------------------------- */

/* Each cursor is read exactly once: GLib's MIN() evaluates its arguments
 * twice, and a cursor that moves between the two reads would make the
 * minimum larger than a value it was compared against. */
static guint64
min_release (ChimeDispatcher *d)
{
  guint64 least = __atomic_load_n (&d->head, __ATOMIC_ACQUIRE);

  for (guint i = 0; i < d->n_consumers; i++)
    {
      guint64 release = chime_consumer_release (d->consumers[i]);
      if (release < least)
        least = release;
    }
  return least;
}

static guint64
min_done (ChimeDispatcher *d)
{
  guint64 least = G_MAXUINT64;

  for (guint i = 0; i < d->n_consumers; i++)
    {
      guint64 done = __atomic_load_n (&d->consumers[i]->done, __ATOMIC_ACQUIRE);
      if (done < least)
        least = done;
    }
  return least;
}

static gboolean
barrier_passed (ChimeDispatcher *d,
                guint64          pos)
{
  for (guint i = 0; i < d->n_consumers; i++)
    if (__atomic_load_n (&d->consumers[i]->done, __ATOMIC_ACQUIRE) < pos)
      return FALSE;
  return TRUE;
}

gboolean
chime_dispatcher_is_done (ChimeDispatcher *d,
                          guint64          end)
{
  return min_done (d) >= end;
}

guint64
chime_dispatcher_get_head (ChimeDispatcher *d)
{
  return __atomic_load_n (&d->head, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------
 * Consumer state machine
 * ---------------------------------------------------------------- */

void
chime_consumer_schedule (ChimeConsumer *consumer)
{
  consumer->route->schedule (consumer);
}

void
chime_consumer_wake (ChimeConsumer *consumer)
{
  guint64 idle = CONSUMER_IDLE;

  if (__atomic_load_n (&consumer->state, __ATOMIC_RELAXED) == CONSUMER_IDLE &&
      __atomic_compare_exchange_n (&consumer->state, &idle, CONSUMER_RUNNING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    chime_consumer_schedule (consumer);
}

/* Schedules every parked consumer whose fence barrier has been passed. */
static void
wake_parked (ChimeDispatcher *d)
{
  for (guint i = 0; i < d->n_consumers; i++)
    {
      ChimeConsumer *consumer = d->consumers[i];
      guint64 state = __atomic_load_n (&consumer->state, __ATOMIC_ACQUIRE);

      if (CONSUMER_STATE_KIND (state) != CONSUMER_PARKED ||
          !barrier_passed (d, CONSUMER_PARKED_POS (state)))
        continue;
      if (__atomic_compare_exchange_n (&consumer->state, &state, CONSUMER_RUNNING, FALSE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        {
          __atomic_sub_fetch (&d->n_parked, 1, __ATOMIC_SEQ_CST);
          chime_consumer_schedule (consumer);
        }
    }
}

/* Wakes whoever waits on consumer progress: emitters (blocked, iterating
 * the main loop, or with a callback) and parked consumers. */
static void
notify_progress (ChimeDispatcher *d)
{
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  if (__atomic_load_n (&d->n_parked, __ATOMIC_RELAXED) > 0)
    wake_parked (d);
  if (__atomic_load_n (&d->n_cond_waiters, __ATOMIC_RELAXED) > 0)
    {
      g_mutex_lock (&d->wait_lock);
      g_cond_broadcast (&d->wait_cond);
      g_mutex_unlock (&d->wait_lock);
    }
  if (__atomic_load_n (&d->n_loop_waiters, __ATOMIC_RELAXED) > 0)
    g_main_context_wakeup (d->main_context);
  if (__atomic_load_n (&d->n_async_waiters, __ATOMIC_RELAXED) > 0)
    g_source_set_ready_time (d->progress_source, 0);
}

void
chime_consumer_publish_done (ChimeConsumer *consumer,
                             guint64        done)
{
  /* Under drop policies `done` moves under the consumer's lock (a
   * dropping emitter may move it too); only notify here. */
  if (consumer->dispatcher->on_full == CHIME_ON_FULL_BLOCK)
    chime_consumer_store_done (consumer, done);
  notify_progress (consumer->dispatcher);
}

static gboolean
slot_published (ChimeDispatcher *d,
                guint64          pos)
{
  return pos < chime_dispatcher_published (d);
}

gboolean
chime_consumer_go_idle (ChimeConsumer *consumer,
                        guint64        pos)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint64 idle = CONSUMER_IDLE;

  CHIME_OWNER_DROP (consumer);
  __atomic_store_n (&consumer->state, CONSUMER_IDLE, __ATOMIC_SEQ_CST);
  /* Pairs with the emitter's light barrier in fill_slot(). Not needed when
   * emitters do not wake sync consumers but run them (caller_runs): the
   * emitter's wait loop looks for idle consumers with work itself. */
  if (!(d->caller_runs && !consumer->is_async))
    chime_barrier_heavy ();
  if (!slot_published (d, pos))
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
  if (d->on_full != CHIME_ON_FULL_BLOCK)
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
      notify_progress (d);
    }
  if (pos < target && d->caller_runs && !consumer->is_async && !consumer->slow)
    {
      /* Its work is what we wait for: do it here rather than wake a
       * thread and sleep until it is done. */
      gboolean timed = (++consumer->inline_runs % SLOW_SAMPLE_EVERY) == 0;
      gint64 started = timed ? g_get_monotonic_time () : 0;
      gboolean still_owned = consumer->route->run_until (consumer, target);

      if (timed)
        {
          if (g_get_monotonic_time () - started <= SLOW_CALL_US)
            consumer->slow_samples = 0;
          else if (++consumer->slow_samples >= SLOW_SAMPLES_NEEDED)
            consumer->slow = TRUE;
        }
      if (!still_owned)
        return;
      pos = consumer->done;
    }
  if (!chime_consumer_go_idle (consumer, pos))
    {
      CHIME_OWNER_DROP (consumer);
      chime_consumer_schedule (consumer);
    }
}

static void
help_laggards (ChimeDispatcher *d,
               guint64          target)
{
  for (guint i = 0; i < d->n_consumers; i++)
    help_consumer (d->consumers[i], target);
}

gboolean
chime_consumer_pass_fence (ChimeConsumer *consumer,
                           guint64        pos)
{
  ChimeDispatcher *d = consumer->dispatcher;
  guint64 parked = CONSUMER_PARKED_AT (pos);

  chime_consumer_publish_done (consumer, pos);
  help_laggards (d, pos);
  if (barrier_passed (d, pos))
    return TRUE;

  __atomic_add_fetch (&d->n_parked, 1, __ATOMIC_SEQ_CST);
  CHIME_OWNER_DROP (consumer);
  __atomic_store_n (&consumer->state, parked, __ATOMIC_SEQ_CST);
  /* The last consumer to arrive may have looked before we parked. */
  if (barrier_passed (d, pos) &&
      __atomic_compare_exchange_n (&consumer->state, &parked, CONSUMER_RUNNING, FALSE,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    {
      CHIME_OWNER_TAKE (consumer);
      __atomic_sub_fetch (&d->n_parked, 1, __ATOMIC_SEQ_CST);
      return TRUE;
    }
  return FALSE;
}

/* An event kept for a drop_newest consumer outside the ring. */
typedef struct {
  guint64     pos;
  guint64     word;
  ChimeEvent *event;
} ChimeOverflowEntry;

guint64
chime_consumer_pending_locked (ChimeConsumer *consumer)
{
  const ChimeOverflowEntry *oldest = g_queue_peek_head (&consumer->overflow);

  return oldest != NULL ? oldest->pos : consumer->read;
}

gboolean
chime_consumer_peek_locked_next (ChimeConsumer *consumer,
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
      found = slot_published (d, *pos);
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
chime_consumer_take_locked_next (ChimeConsumer  *consumer,
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
  if (consumer->read == *pos && slot_published (d, *pos))
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

/* ------------------------------------------------------------------
 * Waiting
 * ---------------------------------------------------------------- */

typedef gboolean (*WaitPredicate) (ChimeDispatcher *d, guint64 arg);

static gboolean
done_reached (ChimeDispatcher *d,
              guint64          end)
{
  return min_done (d) >= end;
}

static gboolean
room_for (ChimeDispatcher *d,
          guint64          pos)
{
  guint64 release = min_release (d);

  __atomic_store_n (&d->gating, release, __ATOMIC_RELAXED);
  return pos < release + d->size;
}

/* One blocking step while owning the main context: iterate it, so async
 * handlers make progress. Progress always wakes the context; a timer is a
 * safety net so a lost wake-up can never become a hang. */
static void
iterate_main_context (ChimeDispatcher *d,
                      WaitPredicate    predicate,
                      guint64          arg)
{
  GSource *safety_net = g_timeout_source_new (50);

  g_source_set_callback (safety_net, keep_ticking, NULL, NULL);
  g_source_attach (safety_net, d->main_context);
  /* Registered before the last look, so progress after it wakes us. */
  __atomic_add_fetch (&d->n_loop_waiters, 1, __ATOMIC_SEQ_CST);
  if (!predicate (d, arg))
    g_main_context_iteration (d->main_context, TRUE);
  __atomic_sub_fetch (&d->n_loop_waiters, 1, __ATOMIC_SEQ_CST);
  g_source_destroy (safety_net);
  g_source_unref (safety_net);
}

/* One blocking step while another thread owns the main context. */
static void
sleep_on_progress (ChimeDispatcher *d,
                   WaitPredicate    predicate,
                   guint64          arg)
{
  g_mutex_lock (&d->wait_lock);
  __atomic_add_fetch (&d->n_cond_waiters, 1, __ATOMIC_SEQ_CST);
  if (!predicate (d, arg))
    g_cond_wait_until (&d->wait_cond, &d->wait_lock,
                       g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND);
  __atomic_sub_fetch (&d->n_cond_waiters, 1, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&d->wait_lock);
}

static void
wait_for (ChimeDispatcher *d,
          WaitPredicate    predicate,
          guint64          arg,
          guint64          help_target)
{
  if (predicate (d, arg))
    return;
  help_laggards (d, help_target);
  wake_parked (d);
  if (d->n_async > 0 && g_main_context_acquire (d->main_context))
    {
      /* Async handlers move only while some thread iterates the main
       * context, and that can be this one: spinning would only wait. */
      g_main_context_release (d->main_context);
      goto block;
    }
  for (guint i = 0; i < WAIT_SPINS; i++)
    {
      cpu_relax ();
      if (predicate (d, arg))
        return;
    }
  for (guint i = 0; i < WAIT_YIELDS; i++)
    {
      g_thread_yield ();
      if (predicate (d, arg))
        return;
    }

block:
  while (!predicate (d, arg))
    {
      help_laggards (d, help_target);
      wake_parked (d);
      if (predicate (d, arg))
        break;
      /* Async handlers only run while someone iterates the main context:
       * whenever nobody else does (again), this thread does. */
      if (d->n_async > 0 && g_main_context_acquire (d->main_context))
        {
          iterate_main_context (d, predicate, arg);
          g_main_context_release (d->main_context);
        }
      else
        sleep_on_progress (d, predicate, arg);
    }
}

void
chime_dispatcher_wait (ChimeDispatcher *d,
                       guint64          end)
{
  wait_for (d, done_reached, end, end);
}

void
chime_dispatcher_flush (ChimeDispatcher *d)
{
  chime_dispatcher_wait (d, chime_dispatcher_get_head (d));
}

static gboolean
async_wait_ready (ChimeDispatcher *d,
                  AsyncWait       *wait)
{
  if (wait->end == 0)
    return room_for (d, chime_dispatcher_get_head (d));
  return done_reached (d, wait->end);
}

/* The progress source: runs the callbacks whose condition now holds. */
static gboolean
progress_dispatch (GSource    *source,
                   GSourceFunc callback,
                   gpointer    user_data)
{
  ChimeDispatcher *d = user_data;
  GList *ready = NULL;

  g_source_set_ready_time (source, -1);
  g_mutex_lock (&d->async_lock);
  for (GList *l = d->async_waits; l != NULL;)
    {
      GList *next = l->next;
      if (async_wait_ready (d, l->data))
        {
          d->async_waits = g_list_remove_link (d->async_waits, l);
          ready = g_list_concat (ready, l);
          __atomic_sub_fetch (&d->n_async_waiters, 1, __ATOMIC_SEQ_CST);
        }
      l = next;
    }
  if (d->async_waits != NULL)
    {
      /* Some laggards may need a push to get there. */
      help_laggards (d, chime_dispatcher_get_head (d));
      wake_parked (d);
    }
  g_mutex_unlock (&d->async_lock);

  for (GList *l = ready; l != NULL; l = l->next)
    {
      AsyncWait *wait = l->data;
      wait->callback (wait->user_data);
      g_free (wait);
    }
  g_list_free (ready);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs progress_source_funcs = {
  .dispatch = progress_dispatch,
};

void
chime_dispatcher_when_done (ChimeDispatcher *d,
                            guint64          end,
                            GSourceFunc      callback,
                            gpointer         user_data)
{
  AsyncWait *wait = g_new0 (AsyncWait, 1);

  wait->end = end;
  wait->callback = callback;
  wait->user_data = user_data;
  g_mutex_lock (&d->async_lock);
  d->async_waits = g_list_append (d->async_waits, wait);
  __atomic_add_fetch (&d->n_async_waiters, 1, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&d->async_lock);
  /* Check at once: the condition may already hold. */
  help_laggards (d, end != 0 ? end : chime_dispatcher_get_head (d));
  g_source_set_ready_time (d->progress_source, 0);
}

/* ------------------------------------------------------------------
 * Publishing
 * ---------------------------------------------------------------- */

/* drop_newest: the events a consumer still has queued in positions the
 * ring needs again move to its overflow queue; drop_newest() has already
 * kept the queue within the limit, so nothing is lost here. Under @lock. */
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
static void
drop_oldest_for_room (ChimeDispatcher *d,
                      guint64          pos)
{
  guint64 floor = pos - d->size + 1;   /* lowest position still needed */
  gboolean keep = d->on_full == CHIME_ON_FULL_DROP_NEWEST;

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
          while (!slot_published (d, p))
            cpu_relax ();
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
  notify_progress (d);
}

static gboolean
claim (ChimeDispatcher *d,
       gboolean         may_wait,
       guint64         *out_pos)
{
  for (;;)
    {
      guint64 pos = __atomic_load_n (&d->head, __ATOMIC_RELAXED);
#ifdef CHIME_DEBUG_RING
      guint64 seen_gating = __atomic_load_n (&d->gating, __ATOMIC_RELAXED);
#endif

      if (pos >= __atomic_load_n (&d->gating, __ATOMIC_RELAXED) + d->size &&
          !room_for (d, pos))
        {
          if (d->on_full != CHIME_ON_FULL_BLOCK)
            drop_oldest_for_room (d, pos);
          else if (!may_wait)
            return FALSE;
          else
            wait_for (d, room_for, pos, pos);
          continue;
        }
      if (__atomic_compare_exchange_n (&d->head, &pos, pos + 1, TRUE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        {
#ifdef CHIME_DEBUG_RING
          if (pos >= min_release (d) + d->size)
            {
              for (guint i = 0; i < d->n_consumers; i++)
                g_printerr ("consumer %s done %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT "\n",
                            d->consumers[i]->handler->settings.name, d->consumers[i]->done,
                            d->consumers[i]->state);
              g_error ("claimed %" G_GUINT64_FORMAT " without room (gating %" G_GUINT64_FORMAT
                       ", seen %" G_GUINT64_FORMAT ")", pos, d->gating, seen_gating);
            }
#endif
          *out_pos = pos;
          return TRUE;
        }
    }
}

/* drop_newest: a handler already `newest_limit` events behind — counting
 * every ring position it has not passed, and its overflow — does not get
 * this event (counted). */
static guint64
drop_newest (ChimeDispatcher *d,
             guint64          pos,
             guint64          call_mask)
{
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
fill_slot (ChimeDispatcher *d,
           guint64          pos,
           ChimeEvent      *event,
           guint64          call_mask,
           gboolean         fence)
{
  ChimeSlot *slot = &d->ring[pos & d->mask];

  /* Every consumer has released the previous occupant. */
  if (slot->event != NULL)
    chime_event_unref (slot->event);
  if (d->on_full == CHIME_ON_FULL_DROP_NEWEST)
    call_mask = drop_newest (d, pos, call_mask);
  slot->event = event;
  slot->word = chime_slot_word (call_mask, event->type, fence);

  /* Publish in claim order: wait for emitters that claimed earlier. */
  while (G_UNLIKELY (__atomic_load_n (&d->published, __ATOMIC_ACQUIRE) != pos))
    cpu_relax ();
  __atomic_store_n (&d->published, pos + 1, __ATOMIC_RELEASE);
  /* Pairs with the heavy barrier of a consumer going idle. */
  chime_barrier_light ();

  for (guint i = 0; i < d->n_consumers; i++)
    {
      ChimeConsumer *consumer = d->consumers[i];

      /* With caller_runs the emitter's own wait runs sync consumers. */
      if ((call_mask & consumer->bit) && !(d->caller_runs && !consumer->is_async))
        chime_consumer_wake (consumer);
    }
}

gboolean
chime_dispatcher_claim (ChimeDispatcher *d,
                        gboolean         may_wait,
                        guint64         *out_position)
{
  return claim (d, may_wait, out_position);
}

void
chime_dispatcher_fill (ChimeDispatcher *d,
                       guint64          position,
                       ChimeEvent      *event,
                       guint64          call_mask,
                       gboolean         fence)
{
  fill_slot (d, position, event, call_mask, fence);
}

guint64
chime_dispatcher_publish (ChimeDispatcher *d,
                          ChimeEvent      *event,
                          guint64          call_mask,
                          gboolean         fence)
{
  guint64 pos;

  claim (d, TRUE, &pos);
  fill_slot (d, pos, event, call_mask, fence);
  return pos;
}

/* ------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------- */

static ChimeConsumer *
consumer_new (ChimeDispatcher *d,
              ChimeHandler    *handler)
{
  ChimeConsumer *consumer = g_aligned_alloc0 (1, sizeof (ChimeConsumer), CHIME_CACHE_LINE);

  consumer->dispatcher = d;
  consumer->handler = handler;
  consumer->bit = handler->bit;
  consumer->is_async = handler->descriptor->mode == CHIME_HANDLER_ASYNC;
  consumer->route = consumer->is_async ? &chime_async_route : &chime_sync_route;
  consumer->state = CONSUMER_IDLE;
  g_mutex_init (&consumer->lock);
  if (consumer->route->init != NULL)
    consumer->route->init (consumer);
  return consumer;
}

static void
overflow_entry_free (gpointer data)
{
  ChimeOverflowEntry *entry = data;

  chime_event_unref (entry->event);
  g_free (entry);
}

static void
consumer_free (ChimeConsumer *consumer)
{
  if (consumer->route->clear != NULL)
    consumer->route->clear (consumer);
  /* Empty after a flush; freed anyway in case a handler was cut off. */
  g_queue_clear_full (&consumer->overflow, overflow_entry_free);
  g_mutex_clear (&consumer->lock);
  g_aligned_free (consumer);
}

ChimeDispatcher *
chime_dispatcher_new (ChimeHandler                 **handlers,
                      guint                          n_handlers,
                      const ChimeDispatcherSettings *settings)
{
  ChimeDispatcher *d = g_aligned_alloc0 (1, sizeof (ChimeDispatcher), CHIME_CACHE_LINE);
  guint64 limit = MAX (settings->queue_limit, 16);

  chime_barrier_init ();
  d->on_full = settings->on_full;
  d->caller_runs = settings->caller_runs && settings->on_full == CHIME_ON_FULL_BLOCK;
  d->newest_limit = limit;
  /* drop_newest keeps room beyond the limit so the ring rarely has to drop
   * old positions as well. */
  d->size = next_power_of_two (d->on_full == CHIME_ON_FULL_DROP_NEWEST ? 2 * limit : limit);
  d->mask = d->size - 1;
  d->ring = g_aligned_alloc0 (d->size, sizeof (ChimeSlot), CHIME_CACHE_LINE);
  d->main_context = g_main_context_ref (settings->main_context);
  g_mutex_init (&d->wait_lock);
  g_cond_init (&d->wait_cond);
  g_mutex_init (&d->async_lock);
  d->abandoned = g_ptr_array_new_with_free_func ((GDestroyNotify) chime_completion_free);

  d->progress_source = g_source_new (&progress_source_funcs, sizeof (GSource));
  g_source_set_callback (d->progress_source, NULL, d, NULL);
  g_source_set_name (d->progress_source, "chime dispatcher progress");
  g_source_attach (d->progress_source, d->main_context);

  d->pool = g_thread_pool_new (chime_sync_route_run, d, settings->threads, FALSE, NULL);
  d->consumers = g_new0 (ChimeConsumer *, n_handlers);
  for (guint i = 0; i < n_handlers; i++)
    {
      d->consumers[d->n_consumers++] = consumer_new (d, handlers[i]);
      if (d->consumers[i]->is_async)
        d->n_async++;
    }
  return d;
}

void
chime_dispatcher_free (ChimeDispatcher *d)
{
  if (d == NULL)
    return;
  chime_dispatcher_flush (d);
  /* Waits for running drain tasks; none is queued after a flush. */
  g_thread_pool_free (d->pool, FALSE, TRUE);
  for (guint i = 0; i < d->n_consumers; i++)
    consumer_free (d->consumers[i]);
  g_free (d->consumers);
  for (guint64 i = 0; i < d->size; i++)
    if (d->ring[i].event != NULL)
      chime_event_unref (d->ring[i].event);
  g_aligned_free (d->ring);
  g_source_destroy (d->progress_source);
  g_source_unref (d->progress_source);
  g_list_free_full (d->async_waits, g_free);
  g_ptr_array_free (d->abandoned, TRUE);
  g_main_context_unref (d->main_context);
  g_mutex_clear (&d->wait_lock);
  g_cond_clear (&d->wait_cond);
  g_mutex_clear (&d->async_lock);
  g_aligned_free (d);
}
