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

/* CHIME_HTTP_ERROR and ChimeHttpError are public, for plugins. */

typedef struct _ChimeHttpTransfer ChimeHttpTransfer;

typedef struct {
  const char        *url;
  /* "Name: value" lines, NULL-terminated; may be NULL. */
  const char *const *headers;
  /* The POST body (copied). */
  const char        *body;
  gsize              body_length;
  /* Longest wait for the connection (name resolution included). */
  gdouble            connect_timeout_s;
  /* Longest wait for the next byte, headers or body, while the consumer
   * is not pausing the transfer; 0 for none. Like the SDKs' read timeout,
   * it is not a limit on the whole transfer. */
  gdouble            idle_timeout_s;
} ChimeHttpRequest;

/* Callbacks never run inside chime_http_transfer_start(), resume() or
 * cancel(); they must not free anything the transfer still uses. */
typedef struct {
  /* The final response's status line and headers have arrived; headers
   * can be read with chime_http_transfer_get_header() from now on. */
  void     (*on_response) (ChimeHttpTransfer *transfer,
                           guint              status,
                           gpointer           user_data);
  /* Body bytes. Set *@consumed to how many were used and return TRUE to
   * go on (all of them must have been used), or FALSE to pause: nothing
   * more, neither data nor on_done, comes until chime_http_transfer_resume(),
   * which first offers the unused bytes again. */
  gboolean (*on_data)     (ChimeHttpTransfer *transfer,
                           const char        *data,
                           gsize              length,
                           gsize             *consumed,
                           gpointer           user_data);
  /* The transfer is over (@error NULL: the whole body arrived). Called
   * exactly once, also after a cancel; the transfer is freed when it
   * returns. */
  void     (*on_done)     (ChimeHttpTransfer *transfer,
                           const GError      *error,
                           gpointer           user_data);
} ChimeHttpCallbacks;

/* Starts a POST on @context (NULL: the global default context). The
 * returned transfer stays valid until on_done returns. */
ChimeHttpTransfer *chime_http_transfer_start  (GMainContext             *context,
                                               const ChimeHttpRequest   *request,
                                               const ChimeHttpCallbacks *callbacks,
                                               gpointer                  user_data);
/* Undoes a pause asked for by on_data; does nothing otherwise. */
void               chime_http_transfer_resume (ChimeHttpTransfer *transfer);
/* Stops the transfer soon; on_done follows with CHIME_HTTP_ERROR_CANCELLED
 * (paused or not). */
void               chime_http_transfer_cancel (ChimeHttpTransfer *transfer);
/* The HTTP status of the final response, 0 before on_response. */
guint              chime_http_transfer_get_status (ChimeHttpTransfer *transfer);
/* The last value of response header @name (case-insensitive), or NULL.
 * Valid until the next call or the end of on_done. */
const char        *chime_http_transfer_get_header (ChimeHttpTransfer *transfer,
                                                   const char        *name);

/* Keeps the multi handle of @context, and with it its connection cache,
 * alive between transfers: a model that streams many times holds one. */
typedef struct _ChimeHttpClient ChimeHttpClient;

ChimeHttpClient   *chime_http_client_get_for_context (GMainContext    *context);
void               chime_http_client_unref           (ChimeHttpClient *client);

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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeHttpClient, chime_http_client_unref)

G_END_DECLS
