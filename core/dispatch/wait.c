/* Waiting: blocking until handlers catch up, and callbacks for when they
 * have.
 *
 * An emitter waits for room in the ring (block policy) or for its events
 * to be handled (awaited delivery, flush). While it waits it helps: it
 * moves idle laggards over positions not meant for them and schedules or
 * runs them (consumer.c), spins a little, and then sleeps on progress. On
 * the thread that can own the main context it iterates the context
 * instead, because async handlers only move while someone does.
 * chime_dispatcher_when_done queues a callback that the progress source
 * runs on the main context once its condition holds. See
 * docs/architecture.md. */
#include "config.h"

#include "dispatcher.h"
#include "wait.h"
#include "consumer.h"
#include "drop-policy.h"
#include "barrier.h"

/* How long waiters spin before they sleep. */
#define WAIT_SPINS 4000
#define WAIT_YIELDS 16

typedef struct {
  guint64     end;        /* 0: waiting for room in the ring */
  GSourceFunc callback;
  gpointer    user_data;
} AsyncWait;

static gboolean
keep_ticking (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------
 * What waiters wait for
 * ---------------------------------------------------------------- */

/* Each cursor is read exactly once: GLib's MIN() evaluates its arguments
 * twice, and a cursor that moves between the two reads would make the
 * minimum larger than a value it was compared against. */
guint64
chime_dispatcher_min_release (ChimeDispatcher *d)
{
  guint64 least = __atomic_load_n (&d->head, __ATOMIC_ACQUIRE);

  for (guint i = 0; i < d->n_consumers; i++)
    {
      guint64 release = chime_consumer_release (d->consumers[i]);
      if (release < least)
        least = release;
    }
  return least;
}

static guint64
min_done (ChimeDispatcher *d)
{
  guint64 least = G_MAXUINT64;

  for (guint i = 0; i < d->n_consumers; i++)
    {
      guint64 done = __atomic_load_n (&d->consumers[i]->done, __ATOMIC_ACQUIRE);
      if (done < least)
        least = done;
    }
  return least;
}

gboolean
chime_dispatcher_is_done (ChimeDispatcher *d,
                          guint64          end)
{
  return min_done (d) >= end;
}

typedef gboolean (*WaitPredicate) (ChimeDispatcher *d, guint64 arg);

static gboolean
done_reached (ChimeDispatcher *d,
              guint64          end)
{
  return min_done (d) >= end;
}

static gboolean
room_for (ChimeDispatcher *d,
          guint64          pos)
{
  guint64 release = chime_dispatcher_min_release (d);

  /* Release: an emitter that reuses a slot on the strength of this cached
   * minimum (its acquire load in claim(), ring.c) must be ordered after
   * the consumers' last reads of the slot and their handlers' use of its
   * event, which this thread acquired from their `done`. Relaxed, the
   * emitter's overwrite and unref raced with them (a TSan report of
   * fill_slot's write against help_consumer's read of the slot). */
  __atomic_store_n (&d->gating, release, __ATOMIC_RELEASE);
  return pos < release + d->size;
}

/* One blocking step while owning the main context: iterate it, so async
 * handlers make progress. Progress always wakes the context; a timer is a
 * safety net so a lost wake-up can never become a hang. */
static void
iterate_main_context (ChimeDispatcher *d,
                      WaitPredicate    predicate,
                      guint64          arg)
{
  GSource *safety_net = g_timeout_source_new (50);

  g_source_set_callback (safety_net, keep_ticking, NULL, NULL);
  g_source_attach (safety_net, d->main_context);
  /* Registered before the last look, so progress after it wakes us. The
   * owner of the context is the only thread that can be here: the count's
   * seq_cst add publishes the name with it. */
  __atomic_store_n (&d->loop_waiter, chime_dispatch_thread_self (), __ATOMIC_RELAXED);
  __atomic_add_fetch (&d->n_loop_waiters, 1, __ATOMIC_SEQ_CST);
  /* The heavy side of chime_consumer_notify_progress's barrier. */
  chime_barrier_heavy ();
  if (!predicate (d, arg))
    g_main_context_iteration (d->main_context, TRUE);
  __atomic_sub_fetch (&d->n_loop_waiters, 1, __ATOMIC_SEQ_CST);
  g_source_destroy (safety_net);
  g_source_unref (safety_net);
}

/* One blocking step while another thread owns the main context. */
static void
sleep_on_progress (ChimeDispatcher *d,
                   WaitPredicate    predicate,
                   guint64          arg)
{
  g_mutex_lock (&d->wait_lock);
  __atomic_add_fetch (&d->n_cond_waiters, 1, __ATOMIC_SEQ_CST);
  chime_barrier_heavy ();
  if (!predicate (d, arg))
    g_cond_wait_until (&d->wait_cond, &d->wait_lock,
                       g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND);
  __atomic_sub_fetch (&d->n_cond_waiters, 1, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&d->wait_lock);
}

/* ------------------------------------------------------------------
 * Blocking
 * ---------------------------------------------------------------- */

/* wait_for once helping was not enough: spins, then blocks. */
static void
wait_longer (ChimeDispatcher *d,
             WaitPredicate    predicate,
             guint64          arg,
             guint64          help_target)
{
  if (d->n_async > 0 && g_main_context_acquire (d->main_context))
    {
      /* Async handlers move only while some thread iterates the main
       * context, and that can be this one: spinning would only wait. */
      g_main_context_release (d->main_context);
      goto block;
    }
  for (guint i = 0; i < WAIT_SPINS; i++)
    {
      chime_cpu_relax ();
      if (predicate (d, arg))
        return;
    }
  for (guint i = 0; i < WAIT_YIELDS; i++)
    {
      g_thread_yield ();
      if (predicate (d, arg))
        return;
    }

block:
  while (!predicate (d, arg))
    {
      chime_consumer_help_laggards (d, help_target);
      chime_consumer_wake_parked (d);
      if (predicate (d, arg))
        break;
      /* Async handlers only run while someone iterates the main context:
       * whenever nobody else does (again), this thread does. */
      if (d->n_async > 0 && g_main_context_acquire (d->main_context))
        {
          iterate_main_context (d, predicate, arg);
          g_main_context_release (d->main_context);
        }
      else
        sleep_on_progress (d, predicate, arg);
    }
}

/* Inline, so that each caller's predicate is a direct call: an awaited
 * event that its emitter handles itself (caller_runs) never gets past
 * the second look. */
static inline __attribute__ ((always_inline)) void
wait_for (ChimeDispatcher *d,
          WaitPredicate    predicate,
          guint64          arg,
          guint64          help_target)
{
  if (predicate (d, arg))
    return;
  chime_consumer_help_laggards (d, help_target);
  chime_consumer_wake_parked (d);
  /* Helping often was the whole wait (caller_runs): look again before the
   * first pause, which alone costs more than an awaited event. */
  if (predicate (d, arg))
    return;
  wait_longer (d, predicate, arg, help_target);
}

void
chime_dispatcher_wait (ChimeDispatcher *d,
                       guint64          end)
{
  wait_for (d, done_reached, end, end);
}

gboolean
chime_dispatcher_has_room (ChimeDispatcher *d,
                           guint64          pos)
{
  return room_for (d, pos);
}

/* Waits until there is room for a batch more than @pos needs: once the
 * ring is full the emitter then waits once a batch rather than once an
 * event. The room is always reached: the ring has more slots than a
 * batch, and consumers can handle everything up to @pos. */
void
chime_dispatcher_wait_for_room (ChimeDispatcher *d,
                                guint64          pos)
{
  wait_for (d, room_for, pos + chime_dispatcher_batch (d), pos);
}

void
chime_dispatcher_flush (ChimeDispatcher *d)
{
  chime_dispatcher_wait (d, chime_dispatcher_head (d));
}

/* ------------------------------------------------------------------
 * Callbacks on the main context
 * ---------------------------------------------------------------- */

static gboolean
async_wait_ready (ChimeDispatcher *d,
                  AsyncWait       *wait)
{
  if (wait->end == 0)
    return room_for (d, chime_dispatcher_head (d));
  return done_reached (d, wait->end);
}

/* The progress source: runs the callbacks whose condition now holds. */
static gboolean
progress_dispatch (GSource    *source,
                   GSourceFunc callback,
                   gpointer    user_data)
{
  ChimeDispatcher *d = user_data;
  GList *ready = NULL;

  g_source_set_ready_time (source, -1);
  g_mutex_lock (&d->async_lock);
  for (GList *l = d->async_waits; l != NULL;)
    {
      GList *next = l->next;
      if (async_wait_ready (d, l->data))
        {
          d->async_waits = g_list_remove_link (d->async_waits, l);
          ready = g_list_concat (ready, l);
          __atomic_sub_fetch (&d->n_async_waiters, 1, __ATOMIC_SEQ_CST);
        }
      l = next;
    }
  if (d->async_waits != NULL)
    {
      /* Some laggards may need a push to get there. */
      chime_consumer_help_laggards (d, chime_dispatcher_head (d));
      chime_consumer_wake_parked (d);
    }
  g_mutex_unlock (&d->async_lock);

  for (GList *l = ready; l != NULL; l = l->next)
    {
      AsyncWait *wait = l->data;
      wait->callback (wait->user_data);
      g_free (wait);
    }
  g_list_free (ready);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs progress_source_funcs = {
  .dispatch = progress_dispatch,
};

GSource *
chime_dispatcher_progress_source_new (ChimeDispatcher *d)
{
  GSource *source = g_source_new (&progress_source_funcs, sizeof (GSource));

  g_source_set_callback (source, NULL, d, NULL);
  g_source_set_name (source, "chime dispatcher progress");
  return source;
}

void
chime_dispatcher_when_done (ChimeDispatcher *d,
                            guint64          end,
                            GSourceFunc      callback,
                            gpointer         user_data)
{
  AsyncWait *wait = g_new0 (AsyncWait, 1);

  wait->end = end;
  wait->callback = callback;
  wait->user_data = user_data;
  g_mutex_lock (&d->async_lock);
  d->async_waits = g_list_append (d->async_waits, wait);
  __atomic_add_fetch (&d->n_async_waiters, 1, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&d->async_lock);
  /* Before the progress source looks (below): progress stored before this
   * is then seen there, or its notifier sees the count. */
  chime_barrier_heavy ();
  /* Check at once: the condition may already hold. */
  chime_consumer_help_laggards (d, end != 0 ? end : chime_dispatcher_head (d));
  g_source_set_ready_time (d->progress_source, 0);
}

