/* A plugin built for a future ABI major: the host must refuse it. */
#include <chime/plugin.h>

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return TRUE;
}

G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = {
  .abi_major = 99,
  .abi_minor = 0,
  .name = "bad_abi",
  .mode = CHIME_HANDLER_SYNC,
  .on_event = on_event,
};
