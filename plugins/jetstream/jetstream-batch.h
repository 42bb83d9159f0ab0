/* jetstream — the message being filled with events (jetstream-batch.c). */
#pragma once

#include <chime/plugin.h>
#include <nats/nats.h>

typedef struct _JetstreamBatch JetstreamBatch;

/* Messages go to PREFIX.ROOT_RUN_ID.EVENT; with @headers, the Chime-*
 * headers the events of a message share are added. */
JetstreamBatch *jetstream_batch_new       (const char     *prefix,
                                           gboolean        headers);
void            jetstream_batch_free      (JetstreamBatch *batch);
/* Adds @event to the batch. FALSE, adding nothing, when the batch has
 * events of another root run or another type: close it first. */
gboolean        jetstream_batch_add       (JetstreamBatch *batch,
                                           ChimeEvent     *event);
/* How many events it has, and the size of its body in bytes. */
guint           jetstream_batch_get_count (JetstreamBatch *batch);
gsize           jetstream_batch_get_size  (JetstreamBatch *batch);
/* The message of the batch's events (NULL when libnats has no memory),
 * and the batch is empty again. */
natsMsg        *jetstream_batch_close     (JetstreamBatch *batch);
