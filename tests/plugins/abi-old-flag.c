/* A plugin that says it was built for ABI 2.0 but sets
 * CHIME_PLUGIN_WANTS_STREAM, a flag ABI 2.0 did not define: headers of
 * that minor could not have produced it, so the host must refuse the
 * descriptor rather than guess what the bit means. */
#include <chime/plugin.h>

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return TRUE;
}

G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = {
  .abi_major = CHIME_PLUGIN_ABI_MAJOR,
  .abi_minor = 0,
  .n_event_slots = CHIME_PLUGIN_N_EVENT_SLOTS,
  .name = "abi_old_flag",
  .mode = CHIME_HANDLER_SYNC,
  .flags = CHIME_PLUGIN_WANTS_STREAM,
  .on_event = on_event,
};
