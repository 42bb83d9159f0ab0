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
 */
#pragma once

#include <gio/gio.h>
#include <chime/plugin.h>

G_BEGIN_DECLS

/* Errors of chime_http_post_finish(), in the CHIME_HTTP_ERROR domain.
 * A response with any status, 4xx and 5xx included, is not an error. */
#define CHIME_HTTP_ERROR (chime_http_error_quark ())
GQuark chime_http_error_quark (void);

typedef enum {
  /* Name resolution or the connection failed before a response. */
  CHIME_HTTP_ERROR_CONNECT,
  /* No connection within the connect timeout. */
  CHIME_HTTP_ERROR_CONNECT_TIMEOUT,
  /* Nothing was received for the idle timeout. */
  CHIME_HTTP_ERROR_IDLE_TIMEOUT,
  /* A request that no retry can fix: bad URL, unsupported scheme, TLS
   * certificate refused. */
  CHIME_HTTP_ERROR_INVALID,
  /* Any other transport failure (connection reset, truncated body), or a
   * response body larger than CHIME_HTTP_MAX_RESPONSE_SIZE. */
  CHIME_HTTP_ERROR_FAILED,
  /* The request was cancelled. */
  CHIME_HTTP_ERROR_CANCELLED,
} ChimeHttpError;

/* The largest response body chime_http_post() keeps. */
#define CHIME_HTTP_MAX_RESPONSE_SIZE (8 * 1024 * 1024)

/* POSTs @body to @url on @context's main context (see
 * chime_handler_context_get_main_context()); @headers are "Name: value"
 * lines, NULL-terminated, or NULL. Callable from any thread. The request
 * gives up after 10 s without a connection or 30 s without a byte.
 * @callback runs on the thread-default main context of the caller; for an
 * async handler that is the handler's main loop. */
void    chime_http_post        (ChimeHandlerContext *context,
                                const char          *url,
                                const char * const  *headers,
                                GBytes              *body,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);
/* The response body (possibly empty) and its HTTP status, or NULL with
 * @error when no complete response arrived. */
GBytes *chime_http_post_finish (GAsyncResult        *result,
                                guint               *status,
                                GError             **error);

G_END_DECLS
