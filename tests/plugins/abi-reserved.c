/* A descriptor with a non-zero reserved word (what a header from a broken
 * or foreign build would leave there): the host must refuse it rather than
 * guess what it means. */
#include <chime/plugin.h>

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return TRUE;
}

static int something;

G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = {
  .abi_major = CHIME_PLUGIN_ABI_MAJOR,
  .abi_minor = CHIME_PLUGIN_ABI_MINOR,
  .name = "abi_reserved",
  .mode = CHIME_HANDLER_SYNC,
  ._chime_reserved = { [3] = &something },
  .on_event = on_event,
};
