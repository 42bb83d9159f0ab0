/* Stopping on SIGINT and SIGTERM at any moment.
 *
 * The handlers are installed first thing in main(), before a file is read
 * or a thread started, so that a signal during start-up is not the silent
 * default death. A signal handler may do next to nothing, so it writes the
 * signal's number to a pipe, and a thread of its own reads it and does the
 * rest: it says what happens on stderr and hands the cancellation to the
 * main context, where the run's callbacks all run (a cancellable cancelled
 * on another thread would call them there). The second signal ends chime
 * from the handler itself, whatever the main loop is doing: an async
 * handler that blocks the loop cannot make chime unkillable.
 *
 * No signal is blocked, except on the signal thread itself: processes
 * started by handlers inherit a blocked mask, and would then not hear
 * SIGTERM. */
#include "config.h"

#include "signals.h"

#include <glib-unix.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int mode;           /* atomic: CliSignalMode, or ENDED */
/* cli_signals_finish() was called: a signal now cannot stop anything. */
#define ENDED (-1)
static int wake_fds[2] = { -1, -1 };
static int n_signals;       /* atomic: how many arrived */
static int first_signal;    /* atomic: the first one's number */
static GCancellable *watched;   /* main context only */

static const char *
signal_verb (int signal_number)
{
  return signal_number == SIGINT ? "interrupted" : "terminated";
}

/* write(2) of a constant: async-signal-safe. */
static void
say (const char *text)
{
  gsize left = strlen (text);

  while (left > 0)
    {
      gssize n = write (STDERR_FILENO, text, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      text += n;
      left -= (gsize) n;
    }
}

static void
on_signal (int signal_number)
{
  int saved_errno = errno;
  unsigned char byte = (unsigned char) signal_number;

  if (__atomic_add_fetch (&n_signals, 1, __ATOMIC_SEQ_CST) > 1)
    {
      /* A handler may be hung in the flush: do not hang too. */
      say (signal_number == SIGINT
             ? "chime: interrupted again; quitting without waiting for the handlers\n"
             : "chime: terminated again; quitting without waiting for the handlers\n");
      _exit (128 + signal_number);
    }
  __atomic_store_n (&first_signal, signal_number, __ATOMIC_SEQ_CST);
  if (__atomic_load_n (&mode, __ATOMIC_SEQ_CST) == ENDED)
    {
      /* The run and its flush are over; only exiting is left. */
      say (signal_number == SIGINT
             ? "chime: interrupted; stopping the run: it had already ended\n"
             : "chime: terminated; stopping the run: it had already ended\n");
      _exit (128 + signal_number);
    }
  if (__atomic_load_n (&mode, __ATOMIC_SEQ_CST) == CLI_SIGNALS_QUIT)
    {
      say (signal_number == SIGINT ? "chime: interrupted\n" : "chime: terminated\n");
      _exit (128 + signal_number);
    }
  while (write (wake_fds[1], &byte, 1) < 0 && errno == EINTR)
    ;
  errno = saved_errno;
}

/* Says once what happens, from the signal thread or, when the main
 * thread saw the signal first (cli_signals_watch), from the main thread,
 * so that it is said before that run can end and chime exit. */
static GMutex told_lock;
static gboolean told;   /* guarded by told_lock */

static void
tell_stopping (int signal_number)
{
  g_mutex_lock (&told_lock);
  if (!told)
    g_printerr ("chime: %s; stopping the run and flushing every handler (again to quit at once)\n",
                signal_verb (signal_number));
  told = TRUE;
  g_mutex_unlock (&told_lock);
}

static gboolean
cancel_watched (gpointer data)
{
  if (watched != NULL)
    g_cancellable_cancel (watched);
  return G_SOURCE_REMOVE;
}

static gpointer
signal_thread (gpointer data)
{
  unsigned char byte;
  gssize n;

  do
    n = read (wake_fds[0], &byte, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    return NULL;
  tell_stopping (byte);
  /* A source, not g_main_context_invoke(): that calls the function right
   * here when nobody owns the main context (the main thread has not
   * started its loop yet), and `watched` is the main thread's. */
  g_idle_add_full (G_PRIORITY_DEFAULT, cancel_watched, NULL, NULL);
  return NULL;
}

void
cli_signals_init (CliSignalMode signal_mode)
{
  struct sigaction action = { 0 };

  __atomic_store_n (&mode, (int) signal_mode, __ATOMIC_SEQ_CST);
  if (mode == CLI_SIGNALS_STOP_RUN)
    {
      sigset_t stop, old;

      if (!g_unix_open_pipe (wake_fds, FD_CLOEXEC, NULL))
        g_error ("chime: cannot make a pipe for signals: %s", g_strerror (errno));
      /* The signal thread is born with SIGINT and SIGTERM blocked, so the
       * handler never runs on it: it only reads what the handler wrote.
       * A signal that came to it while it was starting would otherwise be
       * handled only once it reached its read(), and under
       * ThreadSanitizer (which defers a signal to the thread's next
       * intercepted call) not at all when it got there first. It starts
       * no process, so its mask is nobody's inheritance. */
      sigemptyset (&stop);
      sigaddset (&stop, SIGINT);
      sigaddset (&stop, SIGTERM);
      pthread_sigmask (SIG_BLOCK, &stop, &old);
      g_thread_unref (g_thread_new ("chime-signals", signal_thread, NULL));
      pthread_sigmask (SIG_SETMASK, &old, NULL);
    }
  action.sa_handler = on_signal;
  sigemptyset (&action.sa_mask);
  /* Reads and writes of the main thread go on after the handler. */
  action.sa_flags = SA_RESTART;
  sigaction (SIGINT, &action, NULL);
  sigaction (SIGTERM, &action, NULL);
}

void
cli_signals_watch (GCancellable *cancellable)
{
  g_set_object (&watched, cancellable);
  if (cli_signals_received () != 0)
    {
      tell_stopping (cli_signals_received ());
      g_cancellable_cancel (watched);
    }
}

void
cli_signals_unwatch (void)
{
  g_clear_object (&watched);
}

int
cli_signals_received (void)
{
  int signal_number = __atomic_load_n (&first_signal, __ATOMIC_SEQ_CST);

  /* Whoever asks acts on it: the word comes first. */
  if (signal_number != 0)
    tell_stopping (signal_number);
  return signal_number;
}

int
cli_signals_finish (int code)
{
  int signal_number;

  /* From here a signal exits at once; one that came before is the exit
   * status. Store first, then look: no signal falls in between. */
  __atomic_store_n (&mode, ENDED, __ATOMIC_SEQ_CST);
  signal_number = cli_signals_received ();
  if (signal_number != 0 && code < 128)
    return 128 + signal_number;
  return code;
}
