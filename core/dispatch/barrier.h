/* Asymmetric memory barriers for the ring's wake-up handshake.
 *
 * An emitter publishes an event and then looks whether the consumer is
 * asleep; a consumer going to sleep says so and then looks for new events.
 * Each side needs a full barrier between its store and its load, or both
 * can miss each other. Emitters do this on every event and consumers only
 * when they go idle, so the cost is moved to the rare side: emitters use a
 * compiler barrier and the sleeping consumer a process-wide membarrier(2),
 * which runs a full barrier on every thread of the process (the scheme
 * liburcu and folly use). Where membarrier is unavailable both sides fall
 * back to a full fence.
 *
 * The same pair serves the progress handshake: whoever stores progress
 * (a consumer's `done`, on every awaited event) then reads the waiter
 * counts with the light side; a waiter, which is about to sleep or to
 * iterate the main context anyway, registers and runs the heavy side
 * before it looks (consumer.c, wait.c). The same pair also lets one
 * emitting thread claim ring positions with plain stores (ring.c). */
#pragma once

#include <glib.h>

/* Registers with membarrier once per process. */
void chime_barrier_init (void);

extern gboolean chime_barrier_have_membarrier;

/* The frequent side: an emitter after publishing, a consumer after
 * storing progress. */
static inline void
chime_barrier_light (void)
{
  if (G_LIKELY (chime_barrier_have_membarrier))
    __atomic_signal_fence (__ATOMIC_SEQ_CST);
  else
    __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

/* The rare side: a consumer about to sleep, a waiter about to look. */
void chime_barrier_heavy (void);
