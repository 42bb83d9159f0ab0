/* Runs one command and reports what it cost, for bench/run's HTTP rows.
 *
 *   bench-exec [--stdout FILE] -- COMMAND [ARG...]
 *
 * Prints one JSON line: the command's wall time, its own CPU time (user
 * and system, from wait4(), so only that process and whatever it waited
 * for, never bench/run's shell), its peak RSS and its exit status. The
 * command's standard output goes to FILE (default /dev/null), so that
 * writing it to a terminal or a pipe costs nothing the command did not.
 * /usr/bin/time would do, but reports CPU in hundredths of a second and
 * is not installed everywhere. */
#include <glib.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static gdouble
seconds (const struct timeval *tv)
{
  return tv->tv_sec + tv->tv_usec / 1e6;
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *stdout_path = NULL;
  g_auto (GStrv) command = NULL;
  const GOptionEntry entries[] = {
    { "stdout", 0, 0, G_OPTION_ARG_FILENAME, &stdout_path, "Send the command's output here", "FILE" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &command, NULL, "COMMAND [ARG...]" },
    { NULL }
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("-- COMMAND [ARG...] - run and measure");
  g_autoptr (GError) error = NULL;
  struct rusage usage;
  gint64 started, ended;
  int status, out;
  pid_t pid;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || command == NULL)
    {
      g_printerr ("bench-exec: %s\n", error != NULL ? error->message : "no command");
      return 2;
    }
  out = open (stdout_path != NULL ? stdout_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0)
    {
      g_printerr ("bench-exec: %s: %s\n", stdout_path, g_strerror (errno));
      return 2;
    }

  started = g_get_monotonic_time ();
  pid = fork ();
  if (pid < 0)
    {
      g_printerr ("bench-exec: fork: %s\n", g_strerror (errno));
      return 2;
    }
  if (pid == 0)
    {
      dup2 (out, STDOUT_FILENO);
      close (out);
      execvp (command[0], command);
      fprintf (stderr, "bench-exec: cannot run %s: %s\n", command[0], strerror (errno));
      _exit (127);
    }
  close (out);
  /* wait4() gives the child's own rusage, with microsecond CPU times. */
  while (wait4 (pid, &status, 0, &usage) < 0)
    if (errno != EINTR)
      {
        g_printerr ("bench-exec: wait4: %s\n", g_strerror (errno));
        return 2;
      }
  ended = g_get_monotonic_time ();

  printf ("{\"wall_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"cpu_s\":%.6f,\"peak_rss_mb\":%.1f,\"status\":%d}\n",
          (ended - started) / 1e6, seconds (&usage.ru_utime), seconds (&usage.ru_stime),
          seconds (&usage.ru_utime) + seconds (&usage.ru_stime), usage.ru_maxrss / 1024.0,
          WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
  return 0;
}
