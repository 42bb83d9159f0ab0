/* What a transfer (http-transfer.c) needs of its client (http-client.c).
 *
 * The dependency goes one way: a transfer queues itself on its client and
 * adds its easy handle to the client's multi handle through the functions
 * below; the client reaches the transfer back only through the two
 * functions of its ChimeHttpClientItemFuncs, at its dispatch. */
#pragma once

#include <glib.h>
#include <curl/curl.h>

#include "http-client.h"

G_BEGIN_DECLS

/* CHIME_HTTP_ERROR inside the module, which links no libchime (see
 * http-backend.h): the same quark, found by the name errors.c gives it. */
#define CHIME_HTTP_CURL_ERROR (g_quark_from_static_string ("chime-http-error-quark"))

/* The module's implementation of <chime/http.h> and of the counters of
 * http-client.h (http-transfer.c, http-client.c); libchime reaches them
 * through the module's ChimeHttpBackend (http-curl-module.c). */
ChimeHttpTransfer *chime_http_curl_transfer_start         (GMainContext             *context,
                                                          const ChimeHttpRequest   *request,
                                                          const ChimeHttpCallbacks *callbacks,
                                                          gpointer                  user_data);
void               chime_http_curl_transfer_resume        (ChimeHttpTransfer *transfer);
void               chime_http_curl_transfer_cancel        (ChimeHttpTransfer *transfer);
guint              chime_http_curl_transfer_get_status    (ChimeHttpTransfer *transfer);
const char        *chime_http_curl_transfer_get_header    (ChimeHttpTransfer *transfer,
                                                          const char        *name);
ChimeHttpClient   *chime_http_curl_client_get_for_context (GMainContext *context);
void               chime_http_curl_client_unref           (ChimeHttpClient *client);
void               chime_http_curl_get_stats              (ChimeHttpStats *stats);
void               chime_http_curl_reset_stats            (void);

typedef struct _ChimeHttpClientItem ChimeHttpClientItem;

/* What the client's dispatch hands back to a transfer. Both are called
 * outside any curl callback, so they may use the multi interface. */
typedef struct {
  /* Carries out the operations queued on @item (which has left the
   * client's queue already). */
  void (*process)  (ChimeHttpClientItem *item);
  /* curl is done with @item's easy handle, with @result. */
  void (*finished) (ChimeHttpClientItem *item,
                    CURLcode             result);
} ChimeHttpClientItemFuncs;

/* A transfer as its client sees it; the transfer embeds one, and sets its
 * easy handle's CURLOPT_PRIVATE to it. */
struct _ChimeHttpClientItem {
  const ChimeHttpClientItemFuncs *funcs;
  GList                           link;   /* in the client's queue; data is the item */
};

GMainContext *chime_http_client_get_context   (ChimeHttpClient     *client);
/* Puts @item at the end of the queue the next dispatch processes, and
 * makes that dispatch come at once. @item must not be queued already. */
void          chime_http_client_queue         (ChimeHttpClient     *client,
                                               ChimeHttpClientItem *item);
/* Takes a queued @item out of the queue. */
void          chime_http_client_unqueue       (ChimeHttpClient     *client,
                                               ChimeHttpClientItem *item);
CURLMcode     chime_http_client_add_handle    (ChimeHttpClient     *client,
                                               CURL                *easy);
void          chime_http_client_remove_handle (ChimeHttpClient     *client,
                                               CURL                *easy);

/* The GError for curl's @code at the end of a transfer (NULL for
 * CURLE_OK), with the message of its CURLOPT_ERRORBUFFER when it has one;
 * @status is the HTTP status received, 0 before any response. */
GError       *chime_http_error_from_curl      (CURLcode             code,
                                               const char          *error_buffer,
                                               guint                status);

/* The process-wide counters of http-client.h, kept by the transfers. */
void          chime_http_count_start          (void);
void          chime_http_count_finish         (void);
void          chime_http_count_pause          (gsize pending);

G_END_DECLS
