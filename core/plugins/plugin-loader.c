/* Plugin files: find, open with libltdl, validate the descriptor.
 *
 * libltdl is not thread-safe, so every lt_dl* call happens under one lock,
 * and lt_dlinit runs once per process. Validation follows the order the
 * best C plugin hosts use: open, find the symbol, check the ABI, check the
 * descriptor; each failure closes the module again and names the file. */
#include "config.h"

#include "plugin-loader.h"
#include "runtime-private.h"
#include "config/suggest.h"

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

/* Set once by a program before any runtime exists (the runner adds the
 * plugin folder next to its own executable). */
static char *extra_default_dir;

void
chime_plugin_set_program_dir (const char *dir)
{
  g_free (extra_default_dir);
  extra_default_dir = g_strdup (dir);
}

const char *
chime_plugin_default_dir (void)
{
  return CHIME_PLUGIN_DIR;
}

char **
chime_plugin_search_path (const char * const *configured)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  const char *env = g_getenv ("CHIME_PLUGIN_PATH");

  if (env != NULL && env[0] != '\0')
    {
      g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; parts[i] != NULL; i++)
        if (parts[i][0] != '\0')
          {
            g_autofree char *absolute = g_canonicalize_filename (parts[i], NULL);
            g_strv_builder_add (builder, absolute);
          }
    }
  for (; configured != NULL && *configured != NULL; configured++)
    g_strv_builder_add (builder, *configured);
  if (extra_default_dir != NULL && g_strcmp0 (extra_default_dir, chime_plugin_default_dir ()) != 0)
    g_strv_builder_add (builder, extra_default_dir);
  g_strv_builder_add (builder, chime_plugin_default_dir ());
  return g_strv_builder_end (builder);
}

/* The file to open for @name in @dir: a shared object, else a libtool
 * archive (which finds the real object in .libs/ of a build tree). */
static char *
find_in_dir (const char *dir,
             const char *name)
{
  static const char *const extensions[] = { ".so", ".la", "", NULL };

  for (guint i = 0; extensions[i] != NULL; i++)
    {
      g_autofree char *file = g_strconcat (name, extensions[i], NULL);
      g_autofree char *path = g_build_filename (dir, file, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static char *
strip_extension (const char *file)
{
  if (g_str_has_suffix (file, ".la"))
    return g_strndup (file, strlen (file) - 3);
  if (g_str_has_suffix (file, ".so"))
    return g_strndup (file, strlen (file) - 3);
  return NULL;
}

static int
compare_strings (const void *a,
                 const void *b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

char **
chime_plugin_list_names (const char * const *search_path)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (; search_path != NULL && *search_path != NULL; search_path++)
    {
      g_autoptr (GDir) dir = g_dir_open (*search_path, 0, NULL);
      const char *file;

      while (dir != NULL && (file = g_dir_read_name (dir)) != NULL)
        {
          char *name = strip_extension (file);
          if (name == NULL || g_hash_table_contains (seen, name))
            {
              g_free (name);
              continue;
            }
          g_hash_table_add (seen, name);
          g_ptr_array_add (names, name);
        }
    }
  g_ptr_array_add (names, NULL);
  {
    char **sorted = (char **) g_ptr_array_steal (names, NULL);
    qsort (sorted, g_strv_length (sorted), sizeof (char *), compare_strings);
    return sorted;
  }
}

static char *
locate (const char         *spec,
        const char * const *search_path,
        GError            **error)
{
  g_autofree char *dirs = NULL;
  g_autofree char *suffix = NULL;
  g_auto (GStrv) known = NULL;

  if (strchr (spec, '/') != NULL)
    {
      /* A path may leave out the extension, as a name in the search path. */
      g_autofree char *dir = g_path_get_dirname (spec);
      g_autofree char *base = g_path_get_basename (spec);
      char *path = find_in_dir (dir, base);

      if (path != NULL)
        return path;
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin file %s does not exist", spec);
      return NULL;
    }
  for (const char * const *dir = search_path; dir != NULL && *dir != NULL; dir++)
    {
      char *path = find_in_dir (*dir, spec);
      if (path != NULL)
        return path;
    }
  dirs = g_strjoinv (":", (char **) search_path);
  known = chime_plugin_list_names (search_path);
  suffix = chime_suggestion_suffix (spec, (const char * const *) known, "plugins");
  g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
               "plugin '%s' was not found in %s (set plugin_path in [runtime] or "
               "CHIME_PLUGIN_PATH)%s", spec, dirs, suffix);
  return NULL;
}

static gboolean
has_entry_point (const ChimePluginDescriptor *descriptor)
{
  /* Sync and async tables have the same layout: any non-NULL slot counts. */
  const gpointer *slots = (const gpointer *) &descriptor->sync;
  gsize n = sizeof (ChimeSyncEntryPoints) / sizeof (gpointer);

  for (gsize i = 0; i < n; i++)
    if (slots[i] != NULL)
      return TRUE;
  return FALSE;
}

static gboolean
validate_descriptor (const char                  *path,
                     const ChimePluginDescriptor *descriptor,
                     GError                     **error)
{
  if (descriptor->abi_major != CHIME_PLUGIN_ABI_MAJOR ||
      descriptor->abi_minor > CHIME_PLUGIN_ABI_MINOR)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s was built for plugin ABI %u.%u, but this chime provides "
                   "ABI %d.%d (it loads %d.0 to %d.%d); rebuild the plugin against this chime",
                   path, descriptor->abi_major, descriptor->abi_minor,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR,
                   CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);
      return FALSE;
    }
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
                   "CHIME_HANDLER_ASYNC", path, (int) descriptor->mode);
      return FALSE;
    }
  if (!has_entry_point (descriptor))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s has no entry point: set at least one of .%s.on_* or .%s.on_event",
                   path, descriptor->mode == CHIME_HANDLER_SYNC ? "sync" : "async",
                   descriptor->mode == CHIME_HANDLER_SYNC ? "sync" : "async");
      return FALSE;
    }
  return TRUE;
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
                   "(define it with CHIME_PLUGIN_DEFINE)", path, CHIME_PLUGIN_SYMBOL);
      lt_dlclose (handle);
      return NULL;
    }
  if (!validate_descriptor (path, descriptor, error) ||
      (keys = copy_keys (path, descriptor, error)) == NULL)
    {
      lt_dlclose (handle);
      return NULL;
    }
  plugin = g_new0 (ChimePlugin, 1);
  plugin->path = g_strdup (path);
  plugin->descriptor = descriptor;
  plugin->keys = keys;
  g_hash_table_insert (loaded, g_strdup (requested), plugin);
  return plugin;
}

const ChimePlugin *
chime_plugin_load (const char         *spec,
                   const char * const *search_path,
                   GError            **error)
{
  g_autofree char *found = locate (spec, search_path, error);
  g_autofree char *path = NULL;
  const ChimePlugin *plugin;

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
