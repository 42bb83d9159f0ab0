/* A plugin as chime 0.1 built it (plugin ABI 1.0): the first two fields
 * are the ABI version, as in every ABI; what follows is 1.0's layout (a
 * union of sync and async tables after the head). The host must refuse it
 * by its version alone, without reading the rest. */
#include <glib.h>
#include <gmodule.h>

typedef struct {
  guint32     abi_major;
  guint32     abi_minor;
  guint32     config_key_size;
  guint32     reserved_flags;
  const char *name;
  const char *description;
  const char *version;
  int         mode;
  int         flags;
  gpointer    config_keys;
  gpointer    instance_new;
  gpointer    instance_free;
  gpointer    entry_points[20];
  gpointer    reserved[8];
} AbiOneDescriptor;

static gboolean
on_event (gpointer instance, gpointer event, GError **error)
{
  return TRUE;
}

G_MODULE_EXPORT const AbiOneDescriptor chime_plugin_descriptor = {
  .abi_major = 1,
  .abi_minor = 0,
  .name = "abi_1",
  .mode = 1,
  .entry_points = { [19] = on_event },
};
