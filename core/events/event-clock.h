/* The time events are stamped with (event-clock.c). */
#pragma once

#include <glib.h>

#if defined(__x86_64__) && defined(__GNUC__)
# include <x86intrin.h>
# define CHIME_HAVE_TSC_CLOCK 1
#endif

gint64 chime_event_clock_now_slow (void);

#ifdef CHIME_HAVE_TSC_CLOCK
/* A thread's last reading of the clock, and its last stamp. */
typedef struct {
  guint64 base_tsc;
  gint64  base_ns;
  gint64  last_us;
} ChimeThreadClock;

extern __thread ChimeThreadClock chime_thread_clock __attribute__ ((tls_model ("initial-exec")));
/* The TSC's rate (ns per tick, << 32), and how many ticks a base is good
 * for: 0 until the rate is known, and again once the TSC is found
 * untrustworthy, so that the one compare below sends every stamp to the
 * slow path then. */
extern guint64 chime_clock_ns_per_tick_q32;
extern guint64 chime_clock_resync_ticks;

/* @us, or the thread's last stamp if that is later (stamps never go back
 * on a thread); it becomes the last. */
static inline gint64
chime_thread_clock_stamp (ChimeThreadClock *clock,
                          gint64            us)
{
  if (G_UNLIKELY (us < clock->last_us))
    us = clock->last_us;
  clock->last_us = us;
  return us;
}
#endif

/* Now on the monotonic clock, in µs, as g_get_monotonic_time() (the same
 * clock), for stamping events: cheaper, and never less than what it
 * returned before on this thread. Inline: once per token, and a call
 * costs the emitter as much as the arithmetic. */
static inline gint64
chime_event_clock_now (void)
{
#ifdef CHIME_HAVE_TSC_CLOCK
  ChimeThreadClock *clock = &chime_thread_clock;
  guint64 elapsed = __rdtsc () - clock->base_tsc;
  gint64 us;

  /* Acquire pairs with the release that makes the rate known. */
  if (G_UNLIKELY (elapsed >= __atomic_load_n (&chime_clock_resync_ticks, __ATOMIC_ACQUIRE)))
    return chime_event_clock_now_slow ();
  us = (clock->base_ns + (gint64) ((elapsed * chime_clock_ns_per_tick_q32) >> 32)) / 1000;
  return chime_thread_clock_stamp (clock, us);
#else
  return chime_event_clock_now_slow ();
#endif
}

/* Begins measuring the rate chime_event_clock_now() extrapolates at, if
 * it has not begun: a runtime calls it when it is made, so that the
 * measurement (a millisecond or more) is over by its first tokens. */
void chime_event_clock_start (void);
