/* A descriptor without a single entry point. */
#include <chime/plugin.h>

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "no_entry",
);
