/* What libchime's HTTP functions forward to: the table of the module that
 * implements them (chime-http-curl, beside the plugins in LIBDIR/chime).
 *
 * libcurl brings its TLS stack and some forty shared libraries with it;
 * linked into libchime, every program paid for loading and relocating them
 * at start-up, whether it made a request or not. Now only the module links
 * libcurl, and libchime opens it at the first chime_http_* call
 * (http-backend.c). The module links no libchime: a program that links
 * libchime's objects statically (the tests, chime-plugin-host) exports
 * nothing it could bind to. */
#pragma once

#include <chime/http.h>

#include "http-client.h"

G_BEGIN_DECLS

/* The module's file name without its suffix, and the function it exports,
 * returning its ChimeHttpBackend. */
#define CHIME_HTTP_MODULE_NAME "chime-http-curl"
#define CHIME_HTTP_BACKEND_SYMBOL "chime_http_backend_curl"

/* One function for each function of <chime/http.h> that is not built on
 * the others (chime_http_post() is built on transfers), and the counters
 * of http-client.h. @size is sizeof (ChimeHttpBackend) as the module was
 * built: libchime refuses a module built for another table. */
typedef struct {
  gsize                size;
  ChimeHttpTransfer *(*transfer_start)         (GMainContext             *context,
                                                const ChimeHttpRequest   *request,
                                                const ChimeHttpCallbacks *callbacks,
                                                gpointer                  user_data);
  void               (*transfer_resume)        (ChimeHttpTransfer *transfer);
  void               (*transfer_cancel)        (ChimeHttpTransfer *transfer);
  guint              (*transfer_get_status)    (ChimeHttpTransfer *transfer);
  const char        *(*transfer_get_header)    (ChimeHttpTransfer *transfer,
                                                const char        *name);
  ChimeHttpClient   *(*client_get_for_context) (GMainContext *context);
  void               (*client_unref)           (ChimeHttpClient *client);
  void               (*get_stats)              (ChimeHttpStats *stats);
  void               (*reset_stats)            (void);
} ChimeHttpBackend;

typedef const ChimeHttpBackend *(*ChimeHttpBackendFunc) (void);

G_END_DECLS
