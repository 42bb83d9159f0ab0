/* Plugins as the host holds them once loaded (plugin-loader.c) and found
 * (plugin-search.c); the public side is <chime/plugin-loader.h>. */
#pragma once

#include <glib.h>
#include <chime/plugin.h>
#include <chime/plugin-loader.h>

/* A loaded plugin file. Loaded plugins live as long as the process: code
 * that may still run (a timer a plugin added, a thread it started) is never
 * unloaded, so these are never freed. */
struct _ChimePlugin {
  char                        *path;        /* the file that was opened */
  /* The descriptor's head; never read past it (the layout after it is the
   * plugin's minor's), use the copies below. */
  const ChimePluginDescriptor *descriptor;
  /* The plugin's config keys copied into this header's layout (read with
   * the plugin's own config_key_size), terminated by a NULL key. */
  ChimeConfigKey              *keys;
  /* The entry points, sync or async as descriptor->mode says: the
   * catch-all, and one per event (NULL: not implemented, including every
   * event newer than the plugin). */
  gpointer                     catch_all;
  gpointer                     entries[CHIME_EVENT_N_TYPES];
  /* Its tools in this header's layout, ending with a NULL name; NULL for
   * none (plugin-tools.c). */
  ChimeToolDescriptor         *tools;
};

/* Checks the descriptor's tools and copies them into this header's
 * layout (*@out NULL when there are none). FALSE with @error naming the
 * file and the tool. */
gboolean chime_plugin_copy_tools (const char                  *path,
                                  const ChimePluginDescriptor *descriptor,
                                  ChimeToolDescriptor        **out,
                                  GError                     **error);

/* The folder of the libchime this code was loaded from (LIBDIR), or NULL
 * when that cannot be told. Plugins and the plugin host are found from it,
 * so that an installation moved elsewhere (or under DESTDIR) works. */
const char *chime_library_dir (void);

/* The file @spec names: a path (the extension may be left out) or a plugin
 * name searched in @search_path. NULL with an error that lists what was
 * searched and suggests a close name. Newly allocated. */
char *chime_plugin_locate (const char         *spec,
                           const char * const *search_path,
                           GError            **error);
