/* A plugin whose instance refuses to start. */
#include <chime/plugin.h>

static gpointer
instance_new (ChimeHandlerContext *context, GError **error)
{
  g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
               "cannot reach the collector at %s",
               chime_handler_context_get_string (context, "endpoint"));
  return NULL;
}

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return TRUE;
}

static const ChimeConfigKey keys[] = {
  { "endpoint", CHIME_CONFIG_STRING, "http://127.0.0.1:9", "where to send events" },
  { NULL }
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "failing_init",
  .config_keys = keys,
  .instance_new = instance_new,
  .on_event = on_event,
);
