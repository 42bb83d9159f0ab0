/* ThreadSanitizer builds only: the happens-before edges of GLib's
 * primitives, which TSan cannot see in an uninstrumented libglib.
 *
 * configure force-includes this header (-include) into every file of a
 * build whose CFLAGS have -fsanitize=thread; nothing includes it by
 * name. On Linux GMutex, GCond and g_once_init_leave() are atomics and
 * futex(2) calls inside libglib-2.0.so, which is not compiled with
 * -fsanitize=thread, so TSan sees neither the lock nor the unlock, and
 * reports every access guarded by a GMutex as a race. Likewise the
 * hand-off of a task through a GThreadPool (its GAsyncQueue is a GMutex
 * and a GCond inside libglib) and the wait of g_thread_pool_free() for
 * the running tasks; and a GTask's result returned from a worker thread
 * (g_task_run_in_thread()) to the thread that propagates it. (GRecMutex
 * and GRWLock are pthread objects, which
 * TSan intercepts even when libglib calls them.)
 *
 * The macros below call GLib's functions and tell TSan the edge each
 * one guarantees, with __tsan_release() before the call that publishes
 * and __tsan_acquire() after the call that observes, keyed on the
 * primitive (the mutex, the once location) or, for the pool, on the
 * task's data: an edge no wider than the one GLib provides, so that a
 * race the primitive does not order is still reported. They cover the
 * calls compiled with this header (libchime, the runner, the plugins,
 * the tests); GLib's own internal locking stays invisible, and what it
 * shows of it is suppressed in tests/tsan.supp.
 *
 * It includes <glib.h> first, so the macros never rewrite GLib's own
 * declarations; code that includes <glib.h> again gets nothing more
 * (include guards). See docs/reliability.md, "ThreadSanitizer". */
#pragma once

/* Coming first, this header decides the feature-test macros for the
 * system headers it includes: those of a file that asks for _GNU_SOURCE
 * (core/plugins/plugin-search.c, for dladdr()) would come too late. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <glib.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <sanitizer/tsan_interface.h>

static inline void
chime_tsan_mutex_lock (GMutex *mutex)
{
  (g_mutex_lock) (mutex);
  __tsan_acquire (mutex);
}

static inline gboolean
chime_tsan_mutex_trylock (GMutex *mutex)
{
  if (!(g_mutex_trylock) (mutex))
    return FALSE;
  __tsan_acquire (mutex);
  return TRUE;
}

static inline void
chime_tsan_mutex_unlock (GMutex *mutex)
{
  __tsan_release (mutex);
  (g_mutex_unlock) (mutex);
}

/* A wait releases the mutex and takes it again before it returns. */
static inline void
chime_tsan_cond_wait (GCond  *cond,
                      GMutex *mutex)
{
  __tsan_release (mutex);
  (g_cond_wait) (cond, mutex);
  __tsan_acquire (mutex);
}

static inline gboolean
chime_tsan_cond_wait_until (GCond  *cond,
                            GMutex *mutex,
                            gint64  end_time)
{
  gboolean signalled;

  __tsan_release (mutex);
  signalled = (g_cond_wait_until) (cond, mutex, end_time);
  __tsan_acquire (mutex);
  return signalled;
}

/* tests/tsan.supp ignores what GLib's own calls of free() do, so chime's
 * frees are compiled as the free() they are in GLib 2.74 (g_malloc() is
 * malloc(), and g_aligned_alloc() posix_memalign()), for TSan to check
 * them against the uses of that memory on other threads. A g_free passed
 * as a function (GDestroyNotify, g_autofree) is still GLib's. */
#define g_free(mem) free (mem)
#define g_aligned_free(mem) free (mem)

/* GMutexLocker's functions are inlines of <glib.h>, compiled before the
 * macros below, so g_autoptr (GMutexLocker) would lock and unlock
 * unannotated: the name stands for a locker of our own instead (a locker
 * is the mutex itself, as in GLib). */
typedef void ChimeTsanMutexLocker;

static inline ChimeTsanMutexLocker *
chime_tsan_mutex_locker_new (GMutex *mutex)
{
  chime_tsan_mutex_lock (mutex);
  return mutex;
}

static inline void
chime_tsan_mutex_locker_free (ChimeTsanMutexLocker *locker)
{
  chime_tsan_mutex_unlock (locker);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeTsanMutexLocker, chime_tsan_mutex_locker_free)

#define GMutexLocker ChimeTsanMutexLocker
#define g_mutex_locker_new(mutex) chime_tsan_mutex_locker_new (mutex)
#define g_mutex_locker_free(locker) chime_tsan_mutex_locker_free (locker)
#define g_mutex_lock(mutex) chime_tsan_mutex_lock (mutex)
#define g_mutex_trylock(mutex) chime_tsan_mutex_trylock (mutex)
#define g_mutex_unlock(mutex) chime_tsan_mutex_unlock (mutex)
#define g_cond_wait(cond, mutex) chime_tsan_cond_wait ((cond), (mutex))
#define g_cond_wait_until(cond, mutex, end_time) \
  chime_tsan_cond_wait_until ((cond), (mutex), (end_time))

/* g_once_init_leave() stores the location's value inside libglib; the
 * fast path of g_once_init_enter() is an atomic load in the caller. The
 * release comes before that store, so whoever sees the value also
 * acquires what the initializer wrote. */
#undef g_once_init_enter
#define g_once_init_enter(location)                                     \
  (G_GNUC_EXTENSION ({                                                  \
    gboolean chime_tsan_first_ =                                        \
      !g_atomic_pointer_get (location) && (g_once_init_enter) (location); \
    if (!chime_tsan_first_)                                             \
      __tsan_acquire ((void *) (location));                             \
    chime_tsan_first_;                                                  \
  }))
#undef g_once_init_leave
#define g_once_init_leave(location, result)                             \
  (G_GNUC_EXTENSION ({                                                  \
    __tsan_release ((void *) (location));                               \
    (g_once_init_leave) ((location), (gsize) (result));                 \
  }))

/* A pool's tasks run through a trampoline that acquires what the push of
 * their data released, and releases, when each task returns, what
 * g_thread_pool_free (pool, ..., TRUE) acquires once it has waited for
 * them. That edge is keyed on the trampoline's record, which only this
 * header frees: GLib frees the pool itself, possibly on its last thread,
 * and TSan forgets the edges of memory that is freed. The record is found
 * again by the pool's address in a GLib dataset, not in the pool (its
 * user_data), which that last thread may be freeing meanwhile. */
typedef struct {
  GFunc    func;
  gpointer user_data;
} ChimeTsanPoolTask;

#define CHIME_TSAN_POOL_TASK "chime-tsan-pool-task"

static inline void
chime_tsan_pool_run (gpointer data,
                     gpointer user_data)
{
  ChimeTsanPoolTask *task = user_data;

  __tsan_acquire (data);
  task->func (data, task->user_data);
  __tsan_release (task);
}

static inline GThreadPool *
chime_tsan_thread_pool_new (GFunc     func,
                            gpointer  user_data,
                            gint      max_threads,
                            gboolean  exclusive,
                            GError  **error)
{
  ChimeTsanPoolTask *task = g_new0 (ChimeTsanPoolTask, 1);
  GThreadPool *pool;

  task->func = func;
  task->user_data = user_data;
  pool = (g_thread_pool_new) (chime_tsan_pool_run, task, max_threads, exclusive, error);
  if (pool == NULL)
    {
      g_free (task);
      return NULL;
    }
  g_dataset_set_data (pool, CHIME_TSAN_POOL_TASK, task);
  return pool;
}

static inline gboolean
chime_tsan_thread_pool_push (GThreadPool  *pool,
                             gpointer      data,
                             GError      **error)
{
  __tsan_release (data);
  return (g_thread_pool_push) (pool, data, error);
}

static inline void
chime_tsan_thread_pool_free (GThreadPool *pool,
                             gboolean     immediate,
                             gboolean     wait_)
{
  ChimeTsanPoolTask *task = g_dataset_get_data (pool, CHIME_TSAN_POOL_TASK);

  /* The address may be a new pool's once this one is gone. */
  g_dataset_remove_no_notify (pool, CHIME_TSAN_POOL_TASK);
  (g_thread_pool_free) (pool, immediate, wait_);
  if (!wait_)
    return;   /* a task may still be running with the record: it stays */
  __tsan_acquire (task);
  g_free (task);
}

#define g_thread_pool_new(func, user_data, max_threads, exclusive, error) \
  chime_tsan_thread_pool_new ((func), (user_data), (max_threads), (exclusive), (error))
#define g_thread_pool_push(pool, data, error) \
  chime_tsan_thread_pool_push ((pool), (data), (error))
#define g_thread_pool_free(pool, immediate, wait_) \
  chime_tsan_thread_pool_free ((pool), (immediate), (wait_))

/* A GTask's result: returned on one thread (a g_task_run_in_thread()
 * worker), propagated on another, through a GMutex inside libgio. */
#define g_task_return_pointer(task, result, notify) \
  (__tsan_release (task), (g_task_return_pointer) ((task), (result), (notify)))
#define g_task_return_error(task, error) \
  (__tsan_release (task), (g_task_return_error) ((task), (error)))
#define g_task_propagate_pointer(task, error)                                   \
  ({                                                                            \
    GTask *chime_tsan_task = (task);                                            \
    gpointer chime_tsan_result = (g_task_propagate_pointer) (chime_tsan_task, (error)); \
    __tsan_acquire (chime_tsan_task);                                           \
    chime_tsan_result;                                                          \
  })
