/* The ring floor: what moving one token event to a handler on another core
 * costs on this machine, with nothing of chime's in the way.
 *
 *   bench-floor [--n N] [--runs R] [--stamped] [--producer-work K]
 *
 * One producer thread and one consumer thread, a ring of 4096 16-byte
 * slots {event, word} and a published cursor, as chime's dispatcher has
 * (core/dispatch/ring.c). Per event the producer copies the token
 * ("0".."9") into a 128-byte event from a per-slot slab, fills the slot
 * and publishes it with a release store; the consumer reads the cursor
 * once per batch, calls the handler through a function pointer for every
 * slot below it (the handler checks the token's order) and stores its
 * `done` cursor, which the producer reads only when the ring may be full.
 * This is mode b of ../shared/tools/ring-floor/floor.c, written for
 * bench/run: no locked instruction, no clock read, no allocation. It
 * prints one JSON line like bench-dispatch's: the median wall time per
 * event and the CPU time of both threads per event. The threads are not
 * pinned, as chime's are not.
 *
 * --stamped adds what chime's contract adds to every event: a time stamp
 * on the monotonic clock, in microseconds, that never goes back on the
 * thread. It is made as chime makes it (core/events/event-clock.h): an
 * rdtsc extrapolated from a reading of the clock, with the same
 * arithmetic, so that it says what the floor is for an event that must
 * carry its time. It is not a row of bench/run's table: on the VM chime is
 * measured on, the rdtsc alone makes this loop 10 times slower (80 ns
 * against 8), slower than chime's row 1 with the same stamp, whose
 * emitter takes its lines for writing ahead (docs/benchmarks.md, "The
 * fourth round").
 *
 * --producer-work K adds K empty loop turns (a compiler barrier each) to
 * the producer's work per event, nothing else: it shows the floor's two
 * regimes. While the producer is faster than the consumer the ring stays
 * full and both stream at the consumer's pace (6-8 ns here); once the
 * producer is the slower, the consumer catches up after every event and
 * each event's lines cross between the cores while they are being
 * written (70-80 ns here). On this VM the turn comes at about K = 20 to
 * 40: the floor is the first regime, and a producer that does 10 ns more
 * work per event than the floor's leaves it (docs/benchmarks.md, "The
 * fifth round"). */
#include <glib.h>

#include <stdio.h>
#if defined(__x86_64__) && defined(__GNUC__)
# include <x86intrin.h>
#endif
#include <stdlib.h>
#include <string.h>
#include "bench-usage.h"

#define FLOOR_RING 4096
#define FLOOR_MASK (FLOOR_RING - 1)
#define FLOOR_LINE 64

typedef struct {
  gpointer event;
  guint64  word;
} FloorSlot;

/* 128 bytes, as a ChimeEvent. */
typedef struct {
  gint        ref_count;
  gint        type;
  gpointer    run;
  gint64      time;
  const char *token;
  char        pad[24];
  char        text[72];
} FloorEvent;

typedef struct {
  guint64 count;
  guint64 violations;
} FloorCounter;

typedef struct {
  FloorSlot  *ring;
  FloorEvent *slab;
  guint64     n;
  guint64     published __attribute__ ((aligned (FLOOR_LINE)));
  guint64     done __attribute__ ((aligned (FLOOR_LINE)));
  FloorCounter counter __attribute__ ((aligned (FLOOR_LINE)));
  gint64      ended;
} Floor;

/* The clock as chime reads it per event: ticks since a base reading,
 * scaled (ns per tick << 32), to µs, never below the last stamp. */
typedef struct {
  guint64 base_tsc;
  gint64  base_ns;
  gint64  last_us;
  guint64 ns_per_tick_q32;
  guint64 window;
} FloorClock;

static void
floor_clock_init (FloorClock *clock)
{
#if defined(__x86_64__) && defined(__GNUC__)
  guint64 tsc0 = __rdtsc ();
  gint64 ns0 = g_get_monotonic_time () * 1000;
  guint64 tsc1;

  g_usleep (2000);
  tsc1 = __rdtsc ();
  clock->ns_per_tick_q32 = (guint64) ((double) (g_get_monotonic_time () * 1000 - ns0) /
                                      (double) (tsc1 - tsc0) * 4294967296.0);
  clock->base_tsc = tsc1;
  clock->base_ns = g_get_monotonic_time () * 1000;
  clock->window = G_MAXUINT64;
#endif
}

static inline gint64
floor_clock_now (FloorClock *clock)
{
#if defined(__x86_64__) && defined(__GNUC__)
  guint64 elapsed = __rdtsc () - clock->base_tsc;
  gint64 us;

  if (G_UNLIKELY (elapsed >= clock->window))
    return g_get_monotonic_time ();
  us = (clock->base_ns + (gint64) ((elapsed * clock->ns_per_tick_q32) >> 32)) / 1000;
  if (G_UNLIKELY (us < clock->last_us))
    us = clock->last_us;
  clock->last_us = us;
  return us;
#else
  return g_get_monotonic_time ();
#endif
}

static const char *const digits[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };

static gboolean __attribute__ ((noinline))
floor_handler (gpointer    instance,
               FloorEvent *event)
{
  FloorCounter *counter = instance;

  if (event->token[0] != '0' + (char) (counter->count % 10))
    counter->violations++;
  counter->count++;
  return TRUE;
}

static gboolean (*volatile handler_func) (gpointer, FloorEvent *) = floor_handler;

static gpointer
consumer_thread (gpointer data)
{
  Floor *f = data;
  gboolean (*func) (gpointer, FloorEvent *) = handler_func;
  guint64 pos = 0;

  while (pos < f->n)
    {
      guint64 avail = __atomic_load_n (&f->published, __ATOMIC_ACQUIRE);

      if (pos >= avail)
        {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause ();
#endif
          continue;
        }
      for (; pos < avail; pos++)
        {
          FloorSlot *slot = &f->ring[pos & FLOOR_MASK];

          if (slot->word & 1)
            func (&f->counter, slot->event);
        }
      __atomic_store_n (&f->done, pos, __ATOMIC_RELEASE);
    }
  f->ended = g_get_monotonic_time ();
  return NULL;
}

/* One run: the wall ns per event; *cpu_ns gets the CPU ns per event of
 * the process (both threads). */
static double
run_floor (guint64   n,
           gboolean  stamped,
           gint      producer_work,
           double   *cpu_ns)
{
  FloorClock clock = { 0 };
  Floor *f = g_aligned_alloc0 (1, sizeof (Floor), FLOOR_LINE);
  GThread *consumer;
  guint64 gating = 0;
  gint64 start, cpu_start;
  double wall;

  f->n = n;
  f->ring = g_aligned_alloc0 (FLOOR_RING, sizeof (FloorSlot), FLOOR_LINE);
  f->slab = g_aligned_alloc0 (FLOOR_RING, sizeof (FloorEvent), FLOOR_LINE);
  if (stamped)
    floor_clock_init (&clock);
  consumer = g_thread_new ("floor-consumer", consumer_thread, f);
  g_usleep (1000);   /* the consumer is spinning */
  cpu_start = bench_cpu_us ();
  start = g_get_monotonic_time ();
  for (guint64 pos = 0; pos < n; pos++)
    {
      FloorSlot *slot = &f->ring[pos & FLOOR_MASK];
      FloorEvent *event = &f->slab[pos & FLOOR_MASK];

      while (pos >= gating + FLOOR_RING)
        gating = __atomic_load_n (&f->done, __ATOMIC_ACQUIRE);
      for (gint k = 0; k < producer_work; k++)
        __asm__ volatile ("" ::: "memory");
      event->ref_count = 1;
      event->type = 2;
      memcpy (event->text, digits[pos % 10], 2);
      event->token = event->text;
      if (stamped)
        event->time = floor_clock_now (&clock);
      slot->event = event;
      slot->word = 1 | (G_GUINT64_CONSTANT (2) << 56);
      __atomic_store_n (&f->published, pos + 1, __ATOMIC_RELEASE);
    }
  g_thread_join (consumer);
  *cpu_ns = (bench_cpu_us () - cpu_start) * 1000.0 / n;
  wall = (f->ended - start) * 1000.0 / n;
  if (f->counter.count != n || f->counter.violations != 0)
    g_error ("floor: the handler saw %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
             " tokens, %" G_GUINT64_FORMAT " out of order", f->counter.count, n, f->counter.violations);
  g_aligned_free (f->ring);
  g_aligned_free (f->slab);
  g_aligned_free (f);
  return wall;
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

int
main (int    argc,
      char **argv)
{
  gint64 n = 20000000;
  gint runs = 3;
  gboolean stamped = FALSE;
  gint producer_work = 0;
  GOptionEntry entries[] = {
    { "n", 0, 0, G_OPTION_ARG_INT64, &n, "events per run (default 20000000)", "N" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "runs; the median is printed", "R" },
    { "stamped", 0, 0, G_OPTION_ARG_NONE, &stamped, "stamp every event with the time, as chime does", NULL },
    { "producer-work", 0, 0, G_OPTION_ARG_INT, &producer_work,
      "K empty loop turns more per event on the producer (default 0)", "K" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- the ring floor of this machine");
  g_autoptr (GError) error = NULL;
  g_autofree double *wall = NULL;
  g_autofree double *cpu = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || runs < 1 || n < 10 ||
      producer_work < 0)
    {
      g_printerr ("bench-floor: %s\n", error != NULL ? error->message
                                                    : "--runs >= 1, --n >= 10 and --producer-work >= 0");
      return 2;
    }
  wall = g_new0 (double, runs);
  cpu = g_new0 (double, runs);
  for (gint r = 0; r < runs; r++)
    wall[r] = run_floor (n, stamped, producer_work, &cpu[r]);
  qsort (wall, runs, sizeof (double), compare_doubles);
  qsort (cpu, runs, sizeof (double), compare_doubles);
  g_print ("{\"case\":\"%s\",\"n\":%" G_GINT64_FORMAT ",\"handlers\":1,\"delivery\":\"none\","
           "\"ns_per_event\":%.1f,\"cpu_ns_per_event\":%.1f,\"min_ns\":%.1f,\"max_ns\":%.1f,"
           "\"wall_s\":%.4f,\"peak_rss_mb\":%.1f,\"ok\":true,"
           "\"note\":\"one producer, one consumer, a 4096-slot ring, no locked instruction%s\"}\n",
           stamped ? "ring_floor_stamped" : producer_work > 0 ? "ring_floor_producer_work" : "ring_floor", n, wall[runs / 2], cpu[runs / 2],
           wall[0], wall[runs - 1], wall[runs / 2] * n / 1e9, bench_peak_rss_mb (),
           stamped ? ", a clock stamp per event" : "");
  return 0;
}
