/* Dispatcher internals shared by the ring (dispatcher.c), the sync route
 * (sync-route.c) and the async route (async-route.c). */
#pragma once

#include "dispatcher.h"

#define CHIME_CACHE_LINE 64

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

typedef struct _ChimeConsumer ChimeConsumer;

/* What a route does for its consumers. The consumer state machine
 * (dispatcher.c) calls a route only through its consumer's vtable, so that
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
  /* Positions below are filled and visible to consumers. Emitters publish
   * in the order they claimed. */
  guint64 published __attribute__ ((aligned (CHIME_CACHE_LINE)));
  /* A lower bound of every consumer's release cursor; refreshed lazily. */
  guint64 gating __attribute__ ((aligned (CHIME_CACHE_LINE)));

  gint    n_cond_waiters __attribute__ ((aligned (CHIME_CACHE_LINE)));
  gint    n_loop_waiters;
  gint    n_async_waiters;
  gint    n_parked;

  ChimeSlot      *ring __attribute__ ((aligned (CHIME_CACHE_LINE)));
  guint64         size;
  guint64         mask;
  ChimeOnFull     on_full;
  gboolean        caller_runs;     /* waiting emitters run idle sync handlers */
  guint64         newest_limit;    /* drop_newest: most a handler may lag */
  ChimeConsumer **consumers;
  guint           n_consumers;
  guint           n_async;         /* async consumers need the main loop */
  gint            n_queued;        /* drain tasks pushed and not yet started */
  GThreadPool    *pool;
  GMainContext   *main_context;

  GMutex          wait_lock;
  GCond           wait_cond;
  GSource        *progress_source; /* runs chime_dispatcher_when_done callbacks */
  GMutex          async_lock;
  GList          *async_waits;     /* AsyncWait*, guarded by async_lock */
  GPtrArray      *abandoned;       /* timed-out completions, guarded by async_lock */
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

static inline guint64
chime_dispatcher_published (ChimeDispatcher *d)
{
  return __atomic_load_n (&d->published, __ATOMIC_ACQUIRE);
}

/* Release cursor: what the ring may reuse. */
static inline guint64
chime_consumer_release (ChimeConsumer *consumer)
{
  if (consumer->dispatcher->on_full == CHIME_ON_FULL_BLOCK)
    return __atomic_load_n (&consumer->done, __ATOMIC_ACQUIRE);
  return __atomic_load_n (&consumer->read, __ATOMIC_ACQUIRE);
}

/* Makes a consumer that was claimed (RUNNING) run, on its route. */
void     chime_consumer_schedule       (ChimeConsumer *consumer);
/* Claims an IDLE consumer and schedules it. */
void     chime_consumer_wake           (ChimeConsumer *consumer);
/* Publishes the consumer's progress and wakes whoever waits on it. */
void     chime_consumer_publish_done   (ChimeConsumer *consumer,
                                        guint64        done);
/* The consumer found nothing at @pos: become IDLE unless something arrived
 * meanwhile. TRUE when it went idle (the caller must stop), FALSE when it
 * claimed itself back (the caller continues, from `done`: while it was
 * IDLE another thread may have owned it and moved on). */
gboolean chime_consumer_go_idle        (ChimeConsumer *consumer,
                                        guint64        pos);
/* The consumer reached a fence at @pos it must handle. TRUE when every
 * handler has handled everything before it; else the consumer parks and
 * FALSE is returned (the caller must stop: whoever completes the barrier
 * schedules it again). */
gboolean chime_consumer_pass_fence     (ChimeConsumer *consumer,
                                        guint64        pos);

/* Drop policies: the position the consumer handles next and its slot
 * word, from its overflow first, then from the ring. FALSE (with *pos its
 * ring cursor) when nothing is there yet. */
gboolean chime_consumer_peek_locked_next (ChimeConsumer *consumer,
                                          guint64       *pos,
                                          guint64       *word);
/* Drop policies: where the consumer's `done` may stand once nothing is in
 * flight: its oldest overflow entry, else its ring cursor. Call under
 * @lock. */
guint64  chime_consumer_pending_locked (ChimeConsumer *consumer);
/* Drop policies: takes position *pos for @consumer under its lock, from its
 * overflow or the ring. Returns FALSE when that is no longer its next
 * position (a dropping emitter moved it) or nothing is published there.
 * Otherwise *event is a new reference when the event is for it (NULL when
 * it is to be skipped). */
gboolean chime_consumer_take_locked_next (ChimeConsumer  *consumer,
                                          guint64        *pos,
                                          ChimeEvent    **event,
                                          ChimeEventType *type);

/* caller_runs: one run in SLOW_SAMPLE_EVERY is timed; SLOW_SAMPLES_NEEDED
 * slow timings in a row move a handler to the pool, and a fast timing
 * there brings it back. */
#define SLOW_SAMPLE_EVERY 16
#define SLOW_CALL_US 20
#define SLOW_SAMPLES_NEEDED 3

/* Sync route (sync-route.c): a drain task on the dispatcher's pool. */
extern const ChimeRouteFuncs chime_sync_route;
/* The pool's task function: drains the consumer @data (RUNNING). */
void     chime_sync_route_run          (gpointer data,
                                        gpointer user_data);

/* Async route (async-route.c): a GSource each on the main context. */
extern const ChimeRouteFuncs chime_async_route;
void     chime_completion_free         (ChimeCompletion *completion);
