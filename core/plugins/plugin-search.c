/* Finding plugin files: the search path, listing the plugins in it, and
 * finding the file a `plugin =` value names. Loading what is found is
 * plugin-loader.c. */
/* dladdr() */
#define _GNU_SOURCE
#include "config.h"

#include "plugin-loader.h"
#include <chime/config.h>
#include "config/config-private.h"
#include "config/suggest.h"

#include <stdlib.h>
#include <string.h>
#ifdef HAVE_DLFCN_H
#include <dlfcn.h>
#endif

const char *
chime_library_dir (void)
{
  static char *dir;
  static gsize once;

  if (g_once_init_enter (&once))
    {
#ifdef HAVE_DLFCN_H
      Dl_info info;

      if (dladdr ((void *) chime_library_dir, &info) != 0 && info.dli_fname != NULL)
        {
          g_autofree char *library = g_canonicalize_filename (info.dli_fname, NULL);

          dir = g_path_get_dirname (library);
        }
#endif
      g_once_init_leave (&once, 1);
    }
  return dir;
}

/* LIBDIR/chime/plugins next to the libchime this code was loaded from, so
 * that an installation moved elsewhere (or installed with DESTDIR) finds
 * its plugins; NULL when that cannot be told or the folder is missing. */
static const char *
library_plugin_dir (void)
{
  static char *dir;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      g_autofree char *candidate = chime_library_dir () != NULL
                                     ? g_build_filename (chime_library_dir (), "chime", "plugins", NULL)
                                     : NULL;

      if (candidate != NULL && g_file_test (candidate, G_FILE_TEST_IS_DIR))
        dir = g_steal_pointer (&candidate);
      g_once_init_leave (&once, 1);
    }
  return dir;
}

char **
chime_plugin_get_search_path (const char * const *extra_dirs)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  const char *env = g_getenv ("CHIME_PLUGIN_PATH");
  const char *beside = library_plugin_dir ();

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
  for (; extra_dirs != NULL && *extra_dirs != NULL; extra_dirs++)
    g_strv_builder_add (builder, *extra_dirs);
  /* A user's own plugins, installed without root where the XDG base
   * directory spec puts data: $XDG_DATA_HOME/chime/plugins, by default
   * ~/.local/share/chime/plugins. */
  {
    g_autofree char *user_dir = g_build_filename (g_get_user_data_dir (), "chime", "plugins", NULL);

    g_strv_builder_add (builder, user_dir);
  }
  if (beside != NULL && g_strcmp0 (beside, CHIME_PLUGIN_DIR) != 0)
    g_strv_builder_add (builder, beside);
  g_strv_builder_add (builder, CHIME_PLUGIN_DIR);
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

char *
chime_plugin_locate (const char         *spec,
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
      const char *type;

      if (path != NULL)
        return path;
      type = chime_file_describe_type (spec);
      if (type != NULL)
        g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                     "plugin file %s is %s, not a shared object (.so) or libtool archive (.la)",
                     spec, type);
      else
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

