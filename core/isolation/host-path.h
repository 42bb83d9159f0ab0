/* Where chime-plugin-host is (host-path.c). */
#pragma once

#include <glib.h>

/* CHIME_PLUGIN_HOST, or LIBDIR/chime/chime-plugin-host beside the loaded
 * libchime; NULL with @error set when there is none. */
char *chime_plugin_host_path (GError **error);
