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
