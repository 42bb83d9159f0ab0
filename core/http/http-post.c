/* chime_http_post(): the main-loop HTTP client, for plugins.
 *
 * The client (http-client.c) and its transfers belong to the thread that runs its main
 * context, so a request made from another thread (a sync handler on the
 * pool) is started there through g_main_context_invoke(), and so is a
 * cancellation. The response body is collected whole; the caller's GTask
 * reports it on the caller's thread-default context. */
#include "config.h"

#include <chime/http.h>

#include "http-client.h"

#define CONNECT_TIMEOUT_S 10.0
#define IDLE_TIMEOUT_S    30.0

typedef struct {
  GMainContext      *context;     /* where the transfer runs */
  char              *url;
  char             **headers;
  GBytes            *body;
  GTask             *task;        /* NULL once answered */
  ChimeHttpTransfer *transfer;    /* only touched on @context's thread */
  GByteArray        *response;
  gulong             cancel_id;
  gboolean           cancelled;   /* asked before the transfer started */
  gboolean           too_large;
} PostRequest;

/* What the last reference releases (the box itself is freed by GLib). */
static void
post_request_clear (PostRequest *request)
{
  g_main_context_unref (request->context);
  g_free (request->url);
  g_strfreev (request->headers);
  g_bytes_unref (request->body);
  g_clear_object (&request->task);
  g_byte_array_unref (request->response);
}

static PostRequest *
post_request_ref (PostRequest *request)
{
  return g_atomic_rc_box_acquire (request);
}

static void
post_request_unref (gpointer request)
{
  g_atomic_rc_box_release_full (request, (GDestroyNotify) post_request_clear);
}

static gboolean
on_data (ChimeHttpTransfer *transfer,
         const char        *data,
         gsize              length,
         gsize             *consumed,
         gpointer           user_data)
{
  PostRequest *request = user_data;

  *consumed = length;
  if (request->too_large)
    return TRUE;
  if (request->response->len + length > CHIME_HTTP_MAX_RESPONSE_SIZE)
    {
      /* Ends the transfer with CHIME_HTTP_ERROR_CANCELLED; on_done says why. */
      request->too_large = TRUE;
      chime_http_transfer_cancel (transfer);
      return TRUE;
    }
  g_byte_array_append (request->response, (const guint8 *) data, length);
  return TRUE;
}

static void
on_done (ChimeHttpTransfer *transfer,
         const GError      *error,
         gpointer           user_data)
{
  PostRequest *request = user_data;
  g_autoptr (GTask) task = g_steal_pointer (&request->task);
  guint status = chime_http_transfer_get_status (transfer);

  request->transfer = NULL;
  if (request->cancel_id != 0)
    g_cancellable_disconnect (g_task_get_cancellable (task), request->cancel_id);
  request->cancel_id = 0;
  if (request->too_large)
    g_task_return_new_error (task, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_FAILED,
                             "the response from %s is larger than %d bytes", request->url,
                             CHIME_HTTP_MAX_RESPONSE_SIZE);
  else if (error != NULL)
    g_task_return_error (task, g_error_copy (error));
  else
    {
      g_task_set_task_data (task, GUINT_TO_POINTER (status), NULL);
      g_task_return_pointer (task, g_byte_array_free_to_bytes (g_byte_array_ref (request->response)),
                             (GDestroyNotify) g_bytes_unref);
    }
  post_request_unref (request);   /* the transfer's reference */
}

static const ChimeHttpCallbacks post_callbacks = {
  .on_data = on_data,
  .on_done = on_done,
};

/* On the client's thread. */
static gboolean
start_transfer (gpointer data)
{
  PostRequest *request = data;
  gsize length = 0;
  const char *bytes = g_bytes_get_data (request->body, &length);
  ChimeHttpRequest http = {
    .url = request->url,
    .headers = (const char * const *) request->headers,
    .body = bytes,
    .body_length = length,
    .connect_timeout_s = CONNECT_TIMEOUT_S,
    .idle_timeout_s = IDLE_TIMEOUT_S,
  };

  if (request->cancelled)
    {
      g_autoptr (GTask) task = g_steal_pointer (&request->task);

      if (request->cancel_id != 0)
        g_cancellable_disconnect (g_task_get_cancellable (task), request->cancel_id);
      request->cancel_id = 0;
      g_task_return_new_error (task, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CANCELLED,
                               "the request to %s was cancelled", request->url);
      return G_SOURCE_REMOVE;
    }
  request->transfer = chime_http_transfer_start (request->context, &http, &post_callbacks,
                                                 post_request_ref (request));
  return G_SOURCE_REMOVE;
}

/* On the client's thread. */
static gboolean
cancel_transfer (gpointer data)
{
  PostRequest *request = data;

  request->cancelled = TRUE;
  if (request->transfer != NULL)
    chime_http_transfer_cancel (request->transfer);
  return G_SOURCE_REMOVE;
}

/* On whatever thread cancelled: hand over to the client's. */
static void
on_cancelled (GCancellable *cancellable,
              gpointer      data)
{
  PostRequest *request = data;

  g_main_context_invoke_full (request->context, G_PRIORITY_DEFAULT, cancel_transfer,
                              post_request_ref (request), post_request_unref);
}

void
chime_http_post (ChimeHandlerContext *context,
                 const char          *url,
                 const char * const  *headers,
                 GBytes              *body,
                 GCancellable        *cancellable,
                 GAsyncReadyCallback  callback,
                 gpointer             user_data)
{
  PostRequest *request;

  g_return_if_fail (context != NULL);
  g_return_if_fail (url != NULL);
  g_return_if_fail (body != NULL);

  request = g_atomic_rc_box_new0 (PostRequest);
  request->context = g_main_context_ref (chime_handler_context_get_main_context (context));
  request->url = g_strdup (url);
  request->headers = g_strdupv ((char **) headers);
  request->body = g_bytes_ref (body);
  request->response = g_byte_array_new ();
  request->task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (request->task, chime_http_post);
  if (cancellable != NULL)
    request->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled),
                                                request, NULL);
  g_main_context_invoke_full (request->context, G_PRIORITY_DEFAULT, start_transfer,
                              request, post_request_unref);
}

GBytes *
chime_http_post_finish (GAsyncResult *result,
                        guint        *status,
                        GError      **error)
{
  GBytes *body;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == chime_http_post, NULL);

  body = g_task_propagate_pointer (G_TASK (result), error);
  if (status != NULL)
    *status = body != NULL ? GPOINTER_TO_UINT (g_task_get_task_data (G_TASK (result))) : 0;
  return body;
}
