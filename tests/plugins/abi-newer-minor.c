/* A plugin built against a newer minor of this ABI than the host has: it
 * may rely on what the host does not know, so the host must refuse it. */
#include <chime/plugin.h>

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return TRUE;
}

G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = {
  .abi_major = CHIME_PLUGIN_ABI_MAJOR,
  .abi_minor = CHIME_PLUGIN_ABI_MINOR + 1,
  .n_event_slots = CHIME_PLUGIN_N_EVENT_SLOTS,
  .name = "abi_newer_minor",
  .mode = CHIME_HANDLER_SYNC,
  .on_event = on_event,
};
