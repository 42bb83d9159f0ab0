/* A descriptor without a single entry point. */
#include <chime/plugin.h>

CHIME_PLUGIN_DEFINE (
  .name = "no_entry",
  .mode = CHIME_HANDLER_SYNC,
);
