/* chime — HTTP for plugins: POST on the handler's main loop.
 *
 * An async handler that exports events (a webhook, a tracing collector)
 * needs HTTP without a thread per request and without blocking the loop.
 * chime already has that for its model providers: libcurl's multi
 * interface driven by the GLib main loop. This is the same client, for
 * plugins:
 *
 *   static void
 *   on_posted (GObject *source, GAsyncResult *result, gpointer data)
 *   {
 *     ChimeCompletion *completion = data;
 *     GError *error = NULL;
 *     guint status;
 *     g_autoptr (GBytes) body = chime_http_post_finish (result, &status, &error);
 *
 *     if (body == NULL)
 *       chime_completion_fail (completion, error);
 *     else if (status >= 300)
 *       chime_completion_fail (completion, g_error_new (CHIME_HANDLER_ERROR,
 *                                CHIME_HANDLER_ERROR_FAILED, "collector said %u", status));
 *     else
 *       chime_completion_complete (completion);
 *   }
 *
 *   static void
 *   export_end (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
 *   {
 *     Exporter *self = instance;
 *     g_autoptr (json_t) json = chime_event_to_json (event);
 *     g_autofree char *text = json_dumps (json, JSON_COMPACT);
 *     g_autoptr (GBytes) body = g_bytes_new (text, strlen (text));
 *     const char *headers[] = { "Content-Type: application/json", NULL };
 *
 *     chime_http_post (self->context, self->url, headers, body, NULL, on_posted, completion);
 *   }
 *
 * Completing the event only when the request is over is what makes
 * chime_runtime_flush() and shutdown wait for it: nothing is lost.
 *
 * For a response read as it arrives (a streaming API), with back-pressure,
 * start a ChimeHttpTransfer instead: its consumer pauses it by refusing
 * bytes, and curl then stops reading the socket, so a slow consumer holds
 * the server back through TCP instead of growing a buffer. chime's model
 * providers stream this way.
 */
#pragma once

#include <gio/gio.h>
#include <chime/macros.h>
#include <chime/plugin.h>

G_BEGIN_DECLS

/**
 * CHIME_HTTP_ERROR:
 *
 * The error domain of HTTP requests (#ChimeHttpError). A response with any
 * status, 4xx and 5xx included, is not an error.
 */
#define CHIME_HTTP_ERROR (chime_http_error_quark ())
/* The quark of CHIME_HTTP_ERROR. */
CHIME_API GQuark chime_http_error_quark (void);

/**
 * ChimeHttpError:
 * @CHIME_HTTP_ERROR_CONNECT: name resolution or the connection failed
 *   before a response.
 * @CHIME_HTTP_ERROR_CONNECT_TIMEOUT: no connection within the connect
 *   timeout.
 * @CHIME_HTTP_ERROR_IDLE_TIMEOUT: nothing was received for the idle timeout.
 * @CHIME_HTTP_ERROR_INVALID: a request that no retry can fix: bad URL,
 *   unsupported scheme, TLS certificate refused, or chime's HTTP module
 *   (libcurl, loaded at the first request) could not be loaded.
 * @CHIME_HTTP_ERROR_FAILED: any other transport failure (connection reset,
 *   truncated body), response headers larger than
 *   CHIME_HTTP_MAX_HEADER_SIZE, or a response body larger than
 *   CHIME_HTTP_MAX_RESPONSE_SIZE (chime_http_post() only).
 * @CHIME_HTTP_ERROR_CANCELLED: the request was cancelled.
 */
typedef enum {
  CHIME_HTTP_ERROR_CONNECT,
  CHIME_HTTP_ERROR_CONNECT_TIMEOUT,
  CHIME_HTTP_ERROR_IDLE_TIMEOUT,
  CHIME_HTTP_ERROR_INVALID,
  CHIME_HTTP_ERROR_FAILED,
  CHIME_HTTP_ERROR_CANCELLED,
} ChimeHttpError;

/* The largest response body chime_http_post() keeps. */
#define CHIME_HTTP_MAX_RESPONSE_SIZE (8 * 1024 * 1024)
/* The most response headers any transfer takes, status line and line
 * ends included; a response with more fails the transfer. */
#define CHIME_HTTP_MAX_HEADER_SIZE (64 * 1024)

/* POSTs @body to @url on @context's main context (see
 * chime_handler_context_get_main_context()); @headers are "Name: value"
 * lines, NULL-terminated, or NULL. Callable from any thread. The request
 * gives up after 10 s without a connection or 30 s without a byte.
 * @callback runs on the thread-default main context of the caller; for an
 * async handler that is the handler's main loop. */
CHIME_API void    chime_http_post        (ChimeHandlerContext *context,
                                          const char          *url,
                                          const char * const  *headers,
                                          GBytes              *body,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
/* The response body (possibly empty) and its HTTP status, or NULL with
 * @error when no complete response arrived. */
CHIME_API GBytes *chime_http_post_finish (GAsyncResult        *result,
                                          guint               *status,
                                          GError             **error);

/* ---------------------------------------------------------------------
 * Streaming transfers: a POST whose response body is consumed as it
 * arrives, on the thread that runs a GMainContext, with no thread per
 * request (libcurl's multi interface driven by that context).
 * ------------------------------------------------------------------- */

typedef struct _ChimeHttpTransfer ChimeHttpTransfer;

/**
 * ChimeHttpRequest: what to send. Fill it with designated initializers;
 * fields of later versions take the reserved space, and zero there keeps
 * today's behaviour.
 * @url: the URL to POST to.
 * @headers: "Name: value" lines, NULL-terminated; may be NULL.
 * @body: the POST body (copied), @body_length bytes of it.
 * @connect_timeout_s: the longest wait for the connection, name resolution
 *   included (0: 10 s).
 * @idle_timeout_s: the longest wait for the next byte, headers or body,
 *   while the consumer is not pausing the transfer; 0 for none. Like the
 *   SDKs' read timeout, it is not a limit on the whole transfer.
 */
typedef struct {
  const char         *url;
  const char * const *headers;
  const char         *body;
  gsize               body_length;
  gdouble             connect_timeout_s;
  gdouble             idle_timeout_s;
  /*< private >*/
  gpointer            _chime_reserved[4];
} ChimeHttpRequest;

/**
 * ChimeHttpCallbacks: what the consumer of a transfer is told. Callbacks
 * never run inside chime_http_transfer_start(), _resume() or _cancel(), and
 * must not free what the transfer still uses.
 * @on_response: the final response's status line and headers arrived;
 *   chime_http_transfer_get_header() works from now on. May be NULL.
 * @on_data: body bytes. Set *@consumed to how many were used and return
 *   TRUE to go on (all must have been used), or FALSE to pause: nothing
 *   more, neither data nor on_done, comes until chime_http_transfer_resume(),
 *   which first offers the unused bytes again.
 * @on_done: the transfer is over (@error NULL: the whole body arrived).
 *   Called exactly once, also after a cancel; the transfer is freed when it
 *   returns.
 */
typedef struct {
  void     (*on_response) (ChimeHttpTransfer *transfer,
                           guint              status,
                           gpointer           user_data);
  gboolean (*on_data)     (ChimeHttpTransfer *transfer,
                           const char        *data,
                           gsize              length,
                           gsize             *consumed,
                           gpointer           user_data);
  void     (*on_done)     (ChimeHttpTransfer *transfer,
                           const GError      *error,
                           gpointer           user_data);
  /*< private >*/
  gpointer _chime_reserved[4];
} ChimeHttpCallbacks;

/* Starts a POST on @context (NULL: the global default context); call it on
 * the thread that runs @context. The transfer stays valid until on_done
 * returns. */
CHIME_API ChimeHttpTransfer *chime_http_transfer_start      (GMainContext             *context,
                                                             const ChimeHttpRequest   *request,
                                                             const ChimeHttpCallbacks *callbacks,
                                                             gpointer                  user_data);
/* Undoes a pause asked for by on_data; does nothing otherwise. */
CHIME_API void               chime_http_transfer_resume     (ChimeHttpTransfer *transfer);
/* Stops the transfer soon; on_done follows with CHIME_HTTP_ERROR_CANCELLED
 * (paused or not). */
CHIME_API void               chime_http_transfer_cancel     (ChimeHttpTransfer *transfer);
/* The HTTP status of the final response, 0 before on_response. */
CHIME_API guint              chime_http_transfer_get_status (ChimeHttpTransfer *transfer);
/* The last value of response header @name (case-insensitive), or NULL.
 * Valid until the next call or the end of on_done. */
CHIME_API const char        *chime_http_transfer_get_header (ChimeHttpTransfer *transfer,
                                                             const char        *name);

typedef struct _ChimeHttpClient ChimeHttpClient;

/* Keeps the HTTP client of @context, and with it its connection cache,
 * alive between transfers: a model that streams many times holds one.
 * Returns a reference, or NULL when chime's HTTP module cannot be loaded
 * (transfers then fail with CHIME_HTTP_ERROR_INVALID, saying why). */
CHIME_API ChimeHttpClient *chime_http_client_get_for_context (GMainContext    *context);
/* Drops a reference (NULL is ignored). */
CHIME_API void             chime_http_client_unref           (ChimeHttpClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeHttpClient, chime_http_client_unref)

G_END_DECLS
