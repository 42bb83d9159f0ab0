/* What a handler's host process needs to start the same handler
 * (host-init.c): built by chime, read by chime-plugin-host. */
#pragma once

#include <chime/config.h>
#include "plugins/plugin-loader.h"

/* The [handler NAME] section @section of @config as the host will read
 * it: every key as written, the plugin as the file chime loaded. */
json_t      *chime_host_init_new       (ChimeConfig       *config,
                                        const char        *section,
                                        const char        *name,
                                        const ChimePlugin *plugin);

/* The host's side: a configuration holding only that section, with
 * isolation = none (the host runs the plugin itself). */
ChimeConfig *chime_host_init_to_config (json_t   *init,
                                        GError  **error);
