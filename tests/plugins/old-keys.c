/* A plugin compiled against an older, smaller ChimeConfigKey (the first
 * layout, without `choices`): the host must read its keys with the
 * plugin's own stride. instance_new checks that the values arrived. */
#include <chime/plugin.h>

typedef struct {
  const char         *key;
  ChimeConfigType     type;
  const char         *default_value;
  const char         *description;
  ChimeConfigKeyFlags flags;
} OldConfigKey;

static const OldConfigKey old_keys[] = {
  { "greeting", CHIME_CONFIG_STRING, "hi", "what to say" },
  { "times", CHIME_CONFIG_INT, "1", "how often", CHIME_CONFIG_KEY_REQUIRED },
  { "loud", CHIME_CONFIG_BOOL, "false", "whether to shout" },
  { NULL }
};

static gpointer
instance_new (ChimeHandlerContext *context, GError **error)
{
  if (!g_str_equal (chime_handler_context_get_string (context, "greeting"), "hello") ||
      chime_handler_context_get_int (context, "times") != 3 ||
      !chime_handler_context_get_bool (context, "loud"))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "keys read wrongly: greeting=%s times=%" G_GINT64_FORMAT,
                   chime_handler_context_get_string (context, "greeting"),
                   chime_handler_context_get_int (context, "times"));
      return NULL;
    }
  return g_new0 (int, 1);
}

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return TRUE;
}

G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = {
  .abi_major = CHIME_PLUGIN_ABI_MAJOR,
  .abi_minor = CHIME_PLUGIN_ABI_MINOR,
  .config_key_size = sizeof (OldConfigKey),
  .n_event_slots = CHIME_PLUGIN_N_EVENT_SLOTS,
  .name = "old_keys",
  .mode = CHIME_HANDLER_SYNC,
  .config_keys = (const ChimeConfigKey *) old_keys,
  .instance_new = instance_new,
  .instance_free = g_free,
  .on_event = on_event,
};
