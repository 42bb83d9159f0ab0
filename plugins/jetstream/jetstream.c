/* jetstream — every event published to a NATS JetStream stream, for
 * `chime consume` (or any JetStream consumer) to handle elsewhere.
 *
 *   [handler bus]
 *   plugin = jetstream
 *   url = nats://127.0.0.1:4222
 *   stream = CHIME_EVENTS
 *   prefix = chime.events
 *
 * A message on PREFIX.ROOT_RUN_ID.EVENT carries a run of consecutive
 * events of one root run and one type, their transport forms
 * (chime_event_to_transport(), docs/events.md) one a line, with a stable
 * Nats-Msg-Id: a message sent again after a timeout or a reconnection is
 * dropped by the server within the stream's duplicate window
 * (jetstream-batch.c). A libnats message costs more than the events it
 * carries (its headers, its ack), which is why events share one.
 *
 * The message being filled is sent when the next event has another root
 * run or type, at batch_max events or batch_bytes, at shutdown, and else
 * as soon as the main loop has nothing else to do (linger_ms = 0: a burst
 * becomes few messages, a lone event leaves at once), or linger_ms after
 * its first event. Each event completes once it is in the message, unless
 * max_pending messages wait for their ack (jetstream-publisher.c); the end
 * of the run waits up to flush_timeout_ms for the last acks and reports
 * what was lost. */
#include <chime/plugin.h>

#include "jetstream-batch.h"
#include "jetstream-connect.h"
#include "jetstream-message.h"
#include "jetstream-publisher.h"

typedef struct {
  ChimeHandlerContext *context;
  char                *who;
  JetstreamServer      server;
  char                *prefix;
  char                *stream;
  guint                flush_timeout_ms;
  guint                batch_max;
  guint                batch_bytes;
  guint                linger_ms;
  natsConnection      *connection;
  JetstreamPublisher  *publisher;
  /* The message being filled (main loop only). */
  JetstreamBatch      *batch;
  /* Sends it when the main loop is idle, or linger_ms after it opened. */
  GSource             *closer;
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
  { "batch_max", CHIME_CONFIG_INT, "256",
    "events a message carries at most (1: a message per event); a message has events of one root run and type" },
  { "batch_bytes", CHIME_CONFIG_INT, "262144",
    "a message is sent once its events take this many bytes (keep it under the server's max_payload)" },
  { "linger_ms", CHIME_CONFIG_INT, "0",
    "0: a message is sent as soon as the main loop has nothing else to do; N: up to N ms after its first event" },
  { "max_pending", CHIME_CONFIG_INT, "4096",
    "messages waiting for their ack at most; then events wait (the runtime's on_full applies)" },
  { "ack_timeout_ms", CHIME_CONFIG_INT, "5000", "wait for one attempt's ack before publishing again" },
  { "publish_timeout_ms", CHIME_CONFIG_INT, "60000", "after this, a message not acked is counted lost (its events)" },
  { "flush_timeout_ms", CHIME_CONFIG_INT, "10000", "the end of the run waits this long for the last acks" },
  { "headers", CHIME_CONFIG_BOOL, "true",
    "add the Chime-Event, Chime-Run-Id, Chime-Root-Run-Id and Chime-Parent-Run-Id headers "
    "(false: Nats-Msg-Id and Chime-Count only, the cheapest to publish)" },
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

/* A key from @min to @max, or FALSE with @error naming it. */
static gboolean
read_number (ChimeHandlerContext *context,
             const char          *key,
             gint64               min,
             gint64               max,
             guint               *out,
             GError             **error)
{
  gint64 value = chime_handler_context_get_int (context, key);

  if (value < min || value > max)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "key '%s' of [handler %s] is %" G_GINT64_FORMAT ": give a number from %" G_GINT64_FORMAT
                   " to %" G_GINT64_FORMAT, key, chime_handler_context_get_name (context), value, min, max);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

static gboolean
read_positive (ChimeHandlerContext *context,
               const char          *key,
               guint               *out,
               GError             **error)
{
  return read_number (context, key, 1, G_MAXINT32, out, error);
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
      !read_positive (context, "duplicate_window_ms", &window_ms, error) ||
      !read_number (context, "batch_max", 1, JETSTREAM_MAX_COUNT, &self->batch_max, error) ||
      !read_positive (context, "batch_bytes", &self->batch_bytes, error) ||
      !read_number (context, "linger_ms", 0, 60000, &self->linger_ms, error))
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

static void close_batch (JetstreamHandler *self);

static gboolean
closer_dispatch (GSource    *source,
                 GSourceFunc callback,
                 gpointer    user_data)
{
  g_source_set_ready_time (source, -1);
  close_batch (user_data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs closer_funcs = {
  .dispatch = closer_dispatch,
};

/* The source that sends the message being filled: at the idle priority
 * with no linger (it runs when the loop has nothing else ready, so the
 * events queued meanwhile join the message first), else at the default
 * priority, linger_ms after the message's first event. */
static void
attach_closer (JetstreamHandler *self)
{
  self->closer = g_source_new (&closer_funcs, sizeof (GSource));
  g_source_set_callback (self->closer, NULL, self, NULL);
  g_source_set_priority (self->closer, self->linger_ms == 0 ? G_PRIORITY_DEFAULT_IDLE : G_PRIORITY_DEFAULT);
  g_source_set_name (self->closer, "chime jetstream batch");
  g_source_attach (self->closer, chime_handler_context_get_main_context (self->context));
}

/* A message a little over batch_bytes must still be one the server takes. */
static gboolean
check_batch_bytes (JetstreamHandler *self,
                   GError          **error)
{
  int64_t max_payload = natsConnection_GetMaxPayload (self->connection);

  if (max_payload <= 0 || (int64_t) self->batch_bytes * 2 <= max_payload)
    return TRUE;
  g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
               "key 'batch_bytes' of [handler %s] is %u: the NATS server takes messages of at most %" G_GINT64_FORMAT
               " bytes (its max_payload), and a message can pass batch_bytes by one event: give at most %"
               G_GINT64_FORMAT, chime_handler_context_get_name (self->context), self->batch_bytes,
               (gint64) max_payload, (gint64) max_payload / 2);
  return FALSE;
}

static gpointer
jetstream_handler_new (ChimeHandlerContext *context,
                       GError             **error)
{
  g_autoptr (JetstreamHandler) self = g_new0 (JetstreamHandler, 1);
  JetstreamPublishLimits limits;
  JetstreamStream stream;

  self->context = context;
  self->who = g_strdup_printf ("[handler %s]", chime_handler_context_get_name (context));
  self->prefix = g_strdup (chime_handler_context_get_string (context, "prefix"));
  self->stream = g_strdup (chime_handler_context_get_string (context, "stream"));
  self->batch = jetstream_batch_new (self->prefix, chime_handler_context_get_bool (context, "headers"));
  self->server.who = self->who;
  self->server.log = log_connection;
  self->server.log_data = self;
  if (!read_settings (self, &limits, &stream, error))
    return NULL;
  self->connection = jetstream_connect (&self->server, error);
  if (self->connection == NULL || !check_batch_bytes (self, error))
    return NULL;
  self->publisher = jetstream_publisher_new (self->connection, context, &limits, error);
  if (self->publisher == NULL ||
      !jetstream_ensure_stream (jetstream_publisher_get_js (self->publisher), &self->server, &stream, error))
    return NULL;
  attach_closer (self);
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
                     G_GUINT64_FORMAT " lost; %" G_GUINT64_FORMAT " messages",
                     stats.published, self->stream, stats.acked, stats.duplicates, stats.retried, stats.lost,
                     stats.messages);
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

  if (self->closer != NULL)
    {
      g_source_destroy (self->closer);
      g_source_unref (self->closer);
    }
  if (self->publisher != NULL)
    {
      /* The last message goes too, then every ack is awaited. */
      close_batch (self);
      jetstream_publisher_finish (self->publisher, self->flush_timeout_ms);
      report (self);
    }
  if (self->connection != NULL)
    natsConnection_Close (self->connection);
  jetstream_publisher_free (self->publisher);
  if (self->connection != NULL)
    natsConnection_Destroy (self->connection);
  jetstream_batch_free (self->batch);
  g_free (self->prefix);
  g_free (self->stream);
  g_free (self->who);
  g_free (self);
}

/* Sends the message being filled, if any. */
static void
close_batch (JetstreamHandler *self)
{
  guint n_events = jetstream_batch_get_count (self->batch);
  natsMsg *message;

  if (n_events == 0)
    return;
  message = jetstream_batch_close (self->batch);
  if (message != NULL)
    jetstream_publisher_publish (self->publisher, message, n_events);
  else
    jetstream_publisher_count_lost (self->publisher, n_events, "cannot make a NATS message (out of memory)");
}

static void
jetstream_on_event (gpointer         instance,
                    ChimeEvent      *event,
                    ChimeCompletion *completion)
{
  JetstreamHandler *self = instance;

  if (!jetstream_batch_add (self->batch, event))
    {
      /* Another root run or type: a message of its own. */
      close_batch (self);
      jetstream_batch_add (self->batch, event);
    }
  if (jetstream_batch_get_count (self->batch) >= self->batch_max ||
      jetstream_batch_get_size (self->batch) >= self->batch_bytes)
    close_batch (self);
  else if (jetstream_batch_get_count (self->batch) == 1)
    g_source_set_ready_time (self->closer, self->linger_ms == 0
                                             ? 0 : g_get_monotonic_time () + (gint64) self->linger_ms * 1000);
  /* The event is in a message (sent or being filled): it is done, unless
   * max_pending messages wait for their ack. */
  jetstream_publisher_complete_when_room (self->publisher, completion);
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
