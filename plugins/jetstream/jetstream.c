/* jetstream — every event published to a NATS JetStream stream, for
 * `chime consume` (or any JetStream consumer) to handle elsewhere.
 *
 *   [handler bus]
 *   plugin = jetstream
 *   url = nats://127.0.0.1:4222
 *   stream = CHIME_EVENTS
 *   prefix = chime.events
 *
 * Each event is one message on PREFIX.ROOT_RUN_ID.EVENT, its body the
 * event's transport form (chime_event_to_transport(), docs/events.md), its
 * headers the event's type and run ids and Nats-Msg-Id, the event's stable
 * id (chime_event_get_id()): a message sent again after a timeout or a
 * reconnection is dropped by the server within the stream's duplicate
 * window. Publishing is asynchronous with at most max_pending messages
 * waiting for their ack (jetstream-publisher.c); the end of the run waits
 * up to flush_timeout_ms for the last acks and reports what was lost. */
#include <chime/plugin.h>

#include "jetstream-connect.h"
#include "jetstream-publisher.h"

typedef struct {
  gboolean   known;
  ChimeRunId id;
  char       text[CHIME_RUN_ID_STRING_LEN];
} JetstreamRunText;

typedef struct {
  ChimeHandlerContext *context;
  char                *who;
  JetstreamServer      server;
  char                *prefix;
  char                *stream;
  guint                flush_timeout_ms;
  gboolean             headers;
  natsConnection      *connection;
  JetstreamPublisher  *publisher;
  /* The body and subject being built, kept between events. */
  GString             *body;
  GString             *subject;
  /* The last event's run and root run ids and their text: a run's events
   * come one after another, and formatting ids was a tenth of the cost. */
  JetstreamRunText     run_text;
  JetstreamRunText     root_text;
} JetstreamHandler;

static const ChimeConfigKey jetstream_keys[] = {
  { "url", CHIME_CONFIG_STRING_LIST, "nats://127.0.0.1:4222",
    "the NATS server, or several members of a cluster (comma-separated)" },
  { "stream", CHIME_CONFIG_STRING, "CHIME_EVENTS", "the JetStream stream the events go to" },
  { "prefix", CHIME_CONFIG_STRING, "chime.events",
    "subjects are PREFIX.ROOT_RUN_ID.EVENT; the stream must take PREFIX.>" },
  { "create_stream", CHIME_CONFIG_BOOL, "false",
    "create the stream (file storage, subjects PREFIX.>) when the server has none by that name" },
  { "max_age_s", CHIME_CONFIG_INT, "86400", "with create_stream: how long the stream keeps events" },
  { "duplicate_window_ms", CHIME_CONFIG_INT, "120000",
    "with create_stream: how long the server drops a re-published event (by Nats-Msg-Id)" },
  { "max_pending", CHIME_CONFIG_INT, "4096",
    "publishes waiting for their ack at most; then events wait (the runtime's on_full applies)" },
  { "ack_timeout_ms", CHIME_CONFIG_INT, "5000", "wait for one attempt's ack before publishing again" },
  { "publish_timeout_ms", CHIME_CONFIG_INT, "60000", "after this, an event not acked is counted lost" },
  { "flush_timeout_ms", CHIME_CONFIG_INT, "10000", "the end of the run waits this long for the last acks" },
  { "headers", CHIME_CONFIG_BOOL, "true",
    "add the Chime-Event, Chime-Run-Id, Chime-Root-Run-Id and Chime-Parent-Run-Id headers "
    "(false: Nats-Msg-Id only, the cheapest to publish)" },
  { "connect_timeout_ms", CHIME_CONFIG_INT, "2000", "the first connection's timeout" },
  { "reconnect_wait_ms", CHIME_CONFIG_INT, "250", "pause between reconnection attempts" },
  { NULL }
};

static void
log_connection (const char *message,
                gpointer    data)
{
  JetstreamHandler *self = data;

  chime_handler_log (self->context, G_LOG_LEVEL_MESSAGE, "%s", message);
}

/* A positive key, or FALSE with @error naming it. */
static gboolean
read_positive (ChimeHandlerContext *context,
               const char          *key,
               guint               *out,
               GError             **error)
{
  gint64 value = chime_handler_context_get_int (context, key);

  if (value <= 0 || value > G_MAXINT32)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "key '%s' of [handler %s] is %" G_GINT64_FORMAT ": give a number from 1 to %d",
                   key, chime_handler_context_get_name (context), value, G_MAXINT32);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

static void jetstream_handler_free (gpointer instance);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JetstreamHandler, jetstream_handler_free)

static gboolean
read_settings (JetstreamHandler       *self,
               JetstreamPublishLimits *limits,
               JetstreamStream        *stream,
               GError                **error)
{
  ChimeHandlerContext *context = self->context;
  guint max_age_s, window_ms;

  self->server.urls = chime_handler_context_get_string_list (context, "url");
  if (self->server.urls[0] == NULL)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "key 'url' of [handler %s] is empty: give nats://HOST:PORT", chime_handler_context_get_name (context));
      return FALSE;
    }
  if (!read_positive (context, "max_pending", &limits->max_pending, error) ||
      !read_positive (context, "ack_timeout_ms", &limits->ack_timeout_ms, error) ||
      !read_positive (context, "publish_timeout_ms", &limits->publish_timeout_ms, error) ||
      !read_positive (context, "flush_timeout_ms", &self->flush_timeout_ms, error) ||
      !read_positive (context, "connect_timeout_ms", &self->server.connect_timeout_ms, error) ||
      !read_positive (context, "reconnect_wait_ms", &self->server.reconnect_wait_ms, error) ||
      !read_positive (context, "max_age_s", &max_age_s, error) ||
      !read_positive (context, "duplicate_window_ms", &window_ms, error))
    return FALSE;
  *stream = (JetstreamStream) {
    .name = self->stream,
    .prefix = self->prefix,
    .create = chime_handler_context_get_bool (context, "create_stream"),
    .max_age_s = max_age_s,
    .duplicate_window_ms = window_ms,
  };
  return TRUE;
}

static gpointer
jetstream_handler_new (ChimeHandlerContext *context,
                       GError             **error)
{
  g_autoptr (JetstreamHandler) self = g_new0 (JetstreamHandler, 1);
  JetstreamPublishLimits limits;
  JetstreamStream stream;

  self->context = context;
  self->body = g_string_sized_new (1024);
  self->subject = g_string_sized_new (128);
  self->who = g_strdup_printf ("[handler %s]", chime_handler_context_get_name (context));
  self->prefix = g_strdup (chime_handler_context_get_string (context, "prefix"));
  self->stream = g_strdup (chime_handler_context_get_string (context, "stream"));
  self->headers = chime_handler_context_get_bool (context, "headers");
  self->server.who = self->who;
  self->server.log = log_connection;
  self->server.log_data = self;
  if (!read_settings (self, &limits, &stream, error))
    return NULL;
  self->connection = jetstream_connect (&self->server, error);
  if (self->connection == NULL)
    return NULL;
  self->publisher = jetstream_publisher_new (self->connection, context, &limits, error);
  if (self->publisher == NULL ||
      !jetstream_ensure_stream (jetstream_publisher_get_js (self->publisher), &self->server, &stream, error))
    return NULL;
  return g_steal_pointer (&self);
}

/* One line at the end: what was published and what was lost. Nothing
 * when no event came (`chime check` starts and stops every handler). */
static void
report (JetstreamHandler *self)
{
  JetstreamPublishStats stats;
  g_autofree char *failure = jetstream_publisher_dup_last_failure (self->publisher);

  jetstream_publisher_get_stats (self->publisher, &stats);
  if (stats.published == 0)
    return;
  chime_handler_log (self->context, G_LOG_LEVEL_MESSAGE,
                     "%" G_GUINT64_FORMAT " events published to stream %s, %" G_GUINT64_FORMAT " acked (%"
                     G_GUINT64_FORMAT " duplicates dropped by the server), %" G_GUINT64_FORMAT " retried, %"
                     G_GUINT64_FORMAT " lost",
                     stats.published, self->stream, stats.acked, stats.duplicates, stats.retried, stats.lost);
  if (stats.lost > 0)
    {
      g_autoptr (GError) error = g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                              "%" G_GUINT64_FORMAT " events were not stored in stream %s; last: %s",
                                              stats.lost, self->stream, failure != NULL ? failure : "unknown");

      chime_handler_context_report_error (self->context, error);
    }
}

static void
jetstream_handler_free (gpointer instance)
{
  JetstreamHandler *self = instance;

  if (self->publisher != NULL)
    {
      jetstream_publisher_finish (self->publisher, self->flush_timeout_ms);
      report (self);
    }
  if (self->connection != NULL)
    natsConnection_Close (self->connection);
  jetstream_publisher_free (self->publisher);
  if (self->connection != NULL)
    natsConnection_Destroy (self->connection);
  if (self->body != NULL)
    g_string_free (self->body, TRUE);
  if (self->subject != NULL)
    g_string_free (self->subject, TRUE);
  g_free (self->prefix);
  g_free (self->stream);
  g_free (self->who);
  g_free (self);
}

static const ChimeRunInfo *
root_of (const ChimeRunInfo *run)
{
  while (chime_run_info_get_parent (run) != NULL)
    run = chime_run_info_get_parent (run);
  return run;
}

/* @run's id as text, formatted only when it differs from the last one. */
static const char *
run_text (JetstreamRunText   *cache,
          const ChimeRunInfo *run)
{
  const ChimeRunId *id = chime_run_info_get_id (run);

  if (!cache->known || !chime_run_id_equal (&cache->id, id))
    {
      cache->id = *id;
      cache->known = TRUE;
      chime_run_id_to_string (id, cache->text);
    }
  return cache->text;
}

static natsMsg *
make_message (JetstreamHandler *self,
              ChimeEvent       *event)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  const char *type = chime_event_type_to_string (chime_event_get_event_type (event));
  const char *run_id = run_text (&self->run_text, run);
  const char *root_id = run_text (&self->root_text, root_of (run));
  char id[CHIME_EVENT_ID_LEN];
  natsMsg *message = NULL;

  g_string_truncate (self->body, 0);
  chime_event_append_transport (event, self->body);
  chime_event_get_id (event, id);
  g_string_assign (self->subject, self->prefix);
  g_string_append_c (self->subject, '.');
  g_string_append (self->subject, root_id);
  g_string_append_c (self->subject, '.');
  g_string_append (self->subject, type);
  if (natsMsg_Create (&message, self->subject->str, NULL, self->body->str, (int) self->body->len) != NATS_OK)
    return NULL;
  natsMsgHeader_Set (message, "Nats-Msg-Id", id);
  /* Each header is a few allocations in libnats: about 2 us of the
   * runner's CPU per event for the four. */
  if (!self->headers)
    return message;
  natsMsgHeader_Set (message, "Chime-Event", type);
  natsMsgHeader_Set (message, "Chime-Run-Id", run_id);
  natsMsgHeader_Set (message, "Chime-Root-Run-Id", root_id);
  if (chime_run_info_get_parent_id (run) != NULL)
    {
      char parent_id[CHIME_RUN_ID_STRING_LEN];

      chime_run_id_to_string (chime_run_info_get_parent_id (run), parent_id);
      natsMsgHeader_Set (message, "Chime-Parent-Run-Id", parent_id);
    }
  return message;
}

static void
jetstream_on_event (gpointer         instance,
                    ChimeEvent      *event,
                    ChimeCompletion *completion)
{
  JetstreamHandler *self = instance;
  natsMsg *message = make_message (self, event);

  if (message == NULL)
    {
      chime_completion_fail (completion, g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                                                      "cannot make a NATS message (out of memory)"));
      return;
    }
  jetstream_publisher_publish (self->publisher, message, completion);
}

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "jetstream",
  .description = "publishes every event to a NATS JetStream stream (for chime consume)",
  .version = CHIME_VERSION_STRING,
  .config_keys = jetstream_keys,
  .instance_new = jetstream_handler_new,
  .instance_free = jetstream_handler_free,
  .on_event = jetstream_on_event,
);
