/* libchime's chime_http_* functions: they open the HTTP module at their
 * first call and forward to it (http-backend.h says why it is a module).
 *
 * Where the module is (chime_module_find()): CHIME_HTTP_MODULE (the build
 * tree's tests and benchmarks set it), else LIBDIR/chime/chime-http-curl.so
 * beside the libchime that is running (an installation moved elsewhere),
 * else where it was installed. It is opened once; if that fails, every transfer fails
 * with the reason (CHIME_HTTP_ERROR_INVALID: no retry can fix it), from
 * the main context, as any failed transfer does. */
#include "config.h"

#include <gmodule.h>

#include "http-backend.h"
#include <chime/plugin-loader.h>

#define MODULE_FILE CHIME_HTTP_MODULE_NAME "." G_MODULE_SUFFIX

static const ChimeHttpBackend *backend;
static char *backend_error;   /* why there is no backend */

static const ChimeHttpBackend *
open_backend (GError **error)
{
  g_autoptr (GError) not_found = NULL;
  g_autofree char *path = chime_module_find (MODULE_FILE, "CHIME_HTTP_MODULE", &not_found);
  GModule *module = path != NULL ? g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY)
                                 : NULL;
  ChimeHttpBackendFunc get_backend = NULL;
  const ChimeHttpBackend *table;

  if (module == NULL)
    {
      g_set_error (error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_INVALID,
                   "HTTP is not available: chime's HTTP module did not load (%s); install chime "
                   "completely, or set CHIME_HTTP_MODULE to the path of " MODULE_FILE,
                   path != NULL ? g_module_error () : not_found->message);
      return NULL;
    }
  if (!g_module_symbol (module, CHIME_HTTP_BACKEND_SYMBOL, (gpointer *) &get_backend) ||
      get_backend == NULL || (table = get_backend ()) == NULL || table->size != sizeof *table)
    {
      g_set_error (error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_INVALID,
                   "HTTP is not available: %s is not the HTTP module of this libchime (no "
                   CHIME_HTTP_BACKEND_SYMBOL " of its version); reinstall chime",
                   path);
      g_module_close (module);
      return NULL;
    }
  /* libcurl cannot be unloaded safely once initialised. */
  g_module_make_resident (module);
  return table;
}

static const ChimeHttpBackend *
get_backend (void)
{
  static gsize once;

  if (g_once_init_enter (&once))
    {
      g_autoptr (GError) error = NULL;

      backend = open_backend (&error);
      if (backend == NULL)
        backend_error = g_strdup (error->message);
      g_once_init_leave (&once, 1);
    }
  return backend;
}

/* ------------------------------------------------------------------
 * Transfers without a module: they only fail. Every transfer is one of
 * these exactly when there is no backend, so the functions below tell
 * them apart by that.
 * ---------------------------------------------------------------- */

typedef struct {
  const ChimeHttpCallbacks *callbacks;
  gpointer                  user_data;
  GError                   *error;
} FailedTransfer;

static gboolean
fail_transfer (gpointer data)
{
  FailedTransfer *failed = data;

  failed->callbacks->on_done ((ChimeHttpTransfer *) failed, failed->error, failed->user_data);
  g_error_free (failed->error);
  g_free (failed);
  return G_SOURCE_REMOVE;
}

static ChimeHttpTransfer *
failed_transfer_start (GMainContext             *context,
                       const ChimeHttpCallbacks *callbacks,
                       gpointer                  user_data)
{
  FailedTransfer *failed = g_new0 (FailedTransfer, 1);
  g_autoptr (GSource) source = g_idle_source_new ();

  failed->callbacks = callbacks;
  failed->user_data = user_data;
  failed->error = g_error_new_literal (CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_INVALID, backend_error);
  g_source_set_callback (source, fail_transfer, failed, NULL);
  g_source_set_name (source, "chime http unavailable");
  g_source_attach (source, context);
  return (ChimeHttpTransfer *) failed;
}

ChimeHttpTransfer *
chime_http_transfer_start (GMainContext             *context,
                           const ChimeHttpRequest   *request,
                           const ChimeHttpCallbacks *callbacks,
                           gpointer                  user_data)
{
  g_return_val_if_fail (request != NULL && request->url != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL && callbacks->on_data != NULL && callbacks->on_done != NULL,
                        NULL);

  if (get_backend () == NULL)
    return failed_transfer_start (context, callbacks, user_data);
  return backend->transfer_start (context, request, callbacks, user_data);
}

void
chime_http_transfer_resume (ChimeHttpTransfer *transfer)
{
  g_return_if_fail (transfer != NULL);

  if (get_backend () != NULL)
    backend->transfer_resume (transfer);
}

void
chime_http_transfer_cancel (ChimeHttpTransfer *transfer)
{
  FailedTransfer *failed = (FailedTransfer *) transfer;

  g_return_if_fail (transfer != NULL);

  if (get_backend () != NULL)
    {
      backend->transfer_cancel (transfer);
      return;
    }
  g_error_free (failed->error);
  failed->error = g_error_new_literal (CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CANCELLED,
                                       "the request was cancelled");
}

guint
chime_http_transfer_get_status (ChimeHttpTransfer *transfer)
{
  return get_backend () != NULL ? backend->transfer_get_status (transfer) : 0;
}

const char *
chime_http_transfer_get_header (ChimeHttpTransfer *transfer,
                                const char        *name)
{
  return get_backend () != NULL ? backend->transfer_get_header (transfer, name) : NULL;
}

ChimeHttpClient *
chime_http_client_get_for_context (GMainContext *context)
{
  return get_backend () != NULL ? backend->client_get_for_context (context) : NULL;
}

void
chime_http_client_unref (ChimeHttpClient *client)
{
  if (client != NULL && get_backend () != NULL)
    backend->client_unref (client);
}

void
chime_http_get_stats (ChimeHttpStats *stats)
{
  if (get_backend () != NULL)
    backend->get_stats (stats);
  else
    *stats = (ChimeHttpStats) { 0 };
}

void
chime_http_reset_stats (void)
{
  if (get_backend () != NULL)
    backend->reset_stats ();
}
