/* HTTP requests on a GLib main context, through libcurl's multi interface.
 *
 * Transfers run on the GMainContext they are started on, without a thread
 * per request: one curl multi handle per context watches every socket of
 * every transfer from one GSource, and curl's timer is that source's ready
 * time. The consumer of a transfer can pause it by refusing body bytes;
 * curl then stops reading the socket, so a slow consumer holds the server
 * back through TCP instead of growing a buffer. */
#pragma once

#include <glib.h>
#include <chime/http.h>

G_BEGIN_DECLS

/* The transfer API (ChimeHttpTransfer, ChimeHttpClient) is public, in
 * <chime/http.h>; what is here is for tests and diagnostics. */

/* Process-wide counters, for tests and diagnostics. */
typedef struct {
  guint64 started;        /* transfers started */
  guint64 finished;       /* on_done calls */
  guint64 pauses;         /* times a consumer paused a transfer */
  guint   active;         /* transfers running now */
  guint   max_active;     /* most transfers running at once */
  gsize   max_pending;    /* most body bytes kept for a paused consumer */
} ChimeHttpStats;

void chime_http_get_stats   (ChimeHttpStats *stats);
void chime_http_reset_stats (void);

G_END_DECLS
