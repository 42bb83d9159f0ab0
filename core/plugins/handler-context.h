/* The per-instance view a plugin gets of its configuration and its host:
 * typed values of its declared keys, its names, logging. */
#pragma once

#include <chime/plugin.h>
#include "config/config-private.h"
#include "plugin-loader.h"

struct _ChimeHandlerContext {
  char         *name;          /* [handler NAME] */
  char         *plugin_name;
  char         *config_file;   /* may be NULL */
  GMainContext *main_context;  /* set when the runtime is built */
  GHashTable   *values;        /* key -> ChimeConfigValue* */
  /* The handler this context belongs to (set by chime_handler_new), where
   * chime_handler_context_report_error() counts a failure; NULL for a
   * context no handler owns. */
  struct _ChimeHandler *handler;
};

/* Reads and type-checks the keys @descriptor declares from @section of
 * @config, recording bad values and missing required keys as its problems.
 * Always returns a context (values that failed keep their defaults). */
ChimeHandlerContext *chime_handler_context_new  (const char        *name,
                                                 const ChimePlugin *plugin,
                                                 ChimeConfig       *config,
                                                 const char        *section);
void                 chime_handler_context_free (ChimeHandlerContext *context);

/* The declared key names of @descriptor, NULL-terminated (the strings
 * belong to the descriptor). */
const char **chime_plugin_declared_keys (const ChimePlugin *plugin);
