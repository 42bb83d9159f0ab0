/* Loading plugin files: open with libltdl, validate the descriptor, read
 * its keys and entry points into the host's layout. Finding the file is
 * plugin-search.c.
 *
 * libltdl is not thread-safe, so every lt_dl* call happens under one lock,
 * and lt_dlinit runs once per process. Validation follows the order the
 * best C plugin hosts use: open, find the symbol, check the ABI, check the
 * descriptor; each failure closes the module again and names the file. */
#include "config.h"

#include "plugin-loader.h"
#include <chime/config.h>

#include <errno.h>
#include <ltdl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_DLFCN_H
#include <dlfcn.h>
#endif

static GMutex loader_lock;
static GHashTable *loaded;   /* path -> ChimePlugin*, guarded by loader_lock */

static void
ensure_ltdl_locked (void)
{
  if (loaded != NULL)
    return;
  lt_dlinit ();
  loaded = g_hash_table_new (g_str_hash, g_str_equal);
}

G_STATIC_ASSERT (CHIME_PLUGIN_N_EVENT_SLOTS == CHIME_EVENT_N_TYPES);
G_STATIC_ASSERT (sizeof (ChimeSyncPluginDescriptor) == sizeof (ChimeAsyncPluginDescriptor));
G_STATIC_ASSERT (G_STRUCT_OFFSET (ChimeSyncPluginDescriptor, on_event) == sizeof (ChimePluginDescriptor));
G_STATIC_ASSERT (G_STRUCT_OFFSET (ChimeSyncPluginDescriptor, on_llm_start) ==
                 sizeof (ChimePluginDescriptor) + sizeof (gpointer));
G_STATIC_ASSERT (G_STRUCT_OFFSET (ChimeSyncPluginDescriptor, on_custom_event) ==
                 sizeof (ChimePluginDescriptor) + CHIME_EVENT_CUSTOM_EVENT * sizeof (gpointer) +
                 sizeof (gpointer));

/* The event slots a descriptor says it has. */
static guint
n_event_slots (const ChimePluginDescriptor *descriptor)
{
  return descriptor->n_event_slots != 0 ? descriptor->n_event_slots : CHIME_PLUGIN_N_EVENT_SLOTS;
}

/* The entry points after the head (sync and async descriptors share the
 * layout): the catch-all, then one per event. */
static const gpointer *
entry_slots (const ChimePluginDescriptor *descriptor)
{
  return (const gpointer *) (descriptor + 1);
}

/* What to tell the author: the chime to rebuild against. */
#define REBUILD_HINT "rebuild it against chime " CHIME_VERSION_STRING " (its headers and chime.pc)"

/* The ChimePluginFlags defined by ABI 2.@abi_minor: a plugin built with
 * those headers can set no other. */
static guint
defined_flags (guint32 abi_minor)
{
  guint flags = CHIME_PLUGIN_THREAD_SAFE;   /* 2.0 */

  if (abi_minor >= 1)
    flags |= CHIME_PLUGIN_WANTS_STREAM;
  return flags;
}

static gboolean
check_abi (const char                  *path,
           const ChimePluginDescriptor *descriptor,
           GError                     **error)
{
  if (descriptor->abi_major != CHIME_PLUGIN_ABI_MAJOR)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s was built for plugin ABI %u.%u, but this chime provides ABI %d.%d "
                   "(it loads plugins built for %d.0 to %d.%d); " REBUILD_HINT,
                   path, descriptor->abi_major, descriptor->abi_minor,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);
      return FALSE;
    }
  if (descriptor->abi_minor > CHIME_PLUGIN_ABI_MINOR)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s was built for plugin ABI %u.%u, newer than this chime's ABI %d.%d "
                   "(it loads plugins built for %d.0 to %d.%d); " REBUILD_HINT ", or use a newer chime",
                   path, descriptor->abi_major, descriptor->abi_minor,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);
      return FALSE;
    }
  if (descriptor->abi_minor < 2 && descriptor->tools != NULL)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s declares tools, which need plugin ABI %d.2, but was built for "
                   "%u.%u; " REBUILD_HINT, path, CHIME_PLUGIN_ABI_MAJOR, descriptor->abi_major,
                   descriptor->abi_minor);
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (descriptor->_chime_reserved); i++)
    if (descriptor->_chime_reserved[i] != NULL)
      {
        g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                     "plugin %s has non-zero reserved fields in its descriptor (word %u), which "
                     "ABI %u.%u keeps zero: it was not built with CHIME_SYNC_PLUGIN_DEFINE or "
                     "CHIME_ASYNC_PLUGIN_DEFINE from these headers; " REBUILD_HINT,
                     path, i, descriptor->abi_major, descriptor->abi_minor);
        return FALSE;
      }
  if ((guint) descriptor->flags & ~defined_flags (descriptor->abi_minor))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s sets flags 0x%x in its descriptor, but plugin ABI %u.%u, which it "
                   "was built for, defines only 0x%x; set only ChimePluginFlags of the headers "
                   "you build with (CHIME_PLUGIN_WANTS_STREAM needs ABI %d.1), or " REBUILD_HINT,
                   path, (guint) descriptor->flags, descriptor->abi_major, descriptor->abi_minor,
                   defined_flags (descriptor->abi_minor), CHIME_PLUGIN_ABI_MAJOR);
      return FALSE;
    }
  if (n_event_slots (descriptor) > CHIME_PLUGIN_N_EVENT_SLOTS)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s has %u event entry points, more than the %d of plugin ABI %d.%d; "
                   REBUILD_HINT, path, n_event_slots (descriptor), CHIME_PLUGIN_N_EVENT_SLOTS,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);
      return FALSE;
    }
  return TRUE;
}

static gboolean
has_entry_point (const ChimePluginDescriptor *descriptor)
{
  const gpointer *slots = entry_slots (descriptor);

  if (descriptor->tools != NULL && descriptor->tools[0].name != NULL)
    return TRUE;   /* a tool plugin */
  for (guint i = 0; i <= n_event_slots (descriptor); i++)
    if (slots[i] != NULL)
      return TRUE;
  return FALSE;
}

static gboolean
validate_descriptor (const char                  *path,
                     const ChimePluginDescriptor *descriptor,
                     GError                     **error)
{
  if (!check_abi (path, descriptor, error))
    return FALSE;
  if (descriptor->name == NULL || descriptor->name[0] == '\0')
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s has no name in its descriptor", path);
      return FALSE;
    }
  if (descriptor->mode != CHIME_HANDLER_SYNC && descriptor->mode != CHIME_HANDLER_ASYNC)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s declares mode %d; expected CHIME_HANDLER_SYNC or "
                   "CHIME_HANDLER_ASYNC (CHIME_SYNC_PLUGIN_DEFINE and CHIME_ASYNC_PLUGIN_DEFINE "
                   "set it)", path, (int) descriptor->mode);
      return FALSE;
    }
  if (!has_entry_point (descriptor))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s has no entry point: set at least one of .on_* or .on_event", path);
      return FALSE;
    }
  return TRUE;
}

/* The entry points in the host's layout: events beyond the plugin's slots
 * are not implemented. */
static void
copy_entry_points (ChimePlugin                 *plugin,
                   const ChimePluginDescriptor *descriptor)
{
  const gpointer *slots = entry_slots (descriptor);

  plugin->catch_all = slots[0];
  for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
    plugin->entries[type] = type < n_event_slots (descriptor) ? slots[1 + type] : NULL;
}

/* Copies the plugin's key array into this header's layout: the plugin
 * says how big its ChimeConfigKey was, and fields it did not have stay
 * zero. NULL with @error when a key is unusable. */
static ChimeConfigKey *
copy_keys (const char                  *path,
           const ChimePluginDescriptor *descriptor,
           GError                     **error)
{
  /* ABI 1.0's first layout ended with `flags`. */
  const gsize smallest = G_STRUCT_OFFSET (ChimeConfigKey, flags) + sizeof (ChimeConfigKeyFlags);
  gsize stride = descriptor->config_key_size != 0 ? descriptor->config_key_size : sizeof (ChimeConfigKey);
  g_autoptr (GArray) keys = g_array_new (TRUE, TRUE, sizeof (ChimeConfigKey));
  const guint8 *item = (const guint8 *) descriptor->config_keys;

  if (stride < smallest)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s declares config_key_size %u, smaller than any ChimeConfigKey",
                   path, descriptor->config_key_size);
      return NULL;
    }
  for (; item != NULL; item += stride)
    {
      ChimeConfigKey key = { 0 };

      memcpy (&key, item, MIN (stride, sizeof key));
      if (key.key == NULL)
        break;
      if (key.type < CHIME_CONFIG_STRING || key.type > CHIME_CONFIG_CHOICE ||
          (key.type == CHIME_CONFIG_CHOICE && (key.choices == NULL || key.choices[0] == NULL)))
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                       "plugin %s declares key '%s' with unknown type %d (or a choice without choices)",
                       path, key.key, (int) key.type);
          return NULL;
        }
      g_array_append_val (keys, key);
    }
  return (ChimeConfigKey *) g_array_free (g_steal_pointer (&keys), FALSE);
}

/* Why @path would not load, in better words than libltdl's, which says
 * "file not found" for an existing file that is not a shared object and
 * drops the dynamic linker's message about a missing dependency. */
static char *
explain_load_failure (const char *path,
                      const char *ltdl_message)
{
  static const guint8 elf_magic[4] = { 0x7f, 'E', 'L', 'F' };
  guint8 head[4] = { 0 };
  FILE *file;
  gsize n;

  if (g_str_has_suffix (path, ".la"))
    return g_strdup_printf ("%s (check its dependencies with ldd)", ltdl_message);
  file = fopen (path, "rb");
  if (file == NULL)
    return g_strdup (g_strerror (errno));
  n = fread (head, 1, sizeof head, file);
  fclose (file);
  if (n < sizeof head || memcmp (head, elf_magic, sizeof head) != 0)
    return g_strdup ("not a shared object (no ELF header); build plugins with "
                     "cc -shared -fPIC ... $(pkg-config --cflags --libs chime)");
#ifdef HAVE_DLFCN_H
  {
    /* Ask the dynamic linker itself: it names the missing library or
     * the undefined symbol. RTLD_LAZY: nothing of the plugin runs that
     * libltdl would not have run. */
    void *handle = dlopen (path, RTLD_LAZY | RTLD_LOCAL);

    if (handle == NULL)
      return g_strdup (dlerror ());
    dlclose (handle);
  }
#endif
  return g_strdup_printf ("%s (check its dependencies with ldd)", ltdl_message);
}

static const ChimePlugin *
open_locked (const char *requested,
             GError    **error)
{
  const char *path = requested;
  lt_dladvise advise;
  lt_dlhandle handle;
  const ChimePluginDescriptor *descriptor;
  ChimeConfigKey *keys = NULL;
  ChimeToolDescriptor *tools = NULL;
  ChimePlugin *plugin;

  lt_dladvise_init (&advise);
  lt_dladvise_local (&advise);
  /* Never unmapped: a timer or thread a plugin left behind may still run. */
  lt_dladvise_resident (&advise);
  handle = lt_dlopenadvise (path, advise);
  lt_dladvise_destroy (&advise);
  if (handle == NULL)
    {
      g_autofree char *reason = explain_load_failure (path, lt_dlerror ());

      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "cannot load plugin %s: %s", path, reason);
      return NULL;
    }
  /* Name the real shared object in messages, not its .la. */
  if (lt_dlgetinfo (handle) != NULL && lt_dlgetinfo (handle)->filename != NULL)
    path = lt_dlgetinfo (handle)->filename;
  descriptor = lt_dlsym (handle, CHIME_PLUGIN_SYMBOL);
  if (descriptor == NULL)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "%s is not a chime plugin: it does not export '%s' "
                   "(define it with CHIME_SYNC_PLUGIN_DEFINE or CHIME_ASYNC_PLUGIN_DEFINE)",
                   path, CHIME_PLUGIN_SYMBOL);
      lt_dlclose (handle);
      return NULL;
    }
  if (!validate_descriptor (path, descriptor, error) ||
      (keys = copy_keys (path, descriptor, error)) == NULL ||
      !chime_plugin_copy_tools (path, descriptor, &tools, error))
    {
      g_free (keys);
      lt_dlclose (handle);
      return NULL;
    }
  plugin = g_new0 (ChimePlugin, 1);
  plugin->path = g_strdup (path);
  plugin->descriptor = descriptor;
  plugin->keys = keys;
  plugin->tools = tools;
  copy_entry_points (plugin, descriptor);
  g_hash_table_insert (loaded, g_strdup (requested), plugin);
  return plugin;
}

const ChimePlugin *
chime_plugin_load (const char         *spec,
                   const char * const *search_path,
                   GError            **error)
{
  g_autofree char *found = NULL;
  g_autofree char *path = NULL;
  const ChimePlugin *plugin;

  g_return_val_if_fail (spec != NULL, NULL);
  found = chime_plugin_locate (spec, search_path, error);

  if (found == NULL)
    return NULL;
  path = g_canonicalize_filename (found, NULL);

  g_mutex_lock (&loader_lock);
  ensure_ltdl_locked ();
  plugin = g_hash_table_lookup (loaded, path);
  if (plugin == NULL)
    plugin = open_locked (path, error);
  g_mutex_unlock (&loader_lock);
  return plugin;
}

const char *
chime_plugin_get_path (const ChimePlugin *plugin)
{
  return plugin->path;
}

const char *
chime_plugin_get_name (const ChimePlugin *plugin)
{
  return plugin->descriptor->name;
}

const char *
chime_plugin_get_description (const ChimePlugin *plugin)
{
  return plugin->descriptor->description;
}

const char *
chime_plugin_get_version (const ChimePlugin *plugin)
{
  return plugin->descriptor->version;
}

ChimeHandlerMode
chime_plugin_get_mode (const ChimePlugin *plugin)
{
  return plugin->descriptor->mode;
}

ChimePluginFlags
chime_plugin_get_flags (const ChimePlugin *plugin)
{
  return plugin->descriptor->flags;
}

const ChimeConfigKey *
chime_plugin_get_config_keys (const ChimePlugin *plugin)
{
  return plugin->keys;
}
