/* The non-blocking on_full policies (drop-policy.c): the hooks the ring,
 * the routes and construction call. Apart from setup, which chooses, and
 * chime_consumer_release, every hook is for a dispatcher whose `drop` is
 * set; elsewhere `drop` is only tested for NULL. */
#pragma once

#include <chime/runtime.h>
#include "dispatch-types.h"

/* Sets @d up for @on_full: its `drop` (left NULL under the block policy)
 * and `newest_limit`. Returns how many events the ring must hold for a
 * queue limit of @queue_limit. */
guint64  chime_drop_policy_setup         (ChimeDispatcher *d,
                                          ChimeOnFull      on_full,
                                          guint64          queue_limit);

/* Release cursor: what the ring may reuse. Drop policies release a slot
 * once the consumer has taken the event (it holds its own reference), the
 * block policy once the handler is done with it. */
static inline guint64
chime_consumer_release (ChimeConsumer *consumer)
{
  if (consumer->dispatcher->drop == NULL)
    return __atomic_load_n (&consumer->done, __ATOMIC_ACQUIRE);
  return __atomic_load_n (&consumer->read, __ATOMIC_ACQUIRE);
}

/* A claim of @pos found no room: moves every consumer a whole ring behind
 * on, instead of waiting. */
void     chime_drop_policy_make_room     (ChimeDispatcher *d,
                                          guint64          pos);
/* The handlers of @call_mask that get the event at @pos (drop_newest
 * takes out those too far behind). */
guint64  chime_drop_policy_admit         (ChimeDispatcher *d,
                                          guint64          pos,
                                          guint64          call_mask);

/* The position the consumer handles next and its slot word, from its
 * overflow first, then from the ring. FALSE (with *pos its ring cursor)
 * when nothing is there yet. */
gboolean chime_drop_policy_peek_next     (ChimeConsumer   *consumer,
                                          guint64         *pos,
                                          guint64         *word);
/* Takes position *pos for @consumer under its lock, from its overflow or
 * the ring. Returns FALSE when that is no longer its next position (a
 * dropping emitter moved it) or nothing is published there. Otherwise
 * *event is a new reference when the event is for it (NULL when it is to
 * be skipped). */
gboolean chime_drop_policy_take_next     (ChimeConsumer   *consumer,
                                          guint64         *pos,
                                          ChimeEvent     **event,
                                          ChimeEventType  *type);
/* Nothing is in flight for @consumer any more: moves its `done` to where
 * it may stand, its oldest overflow entry, else its ring cursor. */
void     chime_drop_policy_settle        (ChimeConsumer   *consumer);

/* Frees what @consumer still has in its overflow. */
void     chime_drop_policy_clear         (ChimeConsumer   *consumer);
