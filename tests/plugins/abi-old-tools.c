/* A plugin that says it was built for ABI 2.1 but declares tools, which
 * ABI 2.2 added in what 2.1 kept as a reserved word: the host refuses it
 * rather than call what it cannot trust. */
#include <chime/plugin.h>

static char *
echo (gpointer user_data, ChimeToolCall *call, GError **error)
{
  return g_strdup ("echo");
}

static const ChimeToolDescriptor tools[] = {
  { .struct_size = CHIME_TOOL_DESCRIPTOR_SIZE, .name = "echo", .description = "echoes", .invoke = echo },
  { 0 },
};

G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = {
  .abi_major = CHIME_PLUGIN_ABI_MAJOR,
  .abi_minor = 1,
  .n_event_slots = CHIME_PLUGIN_N_EVENT_SLOTS,
  .name = "abi_old_tools",
  .mode = CHIME_HANDLER_SYNC,
  .tools = tools,
};
