/* A handler isolated in a process of its own: chime's side.
 *
 * With `isolation = process` a sync handler's plugin runs in a
 * chime-plugin-host process (plugin-host.c). Each call sends the event in
 * its wire form (event-wire.c) over a socket. Starts, ends and errors
 * (the fences), and every event of a raise_error handler, wait for the
 * entry point's answer, and so for every event before them; tokens are
 * sent without waiting, up to WINDOW in flight, and a failure among them
 * is reported when its answer comes. So the handler's order, its fences
 * and raise_error hold as they do in process. A host
 * that dies takes only its plugin with it: the link says which handler
 * crashed, with which signal, on which event, starts a new host and gives
 * it the same event again; a host that does not answer within the
 * handler's timeout is killed and restarted, and that event is given up.
 *
 * What makes that cheap: events are gathered (host-outbox.c) and written
 * when the handler's queue is caught up, the window or buffer is full, or
 * chime waits for an answer, and answers, nearly all `{"seq":N}`, are
 * read by hand. */
#include "config.h"

#include "host-link.h"
#include <chime/config.h>
#include "host-frames.h"
#include "host-outbox.h"
#include "host-path.h"
#include "events/event-wire.h"
#include "plugins/handler.h"

#include <gio/gio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long a new host may take to start its instance. */
#define START_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* How long a host may take to end after it was told to. */
#define QUIT_TIMEOUT_US (5 * G_USEC_PER_SEC)
/* Events that need no answer before the next (tokens) are sent without
 * waiting, up to this many in flight: a round trip per event would cost
 * two context switches each. Answers are a few bytes, so this many never
 * fill the socket and a host can always write them. */
#define WINDOW 256
/* How long a hung host may take to hand over its gathered answers. */
#define HUNG_DRAIN_US (G_USEC_PER_SEC / 2)

typedef struct _InFlight InFlight;

struct _ChimeHostLink {
  ChimeHandler *handler;
  char        *name;
  char        *plugin_name;
  json_t      *init;
  gint64       timeout_ms;
  guint        max_restarts;
  gint64       memory_limit_mb;
  guint        crashes;
  gboolean     stopped;
  guint64      n_events;
  GSubprocess *process;
  int          fd;
  ChimeFrameReader *reader;  /* what comes back on fd */
  gboolean     died;         /* a read or write found the host gone */
  ChimeHostOutbox *outbox;   /* frames not written yet */
  GQueue       in_flight;    /* InFlight *, oldest first */
  InFlight    *waited_for;   /* the event a caller waits for, if any */
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
    case SIGTRAP: return "SIGTRAP";
    default:      return NULL;
    }
}

/* "crashed with SIGSEGV", "exited with status 3": how the host ended.
 * Under a memory limit, running out of it is how a leak ends (malloc()
 * fails: GLib aborts, a plugin's NULL pointer faults), so it is named. */
static char *
describe_end (ChimeHostLink *link)
{
  GSubprocess *process = link->process;
  g_autofree char *limit = link->memory_limit_mb > 0
    ? g_strdup_printf (" (it may have run out of memory: memory_limit_mb = %" G_GINT64_FORMAT ")",
                       link->memory_limit_mb)
    : g_strdup ("");

  if (g_subprocess_get_if_signaled (process))
    {
      int number = g_subprocess_get_term_sig (process);
      const char *name = signal_name (number);

      return name != NULL ? g_strdup_printf ("crashed with %s%s", name, limit)
                          : g_strdup_printf ("crashed with signal %d%s", number, limit);
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
  g_clear_pointer (&link->reader, chime_frame_reader_free);
  /* A new host starts knowing no run. */
  chime_host_outbox_reset (link->outbox);
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
  link->reader = chime_frame_reader_new (link->fd);
  if (!chime_frame_write (link->fd, link->init, &local_error) ||
      (reply = chime_frame_reader_read (link->reader, g_get_monotonic_time () + START_TIMEOUT_US,
                                        &local_error)) == NULL)
    {
      gboolean timed_out = g_error_matches (local_error, CHIME_FRAME_ERROR, CHIME_FRAME_TIMED_OUT);
      g_autofree char *how = NULL;

      close_host (link, timed_out);
      how = timed_out ? g_strdup ("did not start within 10 s") : describe_end (link);
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
chime_host_link_new (ChimeHandler *handler,
                     GError      **error)
{
  ChimeHostLink *link = g_new0 (ChimeHostLink, 1);

  link->handler = handler;
  link->name = g_strdup (handler->settings.name);
  link->plugin_name = g_strdup (handler->descriptor->name);
  link->init = json_deep_copy (handler->settings.host_init);
  link->timeout_ms = handler->settings.timeout_ms;
  link->max_restarts = (guint) handler->settings.max_restarts;
  link->memory_limit_mb = handler->settings.memory_limit_mb;
  if (link->memory_limit_mb > 0)
    json_object_set_new (link->init, "memory_limit_mb", json_integer (link->memory_limit_mb));
  link->fd = -1;
  link->outbox = chime_host_outbox_new ();
  g_queue_init (&link->in_flight);
  if (!spawn (link, error))
    {
      chime_host_link_free (link);
      return NULL;
    }
  return link;
}

/* One event sent and not answered yet. */
struct _InFlight {
  guint64     number;       /* the handler's event count: "event N" */
  ChimeEvent *event;        /* for a failure answered late, and to send again */
  gboolean    redelivered;  /* sent again after a crash */
  gboolean    answered;
  gboolean    ok;
  GError     *error;
};

static InFlight *
in_flight_new (ChimeHostLink *link,
               ChimeEvent    *event)
{
  InFlight *item = g_new0 (InFlight, 1);

  item->number = ++link->n_events;
  item->event = chime_event_ref (event);
  return item;
}

static void
in_flight_free (InFlight *item)
{
  chime_event_unref (item->event);
  g_clear_error (&item->error);
  g_free (item);
}

static char *
describe_item (const InFlight *item)
{
  char run_id[CHIME_RUN_ID_STRING_LEN];

  chime_run_id_to_string (chime_run_info_get_id (chime_event_get_run (item->event)), run_id);
  return g_strdup_printf ("(event %" G_GUINT64_FORMAT " of run %s)", item->number, run_id);
}

/* Writes the gathered frames. */
static void
flush_out (ChimeHostLink *link)
{
  if (chime_host_outbox_size (link->outbox) == 0)
    return;
  if (link->fd < 0 || link->died || !chime_host_outbox_flush (link->outbox, link->fd))
    {
      chime_host_outbox_reset (link->outbox);
      link->died = TRUE;
    }
}

/* Gathers the event's frames (host-outbox.c). */
static void
send_item (ChimeHostLink *link,
           InFlight      *item)
{
  if (link->fd < 0 || link->died)
    return;
  if (!chime_host_outbox_add (link->outbox, item->number, item->event))
    link->died = TRUE;
  if (chime_host_outbox_size (link->outbox) >= CHIME_HOST_OUTBOX_FLUSH_BYTES)
    flush_out (link);
}

/* The oldest event is over, answered or given up: its verdict goes to
 * the caller waiting for it, or is reported now. */
static void
settle_head (ChimeHostLink *link,
             gboolean       ok,
             GError        *error)
{
  InFlight *item = g_queue_pop_head (&link->in_flight);

  item->answered = TRUE;
  item->ok = ok;
  item->error = error;
  if (item == link->waited_for)
    return;   /* settle() hands it to the caller */
  if (!ok)
    chime_handler_report_failure (link->handler, item->event, error);
  in_flight_free (item);
}

static void
give_up_head (ChimeHostLink *link,
              GError        *error)
{
  settle_head (link, FALSE, error);
}

/* The host's answer to the oldest event, from @reply. */
static void
take_answer (ChimeHostLink *link,
             json_t        *reply)
{
  InFlight *head = g_queue_peek_head (&link->in_flight);
  json_t *failure = json_object_get (reply, "error");
  GError *error = NULL;

  if (head == NULL || (guint64) json_integer_value (json_object_get (reply, "seq")) != head->number)
    {
      /* Not what was asked: treat the host as broken. */
      link->died = TRUE;
      return;
    }
  if (failure != NULL)
    {
      const char *domain = json_string_value (json_object_get (failure, "domain"));
      const char *message = json_string_value (json_object_get (failure, "message"));

      error = g_error_new_literal (g_quark_from_string (domain != NULL ? domain : "chime-handler-error-quark"),
                                   (gint) json_integer_value (json_object_get (failure, "code")),
                                   message != NULL ? message : "the handler failed without saying why");
    }
  settle_head (link, failure == NULL, error);
}

/* An answer's frame: {"seq":N}, nearly every one, is read by hand. */
static void
take_answer_text (ChimeHostLink *link,
                  const char    *text,
                  gsize          length)
{
  InFlight *head = g_queue_peek_head (&link->in_flight);
  g_autoptr (json_t) reply = NULL;
  guint64 seq = 0;
  gsize end = chime_frame_read_seq (text, length, &seq);

  if (head != NULL && end > 0 && end == length - 1 && text[end] == '}' && seq == head->number)
    {
      settle_head (link, TRUE, NULL);
      return;
    }
  reply = chime_frame_parse (text, length, NULL);
  if (reply == NULL)
    link->died = TRUE;
  else
    take_answer (link, reply);
}

/* Reads one answer until @deadline; FALSE with @error when none came. */
static gboolean
read_answer (ChimeHostLink *link,
             gint64         deadline,
             GError       **error)
{
  gsize length;
  const char *text = chime_frame_reader_read_text (link->reader, deadline, &length, error);

  if (text == NULL)
    return FALSE;
  take_answer_text (link, text, length);
  return TRUE;
}

/* Starts a new host and sends it every event not answered, in order. */
static gboolean
restart (ChimeHostLink *link,
         GError       **error)
{
  link->died = FALSE;
  if (!spawn (link, error))
    return FALSE;
  /* Every event the old host had not answered goes again: the one it
   * crashed on, and those sent after it (after a hang, only those after
   * it). */
  chime_handler_count_restart (link->handler, g_queue_get_length (&link->in_flight));
  for (GList *l = link->in_flight.head; l != NULL; l = l->next)
    send_item (link, l->data);
  flush_out (link);
  return TRUE;
}

/* The host died (link->died): count the crash, say it, and decide what
 * becomes of the oldest event, the one it was on. */
static void
after_crash (ChimeHostLink *link)
{
  InFlight *head = g_queue_peek_head (&link->in_flight);
  g_autofree char *how = NULL;
  g_autofree char *what = NULL;

  close_host (link, FALSE);
  link->died = FALSE;   /* counted once; the next loop starts a new host */
  how = describe_end (link);
  link->crashes++;
  if (head == NULL)
    return;
  what = describe_item (head);
  if (link->crashes > link->max_restarts)
    {
      link->stopped = TRUE;
      give_up_head (link, g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                       "its host process %s %s; that is %u crashes (max_restarts = %u): "
                                       "it gets no more events", how, what, link->crashes, link->max_restarts));
      return;
    }
  if (head->redelivered)
    {
      /* The same event twice: giving it a third time would only crash. */
      give_up_head (link, g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                       "its host process %s again on this event %s: the event is given up, "
                                       "and the handler restarted for the next one", how, what));
      return;
    }
  g_log ("chime", G_LOG_LEVEL_WARNING,
         "handler '%s' (%s) %s on %s %s; restarted (%u of max_restarts = %u), "
         "delivering the event again", link->name, link->plugin_name, how,
         chime_event_type_to_string (chime_event_get_event_type (head->event)), what,
         link->crashes, link->max_restarts);
  for (GList *l = link->in_flight.head; l != NULL; l = l->next)
    ((InFlight *) l->data)->redelivered = TRUE;
}

/* The oldest event did not come back within the timeout. The host may
 * have finished events before the one it hangs on, their answers
 * gathered: told with SIGUSR1, it writes them out and ends (plugin-host.c),
 * so that the timeout is put on the right event; one that cannot even do
 * that within HUNG_DRAIN_US is killed. */
static void
after_hang (ChimeHostLink *link)
{
  gint64 deadline = g_get_monotonic_time () + HUNG_DRAIN_US;
  g_autofree char *what = NULL;

  if (link->process != NULL)
    g_subprocess_send_signal (link->process, SIGUSR1);
  while (link->reader != NULL && !g_queue_is_empty (&link->in_flight) && read_answer (link, deadline, NULL))
    ;
  close_host (link, TRUE);
  if (g_queue_is_empty (&link->in_flight))
    return;
  what = describe_item (g_queue_peek_head (&link->in_flight));
  /* Giving a hang the same event again would only hang again. */
  give_up_head (link, g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_TIMED_OUT,
                                   "did not answer within its timeout of %" G_GINT64_FORMAT " ms %s: "
                                   "its host process was killed and is restarted for the next event",
                                   link->timeout_ms, what));
}

/* Takes answers until @target is answered (NULL: until fewer than
 * @limit events are in flight), through crashes and hangs. */
static void
settle (ChimeHostLink *link,
        InFlight      *target,
        guint          limit)
{
  link->waited_for = target;
  while (target != NULL ? !target->answered : g_queue_get_length (&link->in_flight) >= limit)
    {
      g_autoptr (GError) error = NULL;

      if (link->stopped)
        {
          /* Everything still in flight is lost with the handler. */
          chime_handler_count_lost (link->handler, g_queue_get_length (&link->in_flight) -
                                    (target != NULL ? 1 : 0));
          while (!g_queue_is_empty (&link->in_flight))
            {
              InFlight *item = g_queue_pop_head (&link->in_flight);

              if (item == target)
                {
                  item->answered = TRUE;
                  if (item->error == NULL)
                    item->error = g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                               "its host process crashed %u times (max_restarts = %u): "
                                               "it gets no more events", link->crashes, link->max_restarts);
                }
              else
                in_flight_free (item);
            }
          break;
        }
      if (link->died)
        {
          /* Answers the host wrote before it died are still in the
           * socket: take them, so that the crash is put on the event it
           * was really on, and only what it had not answered goes again. */
          while (link->reader != NULL && read_answer (link, g_get_monotonic_time (), NULL))
            ;
          after_crash (link);
          continue;
        }
      if (link->fd < 0)
        {
          if (!restart (link, &error))
            {
              g_log ("chime", G_LOG_LEVEL_WARNING, "handler '%s' (%s): %s", link->name, link->plugin_name,
                     error->message);
              link->stopped = TRUE;
            }
          continue;
        }
      /* The host answers only what it was sent. */
      flush_out (link);
      if (link->died)
        continue;
      if (read_answer (link, link->timeout_ms > 0 ? g_get_monotonic_time () + link->timeout_ms * 1000 : 0,
                       &error))
        ;
      else if (g_error_matches (error, CHIME_FRAME_ERROR, CHIME_FRAME_TIMED_OUT))
        after_hang (link);
      else
        link->died = TRUE;
    }
  link->waited_for = NULL;
}

gboolean
chime_host_link_call (ChimeHostLink *link,
                      ChimeEvent    *event,
                      GError       **error)
{
  ChimeEventType type = chime_event_get_event_type (event);
  InFlight *item;
  gboolean ok;

  if (link->stopped)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "its host process crashed %u times (max_restarts = %u): it gets no more events",
                   link->crashes, link->max_restarts);
      return FALSE;
    }
  item = in_flight_new (link, event);
  g_queue_push_tail (&link->in_flight, item);
  send_item (link, item);
  /* Starts, ends and errors are fences; a raise_error handler's verdict
   * must stop the run at the event it failed on: those are waited for, so
   * that every earlier event is handled too. Tokens only wait for room. */
  if (!link->handler->settings.raise_error && !chime_event_type_is_fence (type) && !link->died)
    {
      /* A full window is drained by half: answers come in batches, and
       * one read() takes many. */
      if (g_queue_get_length (&link->in_flight) >= WINDOW)
        settle (link, NULL, WINDOW / 2);
      return TRUE;
    }
  settle (link, item, 0);
  ok = item->ok;
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&item->error));
  in_flight_free (item);
  return ok;
}

void
chime_host_link_flush (ChimeHostLink *link)
{
  flush_out (link);
}

gboolean
chime_host_link_is_stopped (ChimeHostLink *link)
{
  return link->stopped;
}

void
chime_host_link_free (ChimeHostLink *link)
{
  if (link == NULL)
    return;
  /* The last answers first: a failure among them is still reported. */
  if (link->fd >= 0 || link->died)
    settle (link, NULL, 1);
  if (link->fd >= 0)
    {
      g_autoptr (json_t) quit = json_pack ("{s:b}", "quit", TRUE);
      g_autoptr (json_t) reply = NULL;

      /* The host answers once instance_free has run (a jsonl file is
       * closed), then exits. */
      if (chime_frame_write (link->fd, quit, NULL))
        reply = chime_frame_reader_read (link->reader, g_get_monotonic_time () + QUIT_TIMEOUT_US, NULL);
      close_host (link, reply == NULL);
    }
  g_queue_clear_full (&link->in_flight, (GDestroyNotify) in_flight_free);
  g_clear_object (&link->process);
  chime_host_outbox_free (link->outbox);
  json_decref (link->init);
  g_free (link->name);
  g_free (link->plugin_name);
  g_free (link);
}
