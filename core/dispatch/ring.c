/* The ring, from the emitters' side: claim a position, fill its slot,
 * publish it, wake the consumers it is for.
 *
 * Positions are claimed by emitters on `head` (plain stores while one
 * thread emits, a CAS once several do: see owner_claims()) and published in
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
#include "events/event-cache.h"

/* The single-emitter fast claim.
 *
 * A CAS on `head` is what lets several threads emit at once, but inside
 * the ring a locked instruction costs far more than alone: it waits for
 * the emitter's earlier stores to lines the consumer's core has read
 * (docs/benchmarks.md). Most runtimes have one emitting thread, so the
 * first thread to claim becomes the owner and claims with a plain load
 * and a plain store. The first other thread to claim switches the ring
 * to CAS claims for good (multi), with the asymmetric Dekker handshake
 * of barrier.h: the owner says it is claiming, then checks `multi`
 * (light side, every event); the newcomer sets `multi`, runs the heavy
 * barrier, then waits until the owner is not claiming. After that the
 * owner sees `multi` on its next claim, and no plain store can overwrite
 * a CAS. A thread is named by the address of a thread-local byte, which
 * costs no call (chime_dispatch_thread_self); a later thread may get a
 * dead owner's address, and then it is the owner, which is just as safe:
 * the dead one claims nothing. */
__thread guint8 chime_dispatch_thread_mark __attribute__ ((tls_model ("initial-exec")));

static gboolean
owner_claims (ChimeDispatcher *d)
{
  gconstpointer self = chime_dispatch_thread_self ();
  gconstpointer owner = __atomic_load_n (&d->owner, __ATOMIC_RELAXED);

  if (G_LIKELY (owner == self))
    return TRUE;
  if (owner == NULL && __atomic_compare_exchange_n (&d->owner, &owner, self, FALSE,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    return TRUE;
  return FALSE;
}

/* A thread other than the owner claims: from now on every claim is a
 * CAS. Returns once the owner cannot be in the middle of a plain claim. */
static void
become_multi (ChimeDispatcher *d)
{
  g_mutex_lock (&d->multi_lock);
  if (!__atomic_load_n (&d->multi, __ATOMIC_ACQUIRE))
    {
      __atomic_store_n (&d->multi, TRUE, __ATOMIC_SEQ_CST);
      /* Pairs with the light barrier in plain_claim(). */
      chime_barrier_heavy ();
      /* A few instructions, unless the owner was preempted in them. */
      while (__atomic_load_n (&d->claiming, __ATOMIC_ACQUIRE))
        g_thread_yield ();
    }
  g_mutex_unlock (&d->multi_lock);
}

/* The owner's claim of @pos: FALSE when another thread has begun to emit
 * (then the caller claims with a CAS). Inline: once per event. */
static inline gboolean
plain_claim (ChimeDispatcher *d,
             guint64          pos)
{
  __atomic_store_n (&d->claiming, TRUE, __ATOMIC_RELAXED);
  chime_barrier_light ();
  if (G_UNLIKELY (__atomic_load_n (&d->multi, __ATOMIC_ACQUIRE)))
    {
      __atomic_store_n (&d->claiming, FALSE, __ATOMIC_RELEASE);
      return FALSE;
    }
  __atomic_store_n (&d->head, pos + 1, __ATOMIC_RELEASE);
  __atomic_store_n (&d->claiming, FALSE, __ATOMIC_RELEASE);
  return TRUE;
}

/* Inline into each entry point below: a call less per event. */
static inline __attribute__ ((always_inline)) gboolean
claim (ChimeDispatcher *d,
       gboolean         may_wait,
       guint64         *out_pos)
{
  gboolean single = FALSE;

  if (!__atomic_load_n (&d->multi, __ATOMIC_ACQUIRE))
    {
      single = owner_claims (d);
      if (!single)
        become_multi (d);
    }
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
      if (single)
        {
          if (plain_claim (d, pos))
            goto claimed;
          single = FALSE;
          continue;
        }
      if (__atomic_compare_exchange_n (&d->head, &pos, pos + 1, TRUE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        goto claimed;
      continue;

claimed:
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

/* How many positions ahead an emitter asks for its slot's lines. */
#define PREFETCH_AHEAD 8

/* Takes the lines of a slot PREFETCH_AHEAD positions on, and of its
 * event, for writing, before this thread writes them. The handler's core
 * read them a lap ago: a store to them waits for that core to give them
 * up, and with a few dozen stores per event the store buffer filled
 * behind one such wait per event (row 1 of the benchmark was one
 * cross-core round trip an event, docs/benchmarks.md). A prefetch does
 * not wait. Not when the ring is nearly full, where a consumer may still
 * be reading them, nor while several threads emit, where another may be
 * filling that slot, nor under a drop policy, which moves events out of
 * slots. The event there is the next to be written: in place
 * for a token (chime_event_renew_token_in_place), or the one freed there, which
 * the event cache gives to the next event. */
static inline void
prefetch_ahead (ChimeDispatcher *d,
                guint64          pos)
{
  guint64 ahead = pos + PREFETCH_AHEAD;
  const ChimeSlot *slot;
  const ChimeEvent *event;

  if (ahead >= __atomic_load_n (&d->gating, __ATOMIC_RELAXED) + d->size ||
      __atomic_load_n (&d->multi, __ATOMIC_RELAXED) || d->drop != NULL)
    return;
  slot = &d->ring[ahead & d->mask];
  event = __atomic_load_n (&slot->event, __ATOMIC_RELAXED);
  chime_prefetch_for_write (slot);
  if (event != NULL)
    chime_prefetch_for_write (event);
}

/* Stores @event in @slot (whose previous event has been released),
 * publishes it and wakes the consumers it is for. @caller_runs is the
 * dispatcher's, or FALSE where it is known to be (the token path: a
 * constant there saves a test per consumer). */
static inline __attribute__ ((always_inline)) void
publish_slot (ChimeDispatcher *d,
              guint64          pos,
              ChimeSlot       *slot,
              ChimeEvent      *event,
              guint64          call_mask,
              gboolean         fence,
              gboolean         caller_runs)
{
  /* Relaxed atomic: prefetch_ahead() may look at it from another
   * emitting thread; consumers read it after the published cursor. */
  __atomic_store_n (&slot->event, event, __ATOMIC_RELAXED);
  slot->word = chime_slot_word (call_mask, event->type, fence);
  prefetch_ahead (d, pos);

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
      if ((call_mask & consumer->bit) && !(caller_runs && !consumer->is_async))
        chime_consumer_wake (consumer);
    }
}

static inline __attribute__ ((always_inline)) void
fill_slot (ChimeDispatcher *d,
           guint64          pos,
           ChimeEvent      *event,
           guint64          call_mask,
           gboolean         fence)
{
  ChimeSlot *slot = &d->ring[pos & d->mask];

  /* Every consumer has released the previous occupant; usually the ring's
   * reference is the last one. */
  if (slot->event != NULL)
    chime_event_unref_from_ring (slot->event);
  if (d->drop != NULL)
    call_mask = chime_drop_policy_admit (d, pos, call_mask);
  publish_slot (d, pos, slot, event, call_mask, fence, d->caller_runs);
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

/* Both token entry points; @may_wait is a constant in each. */
static inline __attribute__ ((always_inline)) ChimeTokenPublish
publish_token (ChimeDispatcher *d,
               ChimeRunInfo    *run,
               const char      *token,
               json_t          *chunk,
               guint64          call_mask,
               gboolean         may_wait)
{
  ChimeSlot *slot;
  ChimeEvent *event;
  guint64 pos;

  /* Drop policies may hand the slot's event to a consumer's overflow;
   * with caller_runs (awaited delivery) every token is waited for, which
   * this path does not do. */
  if (G_UNLIKELY (d->drop != NULL || d->caller_runs))
    return CHIME_TOKEN_ELSEWHERE;
  if (!claim (d, may_wait, &pos))
    return CHIME_TOKEN_NO_ROOM;
  slot = &d->ring[pos & d->mask];
  event = slot->event;
  if (G_UNLIKELY (!chime_event_renew_token_in_place (event, run, token)))
    event = chime_event_remake_token (event, run, token);
  if (G_UNLIKELY (chunk != NULL))
    chime_event_set_json (&event->chunk, chunk);
  publish_slot (d, pos, slot, event, call_mask, FALSE, FALSE);
  return CHIME_TOKEN_PUBLISHED;
}

gboolean
chime_dispatcher_publish_token (ChimeDispatcher *d,
                                ChimeRunInfo    *run,
                                const char      *token,
                                json_t          *chunk,
                                guint64          call_mask)
{
  return publish_token (d, run, token, chunk, call_mask, TRUE) == CHIME_TOKEN_PUBLISHED;
}

ChimeTokenPublish
chime_dispatcher_try_publish_token (ChimeDispatcher *d,
                                    ChimeRunInfo    *run,
                                    const char      *token,
                                    json_t          *chunk,
                                    guint64          call_mask)
{
  return publish_token (d, run, token, chunk, call_mask, FALSE);
}

guint64
chime_dispatcher_get_head (ChimeDispatcher *d)
{
  return chime_dispatcher_head (d);
}
