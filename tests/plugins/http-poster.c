/* An async test plugin that POSTs every chain_end event as JSON with
 * chime_http_post() and completes the event when the answer is in. It
 * appends one line per request to `report`:
 *   STATUS BYTES FIRST-BYTES-OF-BODY     or     error DOMAIN-CODE MESSAGE
 * With fail_on_status, a status ≥ 400 fails the event. */
#include <chime/chime.h>

#include <stdio.h>
#include <string.h>

typedef struct {
  ChimeHandlerContext *context;
  const char          *url;
  char               **headers;
  const char          *report;
  gboolean             fail_on_status;
} Poster;

typedef struct {
  Poster          *poster;
  ChimeCompletion *completion;
} Posting;

static gpointer
poster_new (ChimeHandlerContext *context,
            GError             **error)
{
  Poster *self = g_new0 (Poster, 1);

  self->context = context;
  self->url = chime_handler_context_get_string (context, "url");
  self->headers = g_strsplit (chime_handler_context_get_string (context, "headers"), ";", -1);
  for (guint i = 0; self->headers[i] != NULL; i++)
    g_strstrip (self->headers[i]);
  self->report = chime_handler_context_get_string (context, "report");
  self->fail_on_status = chime_handler_context_get_bool (context, "fail_on_status");
  return self;
}

static void
poster_free (gpointer instance)
{
  Poster *self = instance;

  g_strfreev (self->headers);
  g_free (self);
}

static void
append_report (Poster     *self,
               const char *line)
{
  FILE *file = fopen (self->report, "a");

  if (file == NULL)
    return;
  fprintf (file, "%s\n", line);
  fclose (file);
}

static void
on_posted (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  Posting *posting = data;
  Poster *self = posting->poster;
  GError *error = NULL;
  guint status = 0;
  g_autoptr (GBytes) body = chime_http_post_finish (result, &status, &error);
  g_autofree char *line = NULL;

  if (body == NULL)
    {
      line = g_strdup_printf ("error %d %s", error->code, error->message);
      append_report (self, line);
      chime_completion_fail (posting->completion, error);
    }
  else
    {
      gsize length = 0;
      const char *bytes = g_bytes_get_data (body, &length);
      g_autofree char *head = g_strndup (bytes, MIN (length, 60));

      g_strdelimit (head, "\r\n", ' ');
      line = g_strdup_printf ("%u %" G_GSIZE_FORMAT " %s", status, length, head);
      append_report (self, line);
      if (self->fail_on_status && status >= 400)
        chime_completion_fail (posting->completion,
                               g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                            "the collector answered %u", status));
      else
        chime_completion_complete (posting->completion);
    }
  g_free (posting);
}

static void
on_chain_end (gpointer         instance,
              ChimeEvent      *event,
              ChimeCompletion *completion)
{
  Poster *self = instance;
  Posting *posting = g_new0 (Posting, 1);
  g_autoptr (json_t) json = chime_event_to_json (event);
  char *text = json_dumps (json, JSON_COMPACT);
  g_autoptr (GBytes) body = g_bytes_new_with_free_func (text, strlen (text), free, text);

  posting->poster = self;
  posting->completion = completion;
  chime_http_post (self->context, self->url, (const char * const *) self->headers, body, NULL, on_posted, posting);
}

static const ChimeConfigKey keys[] = {
  { "url", CHIME_CONFIG_STRING, NULL, "where to POST", CHIME_CONFIG_KEY_REQUIRED },
  { "headers", CHIME_CONFIG_STRING, "", "request headers, \"Name: value\" separated by ';'" },
  { "report", CHIME_CONFIG_PATH, NULL, "append one line per request here", CHIME_CONFIG_KEY_REQUIRED },
  { "fail_on_status", CHIME_CONFIG_BOOL, "false", "fail the event on a status of 400 or more" },
  { NULL }
};

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "http_poster",
  .description = "POSTs every chain_end event with chime_http_post()",
  .config_keys = keys,
  .instance_new = poster_new,
  .instance_free = poster_free,
  .on_chain_end = on_chain_end,
);
