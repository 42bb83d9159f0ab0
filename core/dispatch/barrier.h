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
 * back to a full fence. */
#pragma once

#include <glib.h>

/* Registers with membarrier once per process. */
void chime_barrier_init (void);

extern gboolean chime_barrier_have_membarrier;

/* The frequent side: the emitter, after publishing. */
static inline void
chime_barrier_light (void)
{
  if (G_LIKELY (chime_barrier_have_membarrier))
    __atomic_signal_fence (__ATOMIC_SEQ_CST);
  else
    __atomic_thread_fence (__ATOMIC_SEQ_CST);
}

/* The rare side: a consumer about to sleep. */
void chime_barrier_heavy (void);
