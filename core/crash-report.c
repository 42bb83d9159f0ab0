/* The crash report: on SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT, say
 * which handler was running on the crashing thread, then die of the same
 * signal.
 *
 * Everything the signal handler does is async-signal-safe: it reads the
 * thread's ChimeCrashContext (crash-report.h), whose strings were made
 * before, formats the run id from its 16 bytes into a buffer on its
 * stack, write(2)s one line, restores the default action and raises the
 * signal again. The process then ends as it would have without the
 * report: killed by that signal (status 128+N in a shell), with a core
 * dump where core dumps are enabled.
 *
 * It runs on an alternate signal stack, one per thread that calls
 * entry points (given on the thread's first call), so that a handler
 * that overflows its stack is reported as well. */
#include "config.h"

#include <chime/runtime.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "crash-report.h"

__thread ChimeCrashContext chime_crash_context __attribute__ ((tls_model ("initial-exec")));

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

/* Set once by chime_crash_report_install(), read by the signal handler. */
static char *crash_prefix;
static gboolean crash_installed;

/* Large enough for the handler's few frames whatever SIGSTKSZ is. */
#define ALT_STACK_SIZE (64 * 1024)

static void
free_alt_stack (gpointer stack)
{
  stack_t disable = { .ss_flags = SS_DISABLE };

  /* The thread is ending: stop using the stack before freeing it. */
  sigaltstack (&disable, NULL);
  g_free (stack);
}

static GPrivate alt_stack_key = G_PRIVATE_INIT (free_alt_stack);

void
chime_crash_report_prepare_thread (void)
{
  stack_t current;
  stack_t stack = { 0 };

  chime_crash_context.thread_ready = TRUE;
  if (!__atomic_load_n (&crash_installed, __ATOMIC_ACQUIRE))
    return;
  /* A thread of the embedder's may have a stack of its own already. */
  if (sigaltstack (NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
    return;
  stack.ss_sp = g_malloc (ALT_STACK_SIZE);
  stack.ss_size = ALT_STACK_SIZE;
  if (sigaltstack (&stack, NULL) != 0)
    {
      g_free (stack.ss_sp);
      return;
    }
  g_private_set (&alt_stack_key, stack.ss_sp);
}

/* A line assembled without malloc or stdio. */
typedef struct {
  char  text[512];
  gsize length;
} CrashLine;

static void
line_add (CrashLine  *line,
          const char *text)
{
  for (; text != NULL && *text != '\0' && line->length < sizeof line->text - 1; text++)
    line->text[line->length++] = *text;
}

static void
line_add_run_id (CrashLine        *line,
                 const ChimeRunId *id)
{
  static const char hex[] = "0123456789abcdef";
  char text[37];
  gsize n = 0;

  for (guint i = 0; i < 16; i++)
    {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        text[n++] = '-';
      text[n++] = hex[id->bytes[i] >> 4];
      text[n++] = hex[id->bytes[i] & 0xf];
    }
  text[n] = '\0';
  line_add (line, text);
}

static const char *
signal_name (int signal_number)
{
  switch (signal_number)
    {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
    }
}

/* "PREFIX: handler 'NAME' (plugin PLUGIN) crashed with SIGSEGV in
 * on_llm_new_token (run ID)", or "PREFIX: crashed with SIGSEGV outside any
 * handler". */
static void
format_report (CrashLine *line,
               int        signal_number)
{
  const ChimeCrashContext *context = &chime_crash_context;

  line_add (line, crash_prefix);
  line_add (line, ": ");
  if (context->handler == NULL)
    {
      line_add (line, "crashed with ");
      line_add (line, signal_name (signal_number));
      line_add (line, " outside any handler\n");
      return;
    }
  line_add (line, "handler '");
  line_add (line, context->handler->settings.name);
  line_add (line, "' (plugin ");
  line_add (line, context->handler->descriptor->name);
  line_add (line, ") crashed with ");
  line_add (line, signal_name (signal_number));
  line_add (line, " in on_");
  line_add (line, context->entry < CHIME_EVENT_N_TYPES ? chime_event_type_to_string (context->entry)
                                                       : "event");
  if (context->event != NULL && context->event->run != NULL)
    {
      line_add (line, " (run ");
      line_add_run_id (line, &context->event->run->id);
      line_add (line, ")");
    }
  line_add (line, "\n");
}

static void
on_crash (int        signal_number,
          siginfo_t *info,
          void      *ucontext)
{
  int saved_errno = errno;
  CrashLine line = { .length = 0 };
  const char *bytes = line.text;
  gsize left;

  format_report (&line, signal_number);
  for (left = line.length; left > 0;)
    {
      ssize_t written = write (STDERR_FILENO, bytes, left);

      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        break;
      bytes += written;
      left -= written;
    }
  /* SA_RESETHAND restored the default action already; raised while
   * blocked here, the signal ends the process as soon as the handler
   * returns (a fault would also recur at the faulting instruction). */
  signal (signal_number, SIG_DFL);
  raise (signal_number);
  errno = saved_errno;
}

gboolean
chime_crash_report_install (const char  *prefix,
                            GError     **error)
{
  struct sigaction action = { 0 };

  g_return_val_if_fail (prefix != NULL, FALSE);
  if (__atomic_load_n (&crash_installed, __ATOMIC_ACQUIRE))
    return TRUE;
  crash_prefix = g_strdup (prefix);
  action.sa_sigaction = on_crash;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset (&action.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS (crash_signals); i++)
    if (sigaction (crash_signals[i], &action, NULL) != 0)
      {
        int saved_errno = errno;

        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                     "cannot install the crash report for %s: %s",
                     signal_name (crash_signals[i]), g_strerror (saved_errno));
        return FALSE;
      }
  __atomic_store_n (&crash_installed, TRUE, __ATOMIC_RELEASE);
  /* The calling thread (the main loop's, usually) gets its stack now. */
  chime_crash_report_prepare_thread ();
  return TRUE;
}
