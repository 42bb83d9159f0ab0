/* chime-plugin-host: runs one handler's plugin for chime, in a process of
 * its own (`isolation = process`), so that a plugin that crashes, aborts
 * or leaks takes only this process down.
 *
 *   chime-plugin-host NAME      (started by chime, never by hand)
 *
 * The protocol is length-prefixed JSON on fd 3 (host-frames.c); stdout
 * and stderr are chime's, for the plugin to print to. chime sends the
 * handler's section first (host-init.c), and the host answers
 * {"ready": true} once the instance is up, or {"error": "why"}; then, for
 * each event, {"seq": N, "event": WIRE} (event-wire.c), answered in order
 * with {"seq": N} or {"seq": N, "error": {domain, code, message}} once
 * the entry point returned. An event names its run by id; the run itself
 * came once before, as {"run": RUN}, and is forgotten after the event that
 * ends it. Answers are gathered and written when no more frames are
 * waiting, as chime writes events; and
 * {"quit": true} at the end, answered once instance_free has run. The
 * handler is built and called by the same code as in chime's process. */
#include "config.h"

#include "host-frames.h"
#include "host-init.h"
#include "events/event-wire.h"
#include "plugins/handler.h"
#include "runtime-config.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PROTOCOL_FD 3

/* Answers not written yet: written together once no event waits. */
static GString *answers;
/* FALSE while `answers` is being changed: a crash then sends nothing. */
static volatile sig_atomic_t answers_whole = TRUE;

/* What a crash or an exit() in the plugin must not take with it: the
 * answers to the events before, so that chime puts the crash on the event
 * it happened on and gives again only that one and those after it. Only
 * write(2): this runs in a signal handler too. */
static void
write_answers_raw (void)
{
  const char *data;
  gsize left;

  if (answers == NULL || !answers_whole)
    return;
  data = answers->str;
  left = answers->len;
  while (left > 0)
    {
      ssize_t n = write (PROTOCOL_FD, data, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      data += n;
      left -= (gsize) n;
    }
  answers->len = 0;
}

static void
on_fatal_signal (int signal_number)
{
  int saved_errno = errno;

  write_answers_raw ();
  /* SA_RESETHAND put the default action back: the process dies of it. */
  raise (signal_number);
  errno = saved_errno;
}

/* chime found the plugin hung: the answers before it, then the end. */
static void
on_hung (int signal_number)
{
  write_answers_raw ();
  _exit (124);
}

static void
keep_answers_through_crashes (void)
{
  /* SIGTRAP: GLib's end when g_malloc() finds no memory. */
  static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP };
  static char alt_stack[64 * 1024];
  stack_t stack = { .ss_sp = alt_stack, .ss_size = sizeof alt_stack };
  struct sigaction action = { 0 };

  /* A handler that overflows its stack is caught too. */
  sigaltstack (&stack, NULL);
  action.sa_handler = on_fatal_signal;
  action.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset (&action.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS (fatal); i++)
    sigaction (fatal[i], &action, NULL);
  action.sa_handler = on_hung;
  sigaction (SIGUSR1, &action, NULL);
  atexit (write_answers_raw);
}

static void
send_answers (void)
{
  g_autoptr (GError) error = NULL;
  gboolean ok;

  /* What the plugin printed goes out before chime hears it is done. */
  fflush (stdout);
  answers_whole = FALSE;
  ok = answers->len == 0 || chime_frame_flush (PROTOCOL_FD, answers, &error);
  answers_whole = TRUE;
  if (!ok)
    {
      /* chime went away: nothing is left to answer to. */
      exit (0);
    }
}

static void
reply (json_t *message)
{
  gboolean ok;

  answers_whole = FALSE;
  ok = chime_frame_append (answers, message, NULL);
  answers_whole = TRUE;
  if (!ok)
    exit (2);
  json_decref (message);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

/* memory_limit_mb: a limit on the address space, so that a plugin that
 * leaks ends this process (malloc() fails) before it fills the machine's
 * memory; chime then restarts it like any crash. The sanitizers reserve
 * terabytes of address space up front, so under them no limit is set. */
static void
apply_memory_limit (json_t *init)
{
  gint64 mb = json_integer_value (json_object_get (init, "memory_limit_mb"));
#ifndef UNDER_SANITIZER
  struct rlimit limit = { (rlim_t) mb * 1024 * 1024, (rlim_t) mb * 1024 * 1024 };

  if (mb > 0 && setrlimit (RLIMIT_AS, &limit) != 0)
    g_printerr ("chime-plugin-host: cannot set memory_limit_mb = %" G_GINT64_FORMAT ": %s\n", mb,
                g_strerror (errno));
#endif
}

/* The handler the start message describes, started. */
static ChimeHandler *
start_handler (json_t  *init,
               GError **error)
{
  g_autoptr (ChimeConfig) config = chime_host_init_to_config (init, error);
  g_autoptr (GPtrArray) specs = NULL;
  ChimeRuntimeSettings settings = { 0 };
  ChimeHandlerSpec *spec;
  ChimeHandler *handler;

  if (config == NULL)
    return NULL;
  specs = chime_handler_specs_read (config, &settings);
  if (!chime_config_check (config, error))
    return NULL;
  if (specs->len != 1 || ((ChimeHandlerSpec *) specs->pdata[0])->plugin == NULL)
    {
      g_set_error_literal (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                           "chime-plugin-host: the start message holds no handler");
      return NULL;
    }
  spec = specs->pdata[0];
  handler = chime_handler_new (0, &spec->settings, spec->plugin, g_steal_pointer (&spec->context));
  if (!chime_handler_start (handler, error))
    {
      chime_handler_free (handler);
      return NULL;
    }
  return handler;
}

/* Keeps the run @wire describes, for the events that name it. */
static void
remember_run (GHashTable *runs,
              json_t     *wire)
{
  ChimeRunInfo *run = chime_run_info_from_wire (wire, NULL);

  /* A run that does not read fails each of its events instead. */
  if (run != NULL)
    g_hash_table_replace (runs, g_strdup (chime_run_info_wire_id (wire)), run);
}

/* {"seq": N, "error": {domain, code, message}}; takes @seq. */
static void
reply_error (json_t       *seq,
             const GError *error)
{
  reply (json_pack ("{s:o?, s:{s:s, s:i, s:s}}", "seq", seq, "error", "domain",
                    g_quark_to_string (error->domain), "code", error->code, "message", error->message));
}

/* Calls the handler with @event and gathers the answer to @seq. */
static void
call (ChimeHandler *handler,
      GHashTable   *runs,
      const char   *run_id,
      guint64       seq,
      ChimeEvent   *event)
{
  g_autoptr (GError) error = NULL;
  ChimeEventType type = chime_event_get_event_type (event);
  gsize at;

  if (chime_event_type_ends_run (type))
    g_hash_table_remove (runs, run_id);
  if (!chime_handler_wants (handler, type) ||
      chime_handler_invoke_sync (handler, type, event, &error))
    {
      /* The answer to nearly every event: no JSON tree for it. */
      answers_whole = FALSE;
      at = chime_frame_begin (answers);
      g_string_append_printf (answers, "{\"seq\":%" G_GUINT64_FORMAT "}", seq);
      chime_frame_end (answers, at, NULL);
      answers_whole = TRUE;
      return;
    }
  if (error == NULL)
    g_set_error_literal (&error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                         "the handler returned FALSE without an error");
  reply_error (json_integer ((json_int_t) seq), error);
}

/* A token frame as chime_host_link writes it, {"seq":N,"event":TOKEN},
 * taken without a JSON parser; FALSE for any other frame. */
static gboolean
call_token (ChimeHandler *handler,
            GHashTable   *runs,
            const char   *text,
            gsize         length)
{
  static const char middle[] = ",\"event\":";
  g_autoptr (ChimeEvent) event = NULL;
  guint64 seq = 0;
  gsize at = chime_frame_read_seq (text, length, &seq);
  const char *p = text + at;
  const char *end = text + length;

  if (at == 0 || text[length - 1] != '}' || (gsize) (end - p) < sizeof middle ||
      memcmp (p, middle, sizeof middle - 1) != 0)
    return FALSE;
  p += sizeof middle - 1;
  event = chime_event_from_token_wire (p, (gsize) (end - 1 - p), runs);
  if (event == NULL)
    return FALSE;
  call (handler, runs, NULL, seq, event);
  return TRUE;
}

/* Any other frame: FALSE when it is the end (quit, or not a frame). */
static gboolean
take_message (ChimeHandler *handler,
              GHashTable   *runs,
              const char   *text,
              gsize         length)
{
  g_autoptr (json_t) message = chime_frame_parse (text, length, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeEvent) event = NULL;
  json_t *wire, *run;

  if (message == NULL || json_is_true (json_object_get (message, "quit")))
    return FALSE;
  if ((run = json_object_get (message, "run")) != NULL)
    {
      remember_run (runs, run);
      return TRUE;
    }
  wire = json_object_get (message, "event");
  event = chime_event_from_wire (wire, runs, &error);
  if (event == NULL)
    reply_error (json_incref (json_object_get (message, "seq")), error);
  else
    call (handler, runs, json_string_value (json_object_get (wire, "run")),
          (guint64) json_integer_value (json_object_get (message, "seq")), event);
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) init = NULL;
  ChimeFrameReader *reader = chime_frame_reader_new (PROTOCOL_FD);
  g_autoptr (GHashTable) runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) chime_run_info_unref);
  ChimeHandler *handler;

  /* Ctrl-C reaches the whole process group; chime decides when its
   * handlers stop (after the flush), and tells this process. */
  signal (SIGINT, SIG_IGN);
  if (argc != 2)
    {
      fprintf (stderr, "chime-plugin-host: chime starts this program for isolation = process; "
                       "it is not run by hand\n");
      return 2;
    }
  answers = g_string_sized_new (4096);
  keep_answers_through_crashes ();
  init = chime_frame_reader_read (reader, 0, &error);
  if (init == NULL)
    return 2;
  apply_memory_limit (init);
  handler = start_handler (init, &error);
  if (handler == NULL)
    {
      reply (json_pack ("{s:s}", "error", error->message));
      send_answers ();
      return 1;
    }
  reply (json_pack ("{s:b}", "ready", TRUE));
  for (;;)
    {
      gsize length;
      const char *text;

      if (!chime_frame_reader_has_frame (reader))
        send_answers ();
      text = chime_frame_reader_read_text (reader, 0, &length, NULL);
      if (text == NULL)
        break;
      if (!call_token (handler, runs, text, length) && !take_message (handler, runs, text, length))
        break;
    }
  send_answers ();
  chime_handler_free (handler);
  chime_frame_reader_free (reader);
  reply (json_object ());
  send_answers ();
  return 0;
}
