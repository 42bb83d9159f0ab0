/* What the benchmark programs read of their own process: its CPU time
 * and its peak RSS (getrusage), the same way in each. */
#pragma once

#include <glib.h>
#include <sys/resource.h>

/* User and system time of every thread of the process, in µs. */
static inline gint64
bench_cpu_us (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec * G_USEC_PER_SEC + usage.ru_utime.tv_usec +
         usage.ru_stime.tv_sec * G_USEC_PER_SEC + usage.ru_stime.tv_usec;
}

/* The process's peak resident set, in MiB. */
static inline double
bench_peak_rss_mb (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}
