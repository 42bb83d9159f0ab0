/* jetstream — publishing with a bounded number of un-acked messages
 * (jetstream-publisher.c). */
#pragma once

#include <chime/plugin.h>
#include <nats/nats.h>

typedef struct _JetstreamPublisher JetstreamPublisher;

typedef struct {
  /* At most this many messages wait for their ack; an event that comes
   * while they do completes only when one of them is acked, so the
   * handler's queue fills and the runtime's on_full rule applies. */
  guint max_pending;
  /* One attempt's wait for an ack before it is sent again (same id). */
  guint ack_timeout_ms;
  /* From the first attempt, how long a message is tried before it is
   * counted lost. */
  guint publish_timeout_ms;
} JetstreamPublishLimits;

/* Counts of events, but @messages. */
typedef struct {
  guint64 published;
  guint64 acked;
  guint64 duplicates;
  guint64 retried;
  guint64 lost;
  guint64 messages;
} JetstreamPublishStats;

/* Publishes on @connection's JetStream (which the publisher does not own),
 * logging through @context. */
JetstreamPublisher *jetstream_publisher_new (natsConnection               *connection,
                                             ChimeHandlerContext          *context,
                                             const JetstreamPublishLimits *limits,
                                             GError                      **error);
/* The JetStream context it publishes on (for the stream's lookup). */
jsCtx   *jetstream_publisher_get_js  (JetstreamPublisher *publisher);
/* Publishes @message, which carries @n_events events (taking it). */
void     jetstream_publisher_publish (JetstreamPublisher *publisher,
                                      natsMsg            *message,
                                      guint               n_events);
/* Counts @n_events that never became a message as published and lost. */
void     jetstream_publisher_count_lost (JetstreamPublisher *publisher,
                                         guint               n_events,
                                         const char         *why);
/* Completes @completion when there is room for another un-acked message:
 * at once, or when an ack makes room. */
void     jetstream_publisher_complete_when_room (JetstreamPublisher *publisher,
                                                 ChimeCompletion    *completion);
/* Waits up to @timeout_ms for every publish to be acked; the ones still
 * waiting then are counted lost. */
void     jetstream_publisher_finish  (JetstreamPublisher *publisher,
                                      guint               timeout_ms);
void     jetstream_publisher_get_stats (JetstreamPublisher    *publisher,
                                        JetstreamPublishStats *out_stats);
/* The last reason a message was lost, or NULL; a new string. */
char    *jetstream_publisher_dup_last_failure (JetstreamPublisher *publisher);
void     jetstream_publisher_free    (JetstreamPublisher *publisher);
