/* What chime sends a handler's host process, gathered (host-outbox.c). */
#pragma once

#include "events/event-private.h"

#include <glib.h>

/* Gathered frames are written once this many bytes wait. */
#define CHIME_HOST_OUTBOX_FLUSH_BYTES (64 * 1024)

typedef struct _ChimeHostOutbox ChimeHostOutbox;

ChimeHostOutbox *chime_host_outbox_new   (void);
void             chime_host_outbox_free  (ChimeHostOutbox *outbox);

/* A new host: nothing gathered, no run known to it. */
void             chime_host_outbox_reset (ChimeHostOutbox *outbox);

/* Gathers event number @seq, after its run's info if the host does not
 * have it yet. FALSE when the event cannot be written (not JSON, or over
 * the frame limit). */
gboolean         chime_host_outbox_add   (ChimeHostOutbox *outbox,
                                          guint64          seq,
                                          ChimeEvent      *event);

/* How many bytes wait. */
gsize            chime_host_outbox_size  (ChimeHostOutbox *outbox);

/* Writes what was gathered to @fd in one go, and empties the outbox
 * either way; FALSE when the write failed (the host is gone). */
gboolean         chime_host_outbox_flush (ChimeHostOutbox *outbox,
                                          int              fd);
