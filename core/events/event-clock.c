/* The time events are stamped with.
 *
 * Every event is stamped when it is created, and on the VMs chime is
 * measured on a clock_gettime() through the vDSO costs 21 ns, more than a
 * token's whole trip through the ring (docs/benchmarks.md): it waits for
 * every earlier load and store of the thread before it reads the
 * timestamp counter. Where the TSC is invariant (constant rate, never
 * stopped: CPUID 0x80000007, EDX bit 8), each thread reads the monotonic
 * clock at most once a millisecond and extrapolates from it with a plain
 * `rdtsc` (9 ns), at a rate measured against the clock over the first
 * millisecond or more after the first runtime is made
 * (chime_event_clock_start). Over one millisecond the
 * extrapolation is off by nanoseconds; a thread's stamps never go back;
 * and if a resynchronisation finds it off by more than STRAY_NS (a TSC
 * that jumped: a migrated VM), the process goes back to the clock for
 * good. Elsewhere this is g_get_monotonic_time(). */
#include "config.h"

#include "event-clock.h"

#include <time.h>

#ifdef CHIME_HAVE_TSC_CLOCK

# include <cpuid.h>

/* Read the clock at least this often (ns). */
#define RESYNC_NS 1000000
/* Measure the rate over at least this long (ns). */
#define CALIBRATE_NS 1000000
/* An extrapolation off by more than this says the TSC cannot be trusted. */
#define STRAY_NS 50000

enum { TSC_UNKNOWN, TSC_CALIBRATING, TSC_USABLE, TSC_UNUSABLE };

static gint tsc_state = TSC_UNKNOWN;
static guint64 calibration_tsc;
static gint64 calibration_ns;
guint64 chime_clock_ns_per_tick_q32;
guint64 chime_clock_resync_ticks;

__thread ChimeThreadClock chime_thread_clock __attribute__ ((tls_model ("initial-exec")));

static gint64
clock_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A reading of the clock and the TSC at the same moment: the TSC read
 * either side of the clock, the closest of a few tries, at its midpoint
 * (a clock read takes 20 ns, or much longer when the thread is
 * preempted in it; a TSC taken before or after it would be off by that). */
static gint64
clock_sample (guint64 *tsc)
{
  guint64 best_width = G_MAXUINT64;
  gint64 best_ns = 0;

  for (guint i = 0; i < 4; i++)
    {
      guint64 before = __rdtsc ();
      gint64 ns = clock_ns ();
      guint64 after = __rdtsc ();

      if (after >= before && after - before < best_width)
        {
          best_width = after - before;
          best_ns = ns;
          *tsc = before + best_width / 2;
        }
    }
  if (best_width == G_MAXUINT64)
    {
      *tsc = __rdtsc ();
      best_ns = clock_ns ();
    }
  return best_ns;
}

static gboolean
tsc_is_invariant (void)
{
  unsigned int eax, ebx, ecx, edx;

  if ((unsigned int) __get_cpuid_max (0x80000000, NULL) < 0x80000007u)
    return FALSE;
  __cpuid (0x80000007, eax, ebx, ecx, edx);
  return (edx & (1u << 8)) != 0;
}

/* The first sample: the start of the measurement of the rate. */
static void
calibration_begin (void)
{
  static gsize once;

  if (g_once_init_enter (&once))
    {
      calibration_ns = clock_sample (&calibration_tsc);
      g_atomic_int_set (&tsc_state, tsc_is_invariant () ? TSC_CALIBRATING : TSC_UNUSABLE);
      g_once_init_leave (&once, 1);
    }
}

/* The last sample, once the process has run long enough: the rate. */
static void
calibration_end (void)
{
  static GMutex lock;
  guint64 tsc;
  gint64 ns = clock_sample (&tsc);

  g_mutex_lock (&lock);
  if (g_atomic_int_get (&tsc_state) == TSC_CALIBRATING && tsc > calibration_tsc)
    {
      guint64 ticks = tsc - calibration_tsc;
      guint64 rate = (guint64) (((double) (ns - calibration_ns) / (double) ticks) * 4294967296.0);

      if (rate > 0)
        {
          chime_clock_ns_per_tick_q32 = rate;
          g_atomic_int_set (&tsc_state, TSC_USABLE);
          /* Last, and released: chime_event_clock_now() takes the rate
           * once it sees this. */
          __atomic_store_n (&chime_clock_resync_ticks,
                            (guint64) ((double) RESYNC_NS * 4294967296.0 / (double) rate),
                            __ATOMIC_RELEASE);
        }
      else
        g_atomic_int_set (&tsc_state, TSC_UNUSABLE);
    }
  g_mutex_unlock (&lock);
}

/* Before the rate is known: the clock itself, one read (a careful sample
 * takes four, and a run's first millisecond of tokens paid for them:
 * row 2a of the benchmark, 20,000 tokens in a fresh process). */
static gint64
calibrate (ChimeThreadClock *clock)
{
  gint64 ns;

  if (g_atomic_int_get (&tsc_state) == TSC_UNKNOWN)
    calibration_begin ();
  ns = clock_ns ();
  if (g_atomic_int_get (&tsc_state) == TSC_CALIBRATING && ns - calibration_ns >= CALIBRATE_NS)
    calibration_end ();
  return chime_thread_clock_stamp (clock, ns / 1000);
}

/* This thread's base is older than RESYNC_NS (or it has none): reads the
 * clock, and checks the extrapolation against it. */
static gint64
resync (ChimeThreadClock *clock)
{
  guint64 tsc;
  gint64 ns = clock_sample (&tsc);
  guint64 elapsed = tsc - clock->base_tsc;

  if (clock->base_ns != 0 && elapsed < 4 * __atomic_load_n (&chime_clock_resync_ticks, __ATOMIC_ACQUIRE))
    {
      gint64 predicted = clock->base_ns + (gint64) ((elapsed * chime_clock_ns_per_tick_q32) >> 32);

      if (predicted - ns > STRAY_NS || ns - predicted > STRAY_NS)
        {
          g_atomic_int_set (&tsc_state, TSC_UNUSABLE);
          /* Every stamp takes the slow path again, to the clock. */
          __atomic_store_n (&chime_clock_resync_ticks, 0, __ATOMIC_RELEASE);
        }
    }
  clock->base_tsc = tsc;
  clock->base_ns = ns;
  return ns;
}

/* chime_event_clock_now() when the TSC is not (yet, or any more) to be
 * extrapolated from, or this thread's base is a millisecond old. */
gint64
chime_event_clock_now_slow (void)
{
  ChimeThreadClock *clock = &chime_thread_clock;

  if (G_UNLIKELY (g_atomic_int_get (&tsc_state) != TSC_USABLE))
    {
      /* The TSC may have been ahead when it was found unusable. */
      if (g_atomic_int_get (&tsc_state) == TSC_UNUSABLE)
        return chime_thread_clock_stamp (clock, g_get_monotonic_time ());
      return calibrate (clock);
    }
  return chime_thread_clock_stamp (clock, resync (clock) / 1000);
}

void
chime_event_clock_start (void)
{
  if (g_atomic_int_get (&tsc_state) == TSC_UNKNOWN)
    calibration_begin ();
}

#else

void
chime_event_clock_start (void)
{
}

gint64
chime_event_clock_now_slow (void)
{
  return g_get_monotonic_time ();
}

#endif
