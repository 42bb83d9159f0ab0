/* Reading `[runtime]` and `[handler NAME]` sections into settings, with
 * every problem in the file reported at once. */
#pragma once

#include <chime/runtime.h>
#include "plugins/handler.h"
#include "config/config-private.h"
#include "config/problems.h"

/* The ring packs the handlers of an event into 56 bits. */
#define CHIME_MAX_HANDLERS 56

typedef struct {
  char        **plugin_path;   /* resolved search path, CHIME_PLUGIN_PATH first */
  guint         threads;
  ChimeDelivery delivery;
  guint         queue_limit;
  ChimeOnFull   on_full;
  guint         loop_watchdog_ms;
  gboolean      isolate;         /* isolation = process for every handler */
} ChimeRuntimeSettings;

/* A handler section read and its plugin loaded, ready to instantiate. */
typedef struct {
  ChimeHandlerSettings settings;
  const ChimePlugin   *plugin;    /* NULL when it failed to load */
  ChimeHandlerContext *context;   /* NULL when the plugin failed to load */
} ChimeHandlerSpec;

/* Section names chime understands; a name outside these is an error. */
gboolean chime_config_is_handler_section (const char  *section,
                                          const char **out_name);

void     chime_runtime_settings_read  (ChimeConfig          *config,
                                       ChimeRuntimeSettings *out);
void     chime_runtime_settings_clear (ChimeRuntimeSettings *settings);

/* Checks section names, then reads every `[handler NAME]` in file order
 * and loads its plugin. Returns an array of ChimeHandlerSpec*. */
GPtrArray *chime_handler_specs_read   (ChimeConfig                *config,
                                       const ChimeRuntimeSettings *runtime);
void       chime_handler_spec_free    (ChimeHandlerSpec *spec);

/* The keys every handler section accepts. */
extern const char *const chime_common_handler_keys[];
