/* Stopping on SIGINT and SIGTERM at any moment.
 *
 * The handlers are installed first thing in main(), before a file is read
 * or a thread started, so that a signal during start-up is not the silent
 * default death. A signal handler may do next to nothing: it says what
 * happens on stderr with write(2) of a constant (once: whoever says it
 * first, the handler or the main thread, takes a flag), and writes the
 * signal's number to a pipe that the main context watches, where the
 * cancellation is handed over (the run's callbacks all run there; a
 * cancellable cancelled on another thread would call them on it). The
 * second signal ends chime from the handler itself, whatever the main
 * loop is doing: an async handler that blocks the loop cannot make chime
 * unkillable.
 *
 * There was a thread reading the pipe: every `chime run` started it, and
 * it cost about 0.13 ms of a fake-model run's start-up (bench row s1),
 * most of it the exit waiting for it to be killed.
 *
 * No signal is blocked: processes started by handlers inherit a blocked
 * mask, and would then not hear SIGTERM. */
#include "config.h"

#include "signals.h"

#include <glib-unix.h>
#include <errno.h>
#include <fcntl.h>
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

static void tell_stopping (int signal_number);

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
  tell_stopping (signal_number);
  while (write (wake_fds[1], &byte, 1) < 0 && errno == EINTR)
    ;
  errno = saved_errno;
}

/* Says once what happens, from the handler or, when the main thread
 * looks first (cli_signals_received), from the main thread, so that it is
 * said before that run can end and chime exit. */
static int told;   /* atomic */

static void
tell_stopping (int signal_number)
{
  int expected = 0;

  if (__atomic_compare_exchange_n (&told, &expected, 1, FALSE, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    say (signal_number == SIGINT
           ? "chime: interrupted; stopping the run and flushing every handler (again to quit at once)\n"
           : "chime: terminated; stopping the run and flushing every handler (again to quit at once)\n");
}

/* On the main context: the handler wrote the signal's number. */
static gboolean
on_wake (gint         fd,
         GIOCondition condition,
         gpointer     data)
{
  unsigned char byte;

  while (read (fd, &byte, 1) < 0 && errno == EINTR)
    ;
  if (watched != NULL)
    g_cancellable_cancel (watched);
  return G_SOURCE_CONTINUE;
}

void
cli_signals_init (CliSignalMode signal_mode)
{
  struct sigaction action = { 0 };

  __atomic_store_n (&mode, (int) signal_mode, __ATOMIC_SEQ_CST);
  if (mode == CLI_SIGNALS_STOP_RUN)
    {
      if (!g_unix_open_pipe (wake_fds, FD_CLOEXEC, NULL))
        g_error ("chime: cannot make a pipe for signals: %s", g_strerror (errno));
      g_unix_fd_add (wake_fds[0], G_IO_IN, on_wake, NULL);
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
