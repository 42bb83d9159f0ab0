/* Asymmetric memory barriers (see barrier.h). */
#include "config.h"

#include "barrier.h"

#ifdef __linux__
# include <linux/membarrier.h>
# include <sys/syscall.h>
# include <unistd.h>
#endif

gboolean chime_barrier_have_membarrier;

void
chime_barrier_init (void)
{
  static gsize once;

  if (!g_once_init_enter (&once))
    return;
#if defined(__linux__) && defined(__NR_membarrier)
  {
    long commands = syscall (__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

    if (commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall (__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
      chime_barrier_have_membarrier = TRUE;
  }
#endif
  g_once_init_leave (&once, 1);
}

#if defined(__linux__) && defined(__GNUC__)
/* Registering costs a synchronize_rcu() in the kernel (about 12 ms here,
 * more than the rest of `chime run`'s start-up) unless the process has a
 * single thread, when it is a plain store. By the first dispatcher GLib
 * has started threads of its own, so register while libchime is being
 * loaded: before main() that is almost always the only thread. A library
 * loaded into a running threaded program pays the slow registration here
 * instead, once, as it would have in chime_dispatcher_new(). */
__attribute__ ((constructor)) static void
register_while_single_threaded (void)
{
  chime_barrier_init ();
}
#endif

void
chime_barrier_heavy (void)
{
#if defined(__linux__) && defined(__NR_membarrier)
  if (chime_barrier_have_membarrier &&
      syscall (__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
    return;
#endif
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
}
