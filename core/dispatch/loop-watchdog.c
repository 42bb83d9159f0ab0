/* Watching the main loop for async handlers that hold it.
 *
 * An async handler's entry point runs on the main loop, which every async
 * handler, every chime_run_when_ready() callback and the embedder's own
 * sources share: an entry point that blocks (sleeps, waits on a socket)
 * stops them all, and its own timeout_ms cannot fire either, since the
 * deadline is a source of the same loop. The route marks each call (two
 * stores, no clock read: the async route is on the per-event path); this
 * thread looks a few times per limit, and when the same call is still
 * there a limit after it first saw it, it says which handler holds the
 * loop and in which entry point, once per call. */
#include "config.h"

#include "loop-watchdog.h"

struct _ChimeLoopWatchdog {
  ChimeLoopMark *mark;
  gint64         limit_us;
  GThread       *thread;
  GMutex         lock;
  GCond          cond;
  gboolean       stopping;   /* guarded by lock */
};

/* How often the thread looks: a quarter of the limit, at most 250 ms, so
 * a report comes at most a quarter late. */
static gint64
look_interval_us (const ChimeLoopWatchdog *watchdog)
{
  return MIN (watchdog->limit_us / 4, 250 * G_TIME_SPAN_MILLISECOND);
}

static void
report (const ChimeLoopWatchdog *watchdog,
        ChimeHandler            *holder,
        ChimeEventType           type)
{
  g_log ("chime", G_LOG_LEVEL_WARNING,
         "handler '%s' (%s) has held the main loop for over %" G_GINT64_FORMAT " ms in on_%s: "
         "every async handler and callback waits; an async entry point must return at once "
         "(complete later, or make the handler sync)",
         holder->settings.name, holder->descriptor->name,
         watchdog->limit_us / G_TIME_SPAN_MILLISECOND, chime_event_type_to_string (type));
}

static gpointer
watch (gpointer data)
{
  ChimeLoopWatchdog *watchdog = data;
  guint64 seen_calls = 0;
  gint64 seen_since = 0;
  gboolean reported = FALSE;

  g_mutex_lock (&watchdog->lock);
  while (!watchdog->stopping)
    {
      guint64 calls = __atomic_load_n (&watchdog->mark->calls, __ATOMIC_ACQUIRE);
      ChimeHandler *holder = __atomic_load_n (&watchdog->mark->holder, __ATOMIC_ACQUIRE);
      gint type = __atomic_load_n (&watchdog->mark->type, __ATOMIC_RELAXED);
      gint64 now = g_get_monotonic_time ();

      /* A count that moved while we read belongs to a call that ended. */
      if (holder == NULL || calls != __atomic_load_n (&watchdog->mark->calls, __ATOMIC_ACQUIRE))
        seen_calls = 0;
      else if (calls != seen_calls)
        {
          seen_calls = calls;
          seen_since = now;
          reported = FALSE;
        }
      else if (!reported && now - seen_since >= watchdog->limit_us)
        {
          report (watchdog, holder, (ChimeEventType) type);
          reported = TRUE;
        }
      g_cond_wait_until (&watchdog->cond, &watchdog->lock, now + look_interval_us (watchdog));
    }
  g_mutex_unlock (&watchdog->lock);
  return NULL;
}

ChimeLoopWatchdog *
chime_loop_watchdog_new (ChimeLoopMark *mark,
                         guint          limit_ms)
{
  ChimeLoopWatchdog *watchdog = g_new0 (ChimeLoopWatchdog, 1);

  g_return_val_if_fail (limit_ms > 0, NULL);
  watchdog->mark = mark;
  watchdog->limit_us = (gint64) limit_ms * G_TIME_SPAN_MILLISECOND;
  g_mutex_init (&watchdog->lock);
  g_cond_init (&watchdog->cond);
  watchdog->thread = g_thread_new ("chime-loop-watchdog", watch, watchdog);
  return watchdog;
}

void
chime_loop_watchdog_free (ChimeLoopWatchdog *watchdog)
{
  if (watchdog == NULL)
    return;
  g_mutex_lock (&watchdog->lock);
  watchdog->stopping = TRUE;
  g_cond_signal (&watchdog->cond);
  g_mutex_unlock (&watchdog->lock);
  g_thread_join (watchdog->thread);
  g_mutex_clear (&watchdog->lock);
  g_cond_clear (&watchdog->cond);
  g_free (watchdog);
}
