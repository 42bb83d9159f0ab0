/* An async recorder: see recorder.h. With delay_us it completes each event
 * later, from a timer on the runtime's main context; with hang_on it never
 * completes events of that type (for timeout tests); with late_on it
 * completes only events of that type later, by delay_us, reading the
 * event from its completion then rather than keeping a reference. With
 * wait_at_token it blocks in its call for that token, holding the main
 * loop, until its log holds the line wait_for_line (written there by
 * another handler sharing the log): a test that only the other handler's
 * progress can release (gives up, failing the event, after 10 s). */
#include "recorder.h"

#include <string.h>

/* How long wait_at_token waits at most: a hang's bound, not a timing. */
#define WAIT_FOR_LINE_US (10 * G_USEC_PER_SEC)

typedef struct {
  Recorder        *self;
  ChimeCompletion *completion;
  ChimeEvent      *event;       /* NULL: chime_completion_get_event() */
} Pending;

static gboolean
complete_later (gpointer data)
{
  Pending *pending = data;
  g_autoptr (GError) error = NULL;

  ChimeEvent *event = pending->event != NULL ? pending->event
                                             : chime_completion_get_event (pending->completion);

  if (recorder_record (pending->self, event, &error))
    chime_completion_complete (pending->completion);
  else
    chime_completion_fail (pending->completion, g_steal_pointer (&error));
  g_clear_pointer (&pending->event, chime_event_unref);
  g_free (pending);
  return G_SOURCE_REMOVE;
}

static gboolean
log_has_line (const char *path,
              const char *line)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  lines = g_strsplit (contents, "\n", -1);
  return g_strv_contains ((const char * const *) lines, line);
}

/* wait_at_token: FALSE with @error when wait_for_line never appeared. */
static gboolean
wait_for_line (Recorder   *self,
               ChimeEvent *event,
               GError    **error)
{
  const char *at = chime_handler_context_get_string (self->context, "wait_at_token");
  const char *line = chime_handler_context_get_string (self->context, "wait_for_line");
  const char *log = chime_handler_context_get_string (self->context, "log");
  const char *token = chime_event_get_token (event);
  gint64 give_up;

  if (at[0] == '\0' || token == NULL || strcmp (token, at) != 0 || log == NULL)
    return TRUE;
  give_up = g_get_monotonic_time () + WAIT_FOR_LINE_US;
  while (!log_has_line (log, line))
    {
      if (g_get_monotonic_time () > give_up)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                       "gave up at token %s: '%s' never appeared in %s", at, line, log);
          return FALSE;
        }
      g_usleep (1000);
    }
  return TRUE;
}

static void
on_event (gpointer         instance,
          ChimeEvent      *event,
          ChimeCompletion *completion)
{
  Recorder *self = instance;
  const char *hang_on = chime_handler_context_get_string (self->context, "hang_on");
  const char *late_on = chime_handler_context_get_string (self->context, "late_on");
  const char *type = chime_event_type_to_string (chime_event_get_event_type (event));
  gboolean late = late_on[0] != '\0' && g_str_equal (late_on, type);
  g_autoptr (GError) error = NULL;

  if (hang_on[0] != '\0' && g_str_equal (hang_on, type))
    return;   /* never completes: the runtime's timeout must cut it off */

  if (self->delay_us > 0 && (late || late_on[0] == '\0'))
    {
      Pending *pending = g_new0 (Pending, 1);
      GSource *timer = g_timeout_source_new (self->delay_us / 1000);

      pending->self = self;
      pending->completion = completion;
      pending->event = late ? NULL : chime_event_ref (event);
      g_source_set_callback (timer, complete_later, pending, NULL);
      g_source_attach (timer, chime_handler_context_get_main_context (self->context));
      g_source_unref (timer);
      return;
    }
  if (wait_for_line (self, event, &error) && recorder_record (self, event, &error))
    chime_completion_complete (completion);
  else
    chime_completion_fail (completion, g_steal_pointer (&error));
}

static const ChimeConfigKey async_keys[] = {
  { "log", CHIME_CONFIG_PATH, NULL, "append one line per event to this file" },
  { "report", CHIME_CONFIG_PATH, NULL, "write a JSON summary here at shutdown" },
  { "fail_on", CHIME_CONFIG_STRING, "", "fail every event of this type" },
  { "delay_us", CHIME_CONFIG_INT, "0", "complete every event this much later" },
  { "hang_on", CHIME_CONFIG_STRING, "", "never complete events of this type" },
  { "late_on", CHIME_CONFIG_STRING, "", "complete only events of this type, delay_us later, "
    "reading the event from the completion" },
  { "wait_at_token", CHIME_CONFIG_STRING, "", "at this token, block until the log holds wait_for_line" },
  { "wait_for_line", CHIME_CONFIG_STRING, "", "the line wait_at_token waits for" },
  { NULL }
};

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "recorder_async",
  .description = "test plugin: records every event (async)",
  .version = "1",
  .config_keys = async_keys,
  .instance_new = recorder_new,
  .instance_free = recorder_free,
  .on_event = on_event,
);
