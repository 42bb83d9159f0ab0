/* A plugin built when the ABI had fewer events: its descriptor ends after
 * the on_text slot (17 event slots, not 19). The host must treat on_retry
 * and on_custom_event as not implemented (the catch-all gets them) and
 * never read past the slots the plugin says it has: two poisoned entry
 * points sit right where the newer slots would be, and being called
 * through one of them fails the event.
 *
 * Each call appends "SLOT EVENT" to the file of the `path` key. */
#include <chime/plugin.h>
#include <stdio.h>

#define OLD_EVENT_SLOTS 17

typedef struct {
  CHIME_PLUGIN_DESCRIPTOR_HEAD
  ChimeSyncFunc on_event;
  ChimeSyncFunc slots[OLD_EVENT_SLOTS];
  /* Not part of the descriptor: what an over-reading host would find. */
  ChimeSyncFunc poison[2];
} OlderDescriptor;

static gpointer
instance_new (ChimeHandlerContext *context, GError **error)
{
  return g_strdup (chime_handler_context_get_string (context, "path"));
}

static gboolean
record (const char *path, const char *slot, ChimeEvent *event, GError **error)
{
  FILE *file = fopen (path, "a");

  if (file == NULL)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED, "cannot open %s", path);
      return FALSE;
    }
  fprintf (file, "%s %s\n", slot, chime_event_type_to_string (chime_event_get_event_type (event)));
  fclose (file);
  return TRUE;
}

static gboolean
on_text (gpointer instance, ChimeEvent *event, GError **error)
{
  return record (instance, "on_text", event, error);
}

static gboolean
on_event (gpointer instance, ChimeEvent *event, GError **error)
{
  return record (instance, "on_event", event, error);
}

static gboolean
poisoned (gpointer instance, ChimeEvent *event, GError **error)
{
  record (instance, "poison", event, NULL);
  g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
               "the host read an entry point past the plugin's slots");
  return FALSE;
}

static const ChimeConfigKey keys[] = {
  { "path", CHIME_CONFIG_PATH, NULL, "where to record the calls", CHIME_CONFIG_KEY_REQUIRED },
  { NULL }
};

G_MODULE_EXPORT const OlderDescriptor chime_plugin_descriptor = {
  .abi_major = CHIME_PLUGIN_ABI_MAJOR,
  .abi_minor = 0,
  .config_key_size = sizeof (ChimeConfigKey),
  .n_event_slots = OLD_EVENT_SLOTS,
  .mode = CHIME_HANDLER_SYNC,
  .name = "abi_fewer_slots",
  .config_keys = keys,
  .instance_new = instance_new,
  .instance_free = g_free,
  .on_event = on_event,
  .slots = { [CHIME_EVENT_TEXT] = on_text },
  .poison = { poisoned, poisoned },
};
