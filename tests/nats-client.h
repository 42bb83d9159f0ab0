/* What the jetstream tests ask the server themselves, through libnats
 * (nats-client.c): how many messages a stream holds, and messages no
 * chime would publish. */
#pragma once

#include <glib.h>

/* The number of messages @stream of the server at @url holds; fails the
 * test when it cannot be read. */
guint64 nats_stream_message_count (const char *url,
                                   const char *stream);

/* Publishes @body on @subject to JetStream at @url, with the header
 * @header set to @value when @header is not NULL, and waits for its ack;
 * the message's stream sequence. Fails the test when it is not stored. */
guint64 nats_publish_raw          (const char *url,
                                   const char *subject,
                                   const char *header,
                                   const char *value,
                                   const char *body);
