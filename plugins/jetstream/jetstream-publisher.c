/* jetstream — publishing with a bounded number of un-acked messages.
 *
 * A message carries one event or several (jetstream-batch.c): the window,
 * the retries and the deadlines are the message's, the counts (published,
 * acked, lost) are of its events. Publishes are asynchronous (js_PublishMsgAsync): the main loop hands a
 * message to libnats and goes on; the server's ack comes back on a libnats
 * thread (on_ack). Until then the message counts as pending. A timeout or
 * a refusal that is not the stream's own (no responders while JetStream
 * restarts, a connection lost) sends it again, with the same Nats-Msg-Id,
 * so that the server drops the copy it may have stored already. A message
 * not acked within publish_timeout_ms of its first attempt, or refused by
 * the stream itself, is counted lost and said in the end-of-run report.
 * Once the server has been out of reach for publish_timeout_ms, new
 * events are counted lost at once instead of each waiting that long: a
 * run goes on at its own pace without its events, and says so. */
#include "jetstream-publisher.h"

#include "jetstream-connect.h"
#include "jetstream-message.h"

struct _JetstreamPublisher {
  ChimeHandlerContext   *context;
  natsConnection        *connection;
  jsCtx                 *js;
  /* Main loop only: when the connection was first seen down (0: up). */
  gint64                 down_since_us;
  jsPubOptions           publish_options;
  JetstreamPublishLimits limits;
  gint64                 start_us;

  GMutex                 lock;
  /* Published, neither acked nor lost: natsMsg * -> its deadline, in ms
   * since start_us. */
  GHashTable            *pending;
  /* The completion of the event that came while the window was full. */
  ChimeCompletion       *held;
  gboolean               closing;
  JetstreamPublishStats  stats;
  char                  *last_failure;
};

static guint
now_ms (JetstreamPublisher *self)
{
  return (guint) ((g_get_monotonic_time () - self->start_us) / 1000);
}

/* Called with the lock held: forgets @message, and returns the held
 * completion when that made room (the caller completes it unlocked). */
static ChimeCompletion *
settle (JetstreamPublisher *self,
        natsMsg            *message)
{
  g_hash_table_remove (self->pending, message);
  if (self->held != NULL && g_hash_table_size (self->pending) < self->limits.max_pending)
    return g_steal_pointer (&self->held);
  return NULL;
}

/* Called with the lock held: @n_events more lost, @why the last reason. */
static void
count_lost (JetstreamPublisher *self,
            guint               n_events,
            const char         *why)
{
  self->stats.lost += n_events;
  g_free (self->last_failure);
  self->last_failure = g_strdup (why);
}

/* Whether to send @message again after @failure. */
static gboolean
should_retry (JetstreamPublisher *self,
              natsMsg            *message,
              jsPubAckErr        *failure)
{
  guint deadline = GPOINTER_TO_UINT (g_hash_table_lookup (self->pending, message));

  /* An error code is the stream's answer (full, sealed, gone): the same
   * message would get the same one. */
  return !self->closing && failure->ErrCode == 0 && now_ms (self) < deadline;
}

static void
on_ack (jsCtx       *js,
        natsMsg     *message,
        jsPubAck    *ack,
        jsPubAckErr *failure,
        void        *data)
{
  JetstreamPublisher *self = data;
  ChimeCompletion *released = NULL;
  natsMsg *resend = message;
  /* Our own messages: the count header is ours, and right. */
  guint n_events = jetstream_message_get_count (message);

  g_mutex_lock (&self->lock);
  if (ack != NULL)
    {
      self->stats.acked += n_events;
      if (ack->Duplicate)
        self->stats.duplicates += n_events;
      released = settle (self, message);
    }
  else if (should_retry (self, message, failure) &&
           js_PublishMsgAsync (js, &resend, &self->publish_options) == NATS_OK)
    {
      /* libnats owns it again, under the same pointer. */
      self->stats.retried += n_events;
      message = NULL;
    }
  else
    {
      g_autofree char *why = g_strdup_printf ("%s%s%s", natsStatus_GetText (failure->Err),
                                              failure->ErrText != NULL ? ": " : "",
                                              failure->ErrText != NULL ? failure->ErrText : "");

      count_lost (self, n_events, why);
      released = settle (self, message);
    }
  g_mutex_unlock (&self->lock);
  natsMsg_Destroy (message);
  if (released != NULL)
    chime_completion_complete (released);
}

JetstreamPublisher *
jetstream_publisher_new (natsConnection               *connection,
                         ChimeHandlerContext          *context,
                         const JetstreamPublishLimits *limits,
                         GError                      **error)
{
  JetstreamPublisher *self = g_new0 (JetstreamPublisher, 1);
  jsOptions options;
  natsStatus status;

  self->context = context;
  self->connection = connection;
  self->limits = *limits;
  self->start_us = g_get_monotonic_time ();
  g_mutex_init (&self->lock);
  self->pending = g_hash_table_new (NULL, NULL);
  jsOptions_Init (&options);
  /* The window is ours (jetstream_publisher_publish); libnats's own limit
   * only stalls the main loop, so it is set out of the way. */
  options.PublishAsync.MaxPending = (int64_t) limits->max_pending + 64;
  options.PublishAsync.AckHandler = on_ack;
  options.PublishAsync.AckHandlerClosure = self;
  jsPubOptions_Init (&self->publish_options);
  self->publish_options.MaxWait = limits->ack_timeout_ms;
  status = natsConnection_JetStream (&self->js, connection, &options);
  if (status != NATS_OK)
    {
      g_autofree char *why = jetstream_describe_status (status);

      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED, "cannot use JetStream: %s", why);
      jetstream_publisher_free (self);
      return NULL;
    }
  return self;
}

jsCtx *
jetstream_publisher_get_js (JetstreamPublisher *self)
{
  return self->js;
}

/* Whether the server has been out of reach for publish_timeout_ms. */
static gboolean
gave_up_on_server (JetstreamPublisher *self)
{
  gint64 now = g_get_monotonic_time ();

  if (natsConnection_Status (self->connection) == NATS_CONN_STATUS_CONNECTED)
    {
      self->down_since_us = 0;
      return FALSE;
    }
  if (self->down_since_us == 0)
    self->down_since_us = now;
  return now - self->down_since_us > (gint64) self->limits.publish_timeout_ms * 1000;
}

void
jetstream_publisher_publish (JetstreamPublisher *self,
                             natsMsg            *message,
                             guint               n_events)
{
  natsMsg *key = message;
  natsStatus status;

  if (gave_up_on_server (self))
    {
      g_autofree char *why = g_strdup_printf ("the NATS server was out of reach for more than "
                                              "publish_timeout_ms (%u ms)", self->limits.publish_timeout_ms);

      g_mutex_lock (&self->lock);
      self->stats.published += n_events;
      count_lost (self, n_events, why);
      g_mutex_unlock (&self->lock);
      natsMsg_Destroy (message);
      return;
    }
  g_mutex_lock (&self->lock);
  /* Registered first: the ack may come before js_PublishMsgAsync returns. */
  g_hash_table_insert (self->pending, key, GUINT_TO_POINTER (now_ms (self) + self->limits.publish_timeout_ms));
  self->stats.published += n_events;
  self->stats.messages++;
  g_mutex_unlock (&self->lock);
  status = js_PublishMsgAsync (self->js, &message, &self->publish_options);
  if (status != NATS_OK)
    {
      g_autofree char *why = jetstream_describe_status (status);

      g_mutex_lock (&self->lock);
      count_lost (self, n_events, why);
      g_hash_table_remove (self->pending, key);
      g_mutex_unlock (&self->lock);
    }
  natsMsg_Destroy (message);
}

void
jetstream_publisher_count_lost (JetstreamPublisher *self,
                                guint               n_events,
                                const char         *why)
{
  g_mutex_lock (&self->lock);
  self->stats.published += n_events;
  count_lost (self, n_events, why);
  g_mutex_unlock (&self->lock);
}

void
jetstream_publisher_complete_when_room (JetstreamPublisher *self,
                                        ChimeCompletion    *completion)
{
  ChimeCompletion *late = NULL;

  g_mutex_lock (&self->lock);
  if (g_hash_table_size (self->pending) >= self->limits.max_pending)
    {
      /* A completion still held timed out in the runtime already. */
      late = self->held;
      self->held = completion;
      completion = NULL;
    }
  g_mutex_unlock (&self->lock);
  if (late != NULL)
    chime_completion_complete (late);
  if (completion != NULL)
    chime_completion_complete (completion);
}

void
jetstream_publisher_finish (JetstreamPublisher *self,
                            guint               timeout_ms)
{
  jsPubOptions options;
  natsMsgList left = { 0 };
  ChimeCompletion *held;

  gboolean published;

  jsPubOptions_Init (&options);
  options.MaxWait = timeout_ms;
  g_mutex_lock (&self->lock);
  published = self->stats.messages > 0;
  g_mutex_unlock (&self->lock);
  /* libnats 3.4 has no pending list before the first asynchronous
   * publish, and its calls on that list crash then. */
  if (!published)
    return;
  js_PublishAsyncComplete (self->js, &options);
  g_mutex_lock (&self->lock);
  self->closing = TRUE;
  g_mutex_unlock (&self->lock);
  if (js_PublishAsyncGetPendingList (&left, self->js) == NATS_OK)
    {
      g_autofree char *why = g_strdup_printf ("not acked within flush_timeout_ms (%u ms) at the end", timeout_ms);

      g_mutex_lock (&self->lock);
      for (int i = 0; i < left.Count; i++)
        {
          count_lost (self, jetstream_message_get_count (left.Msgs[i]), why);
          g_hash_table_remove (self->pending, left.Msgs[i]);
        }
      g_mutex_unlock (&self->lock);
      natsMsgList_Destroy (&left);
    }
  g_mutex_lock (&self->lock);
  held = g_steal_pointer (&self->held);
  g_mutex_unlock (&self->lock);
  if (held != NULL)
    chime_completion_complete (held);
}

void
jetstream_publisher_get_stats (JetstreamPublisher    *self,
                               JetstreamPublishStats *out_stats)
{
  g_mutex_lock (&self->lock);
  *out_stats = self->stats;
  g_mutex_unlock (&self->lock);
}

char *
jetstream_publisher_dup_last_failure (JetstreamPublisher *self)
{
  char *failure;

  g_mutex_lock (&self->lock);
  failure = g_strdup (self->last_failure);
  g_mutex_unlock (&self->lock);
  return failure;
}

void
jetstream_publisher_free (JetstreamPublisher *self)
{
  if (self == NULL)
    return;
  jsCtx_Destroy (self->js);
  g_hash_table_unref (self->pending);
  g_free (self->last_failure);
  g_mutex_clear (&self->lock);
  g_free (self);
}
