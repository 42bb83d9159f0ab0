/* The HTTP module's one export: the table libchime forwards its
 * chime_http_* functions to (http-backend.h). */
#include "config.h"

#include <gmodule.h>

#include "http-backend.h"
#include "http-client-private.h"

G_MODULE_EXPORT const ChimeHttpBackend *chime_http_backend_curl (void);

static const ChimeHttpBackend backend = {
  .size = sizeof (ChimeHttpBackend),
  .transfer_start = chime_http_curl_transfer_start,
  .transfer_resume = chime_http_curl_transfer_resume,
  .transfer_cancel = chime_http_curl_transfer_cancel,
  .transfer_get_status = chime_http_curl_transfer_get_status,
  .transfer_get_header = chime_http_curl_transfer_get_header,
  .client_get_for_context = chime_http_curl_client_get_for_context,
  .client_unref = chime_http_curl_client_unref,
  .get_stats = chime_http_curl_get_stats,
  .reset_stats = chime_http_curl_reset_stats,
};

const ChimeHttpBackend *
chime_http_backend_curl (void)
{
  return &backend;
}
