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
 * the entry point returned; and
 * {"quit": true} at the end, answered once instance_free has run. The
 * handler is built and called by the same code as in chime's process. */
#include "config.h"

#include "host-frames.h"
#include "host-init.h"
#include "events/event-wire.h"
#include "plugins/handler.h"
#include "runtime-config.h"

#include <signal.h>
#include <stdio.h>

#define PROTOCOL_FD 3

static void
reply (json_t *message)
{
  g_autoptr (GError) error = NULL;

  if (!chime_frame_write (PROTOCOL_FD, message, &error))
    {
      /* chime went away: nothing is left to answer to. */
      exit (0);
    }
  json_decref (message);
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

static json_t *
call (ChimeHandler *handler,
      json_t       *wire)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeEvent) event = chime_event_from_wire (wire, &error);
  ChimeEventType type;

  if (event == NULL)
    return json_pack ("{s:{s:s, s:i, s:s}}", "error", "domain", g_quark_to_string (error->domain),
                      "code", error->code, "message", error->message);
  type = chime_event_get_event_type (event);
  if (!chime_handler_wants (handler, type) ||
      chime_handler_invoke_sync (handler, type, event, &error))
    return json_object ();
  if (error == NULL)
    g_set_error_literal (&error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                         "the handler returned FALSE without an error");
  return json_pack ("{s:{s:s, s:i, s:s}}", "error", "domain", g_quark_to_string (error->domain),
                    "code", error->code, "message", error->message);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) init = NULL;
  ChimeFrameReader *reader = chime_frame_reader_new (PROTOCOL_FD);
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
  init = chime_frame_reader_read (reader, 0, &error);
  if (init == NULL)
    return 2;
  handler = start_handler (init, &error);
  if (handler == NULL)
    {
      reply (json_pack ("{s:s}", "error", error->message));
      return 1;
    }
  reply (json_pack ("{s:b}", "ready", TRUE));
  for (;;)
    {
      g_autoptr (GError) frame_error = NULL;
      g_autoptr (json_t) message = chime_frame_reader_read (reader, 0, &frame_error);
      json_t *answer;

      if (message == NULL || json_is_true (json_object_get (message, "quit")))
        break;
      answer = call (handler, json_object_get (message, "event"));
      /* Answers name the event they answer. */
      json_object_set (answer, "seq", json_object_get (message, "seq"));

      /* What the plugin printed goes out before chime hears it is done. */
      fflush (stdout);
      reply (answer);
    }
  chime_handler_free (handler);
  chime_frame_reader_free (reader);
  fflush (stdout);
  reply (json_object ());
  return 0;
}
