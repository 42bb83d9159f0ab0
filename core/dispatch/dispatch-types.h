/* The structs every dispatch file shares: the slot layout, the consumer
 * and its states, the dispatcher, the route vtable, and the few inline
 * helpers of the hot path (storing progress, reading the published
 * cursor) and the debug ownership checks.
 *
 * Where events are routed, by file:
 *   ring.c         emitters: claim a position, fill its slot, publish, wake
 *   consumer.c     the consumer state machine, fences, helping laggards
 *   sync-route.c   sync handlers drained on the GThreadPool
 *   async-route.c  async handlers on the GLib main loop
 *   drop-policy.c  the non-blocking policies (drop_oldest, drop_newest)
 *   wait.c         blocking waits, when_done, flush
 *   caller-runs.c  an awaited event its emitter handles at once, off the ring
 *   loop-watchdog.c  says when an async call holds the main loop too long
 *   dispatcher.c   construction: the ring, the consumers and their routes
 *
 * Each .c has its own header for what it exports (consumer.h,
 * drop-policy.h, wait.h, sync-route.h, async-route.h); dispatcher.h is
 * the API the runtime uses. This header does not include dispatcher.h,
 * so that the routes see nothing of how the dispatcher is built. */
#pragma once

#include <glib.h>
#include "events/event-private.h"
#include "events/event-slab.h"
#include "plugins/handler.h"
#include "loop-watchdog.h"

#define CHIME_CACHE_LINE 64

/* Also declared by dispatcher.h; C11 allows the repeat. */
typedef struct _ChimeDispatcher ChimeDispatcher;
typedef struct _ChimeConsumer ChimeConsumer;
/* Defined in drop-policy.c; only that file looks inside. */
typedef struct _ChimeDropPolicy ChimeDropPolicy;

/* What a route does for its consumers. The consumer state machine
 * (consumer.c) calls a route only through its consumer's vtable, so that
 * the routes may use the state machine without the two depending on each
 * other. None of these is on the per-event path of an emitter or a
 * drain loop: schedule runs once per wake-up (after the CAS that claims
 * an idle consumer), run_until once per wait of an emitter that runs the
 * handler itself (caller_runs). Named like GSourceFuncs (ChimeRoute is
 * handler.h's route of an event type to an entry point). */
typedef struct {
  /* Makes a consumer that was claimed (RUNNING) run: a pool push for
   * sync, a main-loop wake-up for async. */
  void     (*schedule)  (ChimeConsumer *consumer);
  /* caller_runs: runs an owned (RUNNING) consumer on this thread up to
   * @limit (block policy). TRUE when it got there and still owns the
   * consumer. NULL when the route's handlers cannot run on an emitter. */
  gboolean (*run_until) (ChimeConsumer *consumer,
                         guint64        limit);
  /* Sets up and tears down what the route keeps per consumer; may be
   * NULL. */
  void     (*init)      (ChimeConsumer *consumer);
  void     (*clear)     (ChimeConsumer *consumer);
} ChimeRouteFuncs;

/* A consumer's ownership state: IDLE consumers may be claimed (CAS to
 * RUNNING) by whoever finds work for them; a RUNNING consumer is owned by
 * exactly one thread or queued to run; PARKED waits at a fence. This state
 * machine is what keeps a handler from ever running concurrently with
 * itself. A parked state carries the fence's position (pos << 2 | PARKED)
 * so that a CAS on it cannot succeed against a later parking (ABA). */
enum {
  CONSUMER_IDLE = 0,
  CONSUMER_RUNNING = 1,
  CONSUMER_PARKED = 2,
};

#define CONSUMER_STATE_KIND(state) ((state) & 3)
#define CONSUMER_PARKED_AT(pos) (((pos) << 2) | CONSUMER_PARKED)
#define CONSUMER_PARKED_POS(state) ((state) >> 2)

/* A slot is 16 bytes, four to a cache line, because each line of the
 * ring crosses between cores twice per lap: that traffic, not the work,
 * is what a ring costs. The second word packs the handlers to call (bits
 * 0-55), the event type (bits 56-60) and the fence flag (bit 63), so that
 * routing never touches the event itself. Publication is a cursor, not a
 * per-slot sequence number. */
#define SLOT_HANDLER_BITS 56
#define SLOT_HANDLER_MASK ((G_GUINT64_CONSTANT (1) << SLOT_HANDLER_BITS) - 1)
#define SLOT_TYPE_SHIFT SLOT_HANDLER_BITS
#define SLOT_FENCE_BIT (G_GUINT64_CONSTANT (1) << 63)

typedef struct {
  ChimeEvent *event;     /* the ring's reference */
  guint64     word;      /* handlers | type << 56 | fence << 63 */
} ChimeSlot;

static inline guint64
chime_slot_word (guint64        handlers,
                 ChimeEventType type,
                 gboolean       fence)
{
  return (handlers & SLOT_HANDLER_MASK) | ((guint64) type << SLOT_TYPE_SHIFT) |
         (fence ? SLOT_FENCE_BIT : 0);
}

static inline ChimeEventType
chime_slot_type (guint64 word)
{
  return (ChimeEventType) ((word >> SLOT_TYPE_SHIFT) & 0x1f);
}

static inline gboolean
chime_slot_is_fence (guint64 word)
{
  return (word & SLOT_FENCE_BIT) != 0;
}

struct _ChimeConsumer {
  /* Written by the consumer's owner: positions below are handled. */
  guint64 done __attribute__ ((aligned (CHIME_CACHE_LINE)));
  /* Drop policies only: positions below are no longer needed in the ring
   * (the consumer holds its own reference to what it is handling). Guarded
   * by @lock together with the move of a cursor by a dropping producer. */
  guint64 read;
  /* drop_newest only: events the consumer still has to handle whose ring
   * slots were needed for newer events (ChimeOverflowEntry, oldest first).
   * It handles these before the ring. Guarded by @lock; @n_overflow is
   * also read without it by emitters. */
  GQueue  overflow;
  guint   n_overflow;

  guint64 state __attribute__ ((aligned (CHIME_CACHE_LINE)));

  ChimeDispatcher *dispatcher __attribute__ ((aligned (CHIME_CACHE_LINE)));
  ChimeHandler    *handler;
  guint64          bit;
  gboolean         is_async;
  GMutex           lock;
  /* caller_runs: calls run on a waiting emitter are timed now and then; a
   * handler found slow runs on the pool instead, so that several slow
   * handlers work in parallel rather than one after another. */
  guint            inline_runs;
  guint            slow_samples;   /* slow timings in a row */
  gboolean         slow;

  /* Async route. */
  GSource         *source;
  ChimeCompletion *completion;     /* reusable; NULL until first use */
  gboolean         in_flight;
  gint64           deadline;       /* monotonic µs; 0: none */
  guint64          in_flight_pos;

  /* Sync or async, set by dispatcher.c; read when the consumer is
   * scheduled or run by a waiting emitter, never per event. Last, so that
   * the fields above keep the offsets the hot paths were tuned with. */
  const ChimeRouteFuncs *route;
#ifdef CHIME_DEBUG_RING
  gpointer         debug_owner;
#endif
};

struct _ChimeDispatcher {
  /* Claimed by emitters. */
  guint64 head __attribute__ ((aligned (CHIME_CACHE_LINE)));
  /* The single-emitter fast claim (ring.c): the thread that claims with
   * plain stores, whether a second emitting thread has been seen (then
   * every claim is a CAS, for good), and whether the owner is between
   * checking that and storing `head`. On head's line: only emitters
   * touch it. */
  gconstpointer owner;
  gint          multi;
  gint          claiming;
  GMutex        multi_lock;
  /* Positions below are filled and visible to consumers. Emitters publish
   * in the order they claimed. */
  guint64 published __attribute__ ((aligned (CHIME_CACHE_LINE)));
  /* A lower bound of every consumer's release cursor; refreshed lazily. */
  guint64 gating __attribute__ ((aligned (CHIME_CACHE_LINE)));

  gint    n_cond_waiters __attribute__ ((aligned (CHIME_CACHE_LINE)));
  gint    n_loop_waiters;
  /* The thread that waits iterating the main context, while
   * n_loop_waiters > 0: only the context's owner can, and it needs no
   * wake-up for progress it makes itself (chime_dispatch_thread_mark). */
  gconstpointer loop_waiter;
  gint    n_async_waiters;
  gint    n_parked;

  ChimeSlot      *ring __attribute__ ((aligned (CHIME_CACHE_LINE)));
  guint64         size;
  guint64         mask;
  /* NULL under the block policy; under a non-blocking one, set up by
   * drop-policy.c, and then the ring never waits: cursors move under the
   * consumers' locks instead (see drop-policy.c). */
  const ChimeDropPolicy *drop;
  gboolean        caller_runs;     /* waiting emitters run idle sync handlers */
  ChimeConsumer **consumers;
  guint           n_consumers;
  guint           n_async;         /* async consumers need the main loop */
  gint            n_queued;        /* drain tasks pushed and not yet started */
  GThreadPool    *pool;
  GMainContext   *main_context;
  /* drop_newest: most a handler may lag. Here rather than beside `drop`
   * so that `n_queued` stays on the line the emitters read anyway. */
  guint64         newest_limit;

  GMutex          wait_lock;
  GCond           wait_cond;
  GSource        *progress_source; /* runs chime_dispatcher_when_done callbacks */
  GMutex          async_lock;
  GList          *async_waits;     /* AsyncWait*, guarded by async_lock */
  GPtrArray      *abandoned;       /* timed-out completions, guarded by async_lock */
  /* The events the slots started with (NULL: none, see dispatcher.c). */
  ChimeEventSlab *slab;

  /* Async calls, marked for the watchdog (NULL: none or disabled). */
  ChimeLoopMark      loop_mark;
  ChimeLoopWatchdog *watchdog;
};

/* Debug builds (-DCHIME_DEBUG_RING) check the ownership rule: only one
 * thread at a time acts for a consumer. */
#ifdef CHIME_DEBUG_RING
# define CHIME_OWNER_TAKE(c)                                                        \
  G_STMT_START {                                                                    \
    gpointer none_ = NULL;                                                          \
    if (!__atomic_compare_exchange_n (&(c)->debug_owner, &none_, g_thread_self (),  \
                                      FALSE, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))   \
      g_error ("consumer '%s' owned by two threads at once",                       \
               (c)->handler->settings.name);                                        \
  } G_STMT_END
# define CHIME_OWNER_DROP(c) __atomic_store_n (&(c)->debug_owner, NULL, __ATOMIC_SEQ_CST)
# define CHIME_OWNER_DROP_IF_MINE(c)                                                \
  G_STMT_START {                                                                    \
    gpointer mine_ = g_thread_self ();                                              \
    __atomic_compare_exchange_n (&(c)->debug_owner, &mine_, NULL, FALSE,            \
                                 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);               \
  } G_STMT_END
#else
# define CHIME_OWNER_DROP_IF_MINE(c) G_STMT_START { } G_STMT_END
# define CHIME_OWNER_TAKE(c) G_STMT_START { } G_STMT_END
# define CHIME_OWNER_DROP(c) G_STMT_START { } G_STMT_END
#endif

/* Stores a consumer's progress; it never moves backwards. */
static inline void
chime_consumer_store_done (ChimeConsumer *consumer,
                           guint64        done)
{
#ifdef CHIME_DEBUG_RING
  guint64 old = __atomic_load_n (&consumer->done, __ATOMIC_ACQUIRE);
  do
    {
      if (done < old)
        g_error ("consumer '%s': done moved back from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                 consumer->handler->settings.name, old, done);
    }
  while (!__atomic_compare_exchange_n (&consumer->done, &old, done, FALSE,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
#else
  __atomic_store_n (&consumer->done, done, __ATOMIC_RELEASE);
#endif
}

/* The batch in which a drain stores its progress, and by which an emitter
 * waiting for room waits past the one slot it needs: 64, or a sixteenth
 * of a small ring. Each store of a consumer's `done` that an emitter reads
 * is a cache line crossing cores both ways; one per event, with the
 * emitter waiting on the ring a slot at a time, kept the two threads in
 * lockstep (docs/benchmarks.md, "The third round"). Where a drain stops
 * (caught up, at a fence, at its limit, yielding its thread) it stores
 * the exact position, so flushes, fences and waiters see every event. */
static inline guint64
chime_dispatcher_batch (ChimeDispatcher *d)
{
  return CLAMP (d->size / 16, 1, 64);
}

static inline guint64
chime_dispatcher_published (ChimeDispatcher *d)
{
  return __atomic_load_n (&d->published, __ATOMIC_ACQUIRE);
}

static inline gboolean
chime_dispatcher_is_published (ChimeDispatcher *d,
                               guint64          pos)
{
  return pos < chime_dispatcher_published (d);
}

/* The next position to be claimed. */
static inline guint64
chime_dispatcher_head (ChimeDispatcher *d)
{
  return __atomic_load_n (&d->head, __ATOMIC_ACQUIRE);
}

/* A thread, named without a call: the address of this thread-local byte
 * (defined in ring.c). A later thread may get the address of a dead one,
 * which is fine wherever the dead one can no longer act. */
extern __thread guint8 chime_dispatch_thread_mark __attribute__ ((tls_model ("initial-exec")));

static inline gconstpointer
chime_dispatch_thread_self (void)
{
  return &chime_dispatch_thread_mark;
}

/* A pause in a spin loop. */
static inline void
chime_cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield");
#endif
}

/* Asks for the cache line of @address, to be written: a hint, which
 * never faults. */
static inline void
chime_prefetch_for_write (gconstpointer address)
{
#if defined(__x86_64__) || defined(__i386__)
  /* PREFETCHW; a no-op where the processor lacks it. __builtin_prefetch
   * makes it only with -mprfchw, a read prefetch otherwise. */
  __asm__ __volatile__ ("prefetchw %0" : : "m" (*(const char *) address));
#else
  __builtin_prefetch (address, 1, 3);
#endif
}

/* caller_runs: one run in SLOW_SAMPLE_EVERY is timed; SLOW_SAMPLES_NEEDED
 * slow timings in a row move a handler to the pool, and a fast timing
 * there brings it back. */
#define SLOW_SAMPLE_EVERY 16
#define SLOW_CALL_US 20
#define SLOW_SAMPLES_NEEDED 3
