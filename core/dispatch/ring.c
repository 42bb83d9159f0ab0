/* The ring, from the emitters' side: claim a position, fill its slot,
 * publish it, wake the consumers it is for.
 *
 * Positions are claimed by emitters with a CAS on `head` and published in
 * claim order through the `published` cursor, so consumers read a slot
 * only once it is complete. A slot is reused only when every consumer's
 * release cursor has passed its previous occupant, which is the
 * back-pressure: an emitter waits while the slowest handler is a whole ring
 * behind (wait.c; drop policies move that handler's cursor instead,
 * drop-policy.c). The emitter frees the previous occupant's event when it
 * reuses the slot, so in the common case events are allocated and freed
 * by the same thread.
 *
 * After publishing, the emitter wakes idle consumers (consumer.c) with the
 * light side of the asymmetric barrier (barrier.h): this is the hot path,
 * and it costs a compiler barrier and a relaxed load per handler. See
 * docs/architecture.md. */
#include "config.h"

#include "dispatcher.h"
#include "consumer.h"
#include "drop-policy.h"
#include "wait.h"
#include "barrier.h"

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

      /* Acquire pairs with the release of the refresh (room_for, wait.c):
       * a slot this claim reuses is then past every consumer's use of its
       * previous occupant. A plain load on x86, as relaxed was. */
      if (pos >= __atomic_load_n (&d->gating, __ATOMIC_ACQUIRE) + d->size &&
          !chime_dispatcher_has_room (d, pos))
        {
          if (d->drop != NULL)
            chime_drop_policy_make_room (d, pos);
          else if (!may_wait)
            return FALSE;
          else
            chime_dispatcher_wait_for_room (d, pos);
          continue;
        }
      if (__atomic_compare_exchange_n (&d->head, &pos, pos + 1, TRUE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        {
#ifdef CHIME_DEBUG_RING
          if (pos >= chime_dispatcher_min_release (d) + d->size)
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
  if (d->drop != NULL)
    call_mask = chime_drop_policy_admit (d, pos, call_mask);
  slot->event = event;
  slot->word = chime_slot_word (call_mask, event->type, fence);

  /* Publish in claim order: wait for emitters that claimed earlier. */
  while (G_UNLIKELY (__atomic_load_n (&d->published, __ATOMIC_ACQUIRE) != pos))
    chime_cpu_relax ();
  __atomic_store_n (&d->published, pos + 1, __ATOMIC_RELEASE);
  /* Pairs with the heavy barrier of a consumer going idle
   * (chime_consumer_go_idle). */
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

guint64
chime_dispatcher_get_head (ChimeDispatcher *d)
{
  return chime_dispatcher_head (d);
}
