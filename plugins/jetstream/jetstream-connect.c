/* jetstream — connecting to NATS and finding (or making) the stream.
 *
 * libnats runs its own threads (a reader per connection, a timer thread,
 * one delivering messages), and we let it: see docs/scale-out.md for why
 * the GLib main loop does not drive it (natsOptions_SetEventLoop would
 * move only the socket reads and writes there; acks, timers and reconnects
 * would stay on libnats's threads anyway). Everything the plugin shares
 * with those threads is behind its own lock. */
#include "jetstream-connect.h"

#include <string.h>

G_DEFINE_QUARK (chime-jetstream-error-quark, jetstream_error)

char *
jetstream_describe_status (natsStatus status)
{
  natsStatus last_status = NATS_OK;
  const char *detail = nats_GetLastError (&last_status);

  if (detail != NULL && detail[0] != '\0' && last_status == status)
    {
      /* "(conn.c:2088): No server available": the place is libnats's. */
      const char *colon = detail[0] == '(' ? strstr (detail, "): ") : NULL;

      return g_strdup (colon != NULL ? colon + 3 : detail);
    }
  return g_strdup (natsStatus_GetText (status));
}

static void
say (natsConnection *connection,
     gpointer        data,
     const char     *what)
{
  const JetstreamServer *server = data;
  char url[256] = "";
  g_autofree char *message = NULL;

  /* natsConnection_Close() disconnects too: not news. It is asked first,
   * before @server is read: libnats may call this from its own thread
   * after the connection's owner closed it and let @server go (the
   * callback's reference keeps the connection itself valid). */
  if (natsConnection_IsClosed (connection) || server->log == NULL)
    return;
  natsConnection_GetConnectedUrl (connection, url, sizeof url);
  message = g_strdup_printf ("%s%s%s", what, url[0] != '\0' ? " " : "", url);
  server->log (message, server->log_data);
}

static void
on_disconnected (natsConnection *connection,
                 void           *data)
{
  say (connection, data, "disconnected from NATS, reconnecting");
}

static void
on_reconnected (natsConnection *connection,
                void           *data)
{
  say (connection, data, "reconnected to NATS at");
}

static natsOptions *
connection_options (const JetstreamServer *server)
{
  natsOptions *options = NULL;
  int n_urls = (int) g_strv_length ((char **) server->urls);

  if (natsOptions_Create (&options) != NATS_OK)
    return NULL;
  natsOptions_SetName (options, "chime");
  natsOptions_SetServers (options, (const char **) server->urls, n_urls);
  natsOptions_SetTimeout (options, server->connect_timeout_ms);
  /* Forever: a runner outlives a restart of the server, and what it
   * publishes meanwhile waits in the reconnect buffer. */
  natsOptions_SetMaxReconnect (options, -1);
  natsOptions_SetReconnectWait (options, server->reconnect_wait_ms);
  natsOptions_SetReconnectBufSize (options, 64 * 1024 * 1024);
  /* Order matters on a restart of one server: the same one first. */
  natsOptions_SetNoRandomize (options, n_urls == 1);
  natsOptions_SetDisconnectedCB (options, on_disconnected, (void *) server);
  natsOptions_SetReconnectedCB (options, on_reconnected, (void *) server);
  return options;
}

natsConnection *
jetstream_connect (const JetstreamServer *server,
                   GError               **error)
{
  natsOptions *options = connection_options (server);
  natsConnection *connection = NULL;
  natsStatus status;
  g_autofree char *urls = NULL;
  g_autofree char *why = NULL;

  if (options == NULL)
    {
      g_set_error (error, JETSTREAM_ERROR, 0, "%s: cannot set up a NATS connection (out of memory)", server->who);
      return NULL;
    }
  status = natsConnection_Connect (&connection, options);
  natsOptions_Destroy (options);
  if (status == NATS_OK)
    return connection;
  urls = g_strjoinv (", ", (char **) server->urls);
  why = jetstream_describe_status (status);
  g_set_error (error, JETSTREAM_ERROR, 0,
               "%s: cannot connect to NATS at %s: %s (is nats-server running with -js? "
               "docs/scale-out.md has the command; the key is 'url')",
               server->who, urls, why);
  return NULL;
}

/* Whether a stream subject catches every "PREFIX.…" subject. */
static gboolean
subject_covers (const char *subject,
                const char *prefix)
{
  gsize length = strlen (subject);
  g_autofree char *wanted = g_strconcat (prefix, ".", NULL);

  if (g_str_equal (subject, ">"))
    return TRUE;
  /* "chime.>" or "chime.events.>" both catch "chime.events.…". */
  return length >= 2 && g_str_has_suffix (subject, ".>") &&
         strncmp (wanted, subject, length - 1) == 0;
}

static gboolean
check_subjects (const JetstreamServer *server,
                const JetstreamStream *stream,
                jsStreamInfo          *info,
                GError               **error)
{
  g_autoptr (GString) listed = g_string_new (NULL);

  for (int i = 0; i < info->Config->SubjectsLen; i++)
    {
      if (subject_covers (info->Config->Subjects[i], stream->prefix))
        return TRUE;
      g_string_append_printf (listed, "%s%s", i > 0 ? ", " : "", info->Config->Subjects[i]);
    }
  g_set_error (error, JETSTREAM_ERROR, 0,
               "%s: stream %s takes the subjects [%s], not %s.>: add that subject to the stream "
               "or set 'prefix' to one it takes",
               server->who, stream->name, listed->str, stream->prefix);
  return FALSE;
}

static gboolean
create_stream (jsCtx                 *js,
               const JetstreamServer *server,
               const JetstreamStream *stream,
               GError               **error)
{
  g_autofree char *subject = g_strconcat (stream->prefix, ".>", NULL);
  const char *subjects[] = { subject };
  jsStreamConfig config;
  jsStreamInfo *info = NULL;
  jsErrCode code = 0;
  natsStatus status;
  g_autofree char *why = NULL;

  jsStreamConfig_Init (&config);
  config.Name = stream->name;
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.MaxAge = (int64_t) stream->max_age_s * G_GINT64_CONSTANT (1000000000);
  config.Duplicates = (int64_t) stream->duplicate_window_ms * 1000000;
  status = js_AddStream (&info, js, &config, NULL, &code);
  jsStreamInfo_Destroy (info);
  if (status == NATS_OK)
    return TRUE;
  why = jetstream_describe_status (status);
  g_set_error (error, JETSTREAM_ERROR, 0, "%s: cannot create stream %s (subjects %s): %s (error %d)",
               server->who, stream->name, subject, why, (int) code);
  return FALSE;
}

gboolean
jetstream_ensure_stream (jsCtx                 *js,
                         const JetstreamServer *server,
                         const JetstreamStream *stream,
                         GError               **error)
{
  jsStreamInfo *info = NULL;
  jsErrCode code = 0;
  natsStatus status = js_GetStreamInfo (&info, js, stream->name, NULL, &code);
  g_autofree char *why = NULL;
  gboolean ok;

  if (status == NATS_OK)
    {
      ok = stream->prefix == NULL || check_subjects (server, stream, info, error);
      jsStreamInfo_Destroy (info);
      return ok;
    }
  if ((status == NATS_NOT_FOUND || code == JSStreamNotFoundErr) && stream->create)
    return create_stream (js, server, stream, error);
  why = jetstream_describe_status (status);
  if (status == NATS_NOT_FOUND || code == JSStreamNotFoundErr)
    g_set_error (error, JETSTREAM_ERROR, 0,
                 "%s: the NATS server has no stream %s: create it (docs/scale-out.md) "
                 "or set create_stream = true", server->who, stream->name);
  else
    g_set_error (error, JETSTREAM_ERROR, 0,
                 "%s: cannot look up stream %s: %s (is JetStream enabled? start nats-server with -js)",
                 server->who, stream->name, why);
  return FALSE;
}
