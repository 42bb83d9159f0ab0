/* A handler isolated in a process of its own: chime's side.
 *
 * With `isolation = process` a sync handler's plugin runs in a
 * chime-plugin-host process (plugin-host.c). Each call sends the event in
 * its wire form (event-wire.c) over a socket and waits for the entry
 * point's answer, so the dispatcher's contracts (order, never concurrent
 * with itself, fences, raise_error) hold as they do in process. A host
 * that dies takes only its plugin with it: the link says which handler
 * crashed, with which signal, on which event, starts a new host and gives
 * it the same event again; a host that does not answer within the
 * handler's timeout is killed and restarted, and that event is given up. */
#include "config.h"

#include "host-link.h"
#include <chime/config.h>
#include "host-frames.h"
#include "host-path.h"
#include "events/event-wire.h"
#include "plugins/handler.h"

#include <gio/gio.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long a new host may take to start its instance. */
#define START_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* How long a host may take to end after it was told to. */
#define QUIT_TIMEOUT_US (5 * G_USEC_PER_SEC)

struct _ChimeHostLink {
  char        *name;
  char        *plugin_name;
  json_t      *init;
  gint64       timeout_ms;
  guint        max_restarts;
  guint        crashes;
  gboolean     stopped;
  guint64      n_events;
  guint64      redelivered;
  GSubprocess *process;
  int          fd;
};

static const char *
signal_name (int signal_number)
{
  switch (signal_number)
    {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS:  return "SIGBUS";
    case SIGFPE:  return "SIGFPE";
    case SIGILL:  return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT:  return "SIGINT";
    case SIGPIPE: return "SIGPIPE";
    default:      return NULL;
    }
}

/* "crashed with SIGSEGV", "exited with status 3": how the host ended. */
static char *
describe_end (GSubprocess *process)
{
  if (g_subprocess_get_if_signaled (process))
    {
      int number = g_subprocess_get_term_sig (process);
      const char *name = signal_name (number);

      return name != NULL ? g_strdup_printf ("crashed with %s", name)
                          : g_strdup_printf ("crashed with signal %d", number);
    }
  return g_strdup_printf ("exited with status %d", g_subprocess_get_exit_status (process));
}

static void
close_host (ChimeHostLink *link,
            gboolean       kill_it)
{
  if (link->fd >= 0)
    close (link->fd);
  link->fd = -1;
  if (link->process == NULL)
    return;
  if (kill_it)
    g_subprocess_force_exit (link->process);
  g_subprocess_wait (link->process, NULL, NULL);
}

/* Starts a host and its instance. */
static gboolean
spawn (ChimeHostLink *link,
       GError       **error)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (json_t) reply = NULL;
  g_autofree char *host = chime_plugin_host_path (error);
  const char *failure;
  int fds[2];

  if (host == NULL)
    return FALSE;
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "handler '%s' (%s): cannot make a socket for its host: %s",
                   link->name, link->plugin_name, g_strerror (errno));
      return FALSE;
    }
  /* The host's end becomes its fd 3; its stdout and stderr are chime's. */
  g_subprocess_launcher_take_fd (launcher, fds[1], 3);
  g_clear_object (&link->process);
  link->process = g_subprocess_launcher_spawn (launcher, &local_error, host, link->name, NULL);
  if (link->process == NULL)
    {
      close (fds[0]);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "handler '%s' (%s): cannot start %s: %s",
                   link->name, link->plugin_name, host, local_error->message);
      return FALSE;
    }
  link->fd = fds[0];
  if (!chime_frame_write (link->fd, link->init, &local_error) ||
      (reply = chime_frame_read (link->fd, g_get_monotonic_time () + START_TIMEOUT_US, &local_error)) == NULL)
    {
      gboolean timed_out = g_error_matches (local_error, CHIME_FRAME_ERROR, CHIME_FRAME_TIMED_OUT);
      g_autofree char *how = NULL;

      close_host (link, timed_out);
      how = timed_out ? g_strdup ("did not start within 10 s") : describe_end (link->process);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "handler '%s' (%s): its host process %s",
                   link->name, link->plugin_name, how);
      return FALSE;
    }
  failure = json_string_value (json_object_get (reply, "error"));
  if (failure != NULL)
    {
      /* The host's own words: they name the handler already. */
      close_host (link, FALSE);
      g_set_error_literal (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN, failure);
      return FALSE;
    }
  return TRUE;
}

ChimeHostLink *
chime_host_link_new (const char *name,
                     const char *plugin_name,
                     json_t     *init,
                     gint64      timeout_ms,
                     guint       max_restarts,
                     GError    **error)
{
  ChimeHostLink *link = g_new0 (ChimeHostLink, 1);

  link->name = g_strdup (name);
  link->plugin_name = g_strdup (plugin_name);
  link->init = json_incref (init);
  link->timeout_ms = timeout_ms;
  link->max_restarts = max_restarts;
  link->fd = -1;
  if (!spawn (link, error))
    {
      chime_host_link_free (link);
      return NULL;
    }
  return link;
}

typedef enum {
  EXCHANGE_ANSWERED,
  EXCHANGE_DIED,
  EXCHANGE_HUNG,
} Exchange;

/* Sends @wire and reads the answer into @ok / @error. */
static Exchange
exchange (ChimeHostLink *link,
          json_t        *message,
          gboolean      *ok,
          GError       **error)
{
  g_autoptr (GError) frame_error = NULL;
  g_autoptr (json_t) reply = NULL;
  gint64 deadline = link->timeout_ms > 0 ? g_get_monotonic_time () + link->timeout_ms * 1000 : 0;
  json_t *failure;

  if (!chime_frame_write (link->fd, message, &frame_error) ||
      (reply = chime_frame_read (link->fd, deadline, &frame_error)) == NULL)
    return g_error_matches (frame_error, CHIME_FRAME_ERROR, CHIME_FRAME_TIMED_OUT) ? EXCHANGE_HUNG
                                                                                   : EXCHANGE_DIED;
  failure = json_object_get (reply, "error");
  *ok = failure == NULL;
  if (failure != NULL)
    g_set_error_literal (error,
                         g_quark_from_string (json_string_value (json_object_get (failure, "domain")) != NULL
                                                ? json_string_value (json_object_get (failure, "domain"))
                                                : "chime-handler-error-quark"),
                         (gint) json_integer_value (json_object_get (failure, "code")),
                         json_string_value (json_object_get (failure, "message")) != NULL
                           ? json_string_value (json_object_get (failure, "message"))
                           : "the handler failed without saying why");
  return EXCHANGE_ANSWERED;
}

static char *
describe_event (ChimeHostLink *link,
                ChimeEvent    *event)
{
  char run_id[CHIME_RUN_ID_STRING_LEN];

  chime_run_id_to_string (chime_run_info_get_id (chime_event_get_run (event)), run_id);
  return g_strdup_printf ("(event %" G_GUINT64_FORMAT " of run %s)", link->n_events, run_id);
}

gboolean
chime_host_link_call (ChimeHostLink *link,
                      ChimeEvent    *event,
                      GError       **error)
{
  g_autoptr (json_t) message = json_pack ("{s:o}", "event", chime_event_to_wire (event));

  link->n_events++;
  for (guint attempt = 0;; attempt++)
    {
      g_autofree char *what = NULL;
      g_autofree char *how = NULL;
      gboolean ok = FALSE;
      Exchange result;

      if (link->stopped)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "its host process crashed %u times (max_restarts = %u): it gets no more events",
                       link->crashes, link->max_restarts);
          return FALSE;
        }
      if (link->fd < 0 && !spawn (link, error))
        {
          link->stopped = TRUE;
          return FALSE;
        }
      result = exchange (link, message, &ok, error);
      if (result == EXCHANGE_ANSWERED)
        {
          if (attempt > 0)
            link->redelivered++;
          return ok;
        }
      what = describe_event (link, event);
      close_host (link, result == EXCHANGE_HUNG);
      if (result == EXCHANGE_HUNG)
        {
          /* Giving a hang the same event again would only hang again. */
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_TIMED_OUT,
                       "did not answer within its timeout of %" G_GINT64_FORMAT " ms %s: "
                       "its host process was killed and is restarted for the next event",
                       link->timeout_ms, what);
          return FALSE;
        }
      how = describe_end (link->process);
      link->crashes++;
      if (link->crashes > link->max_restarts)
        {
          link->stopped = TRUE;
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "its host process %s %s; that is %u crashes (max_restarts = %u): "
                       "it gets no more events",
                       how, what, link->crashes, link->max_restarts);
          return FALSE;
        }
      if (attempt > 0)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "its host process %s again on this event %s: the event is given up, "
                       "and the handler restarted for the next one", how, what);
          return FALSE;
        }
      g_log ("chime", G_LOG_LEVEL_WARNING,
             "handler '%s' (%s) %s on %s %s; restarted (%u of max_restarts = %u), "
             "delivering the event again", link->name, link->plugin_name, how,
             chime_event_type_to_string (chime_event_get_event_type (event)), what,
             link->crashes, link->max_restarts);
    }
}

gboolean
chime_host_link_is_stopped (ChimeHostLink *link)
{
  return link->stopped;
}

guint64
chime_host_link_get_redelivered (ChimeHostLink *link)
{
  return link->redelivered;
}

void
chime_host_link_free (ChimeHostLink *link)
{
  if (link == NULL)
    return;
  if (link->fd >= 0)
    {
      g_autoptr (json_t) quit = json_pack ("{s:b}", "quit", TRUE);
      g_autoptr (json_t) reply = NULL;

      /* The host answers once instance_free has run (a jsonl file is
       * closed), then exits. */
      if (chime_frame_write (link->fd, quit, NULL))
        reply = chime_frame_read (link->fd, g_get_monotonic_time () + QUIT_TIMEOUT_US, NULL);
      close_host (link, reply == NULL);
    }
  g_clear_object (&link->process);
  json_decref (link->init);
  g_free (link->name);
  g_free (link->plugin_name);
  g_free (link);
}
