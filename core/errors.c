/* The error domains of the public API, in one place: a reader looking for
 * what a GError's domain means starts here, and the headers say which
 * codes each has (chime/config.h, chime/plugin.h, chime/http.h). */
#include "config.h"

#include <chime/config.h>
#include <chime/http.h>
#include <chime/plugin.h>

G_DEFINE_QUARK (chime-config-error-quark, chime_config_error)
G_DEFINE_QUARK (chime-handler-error-quark, chime_handler_error)
G_DEFINE_QUARK (chime-http-error-quark, chime_http_error)
