/* Loading plugin files with libltdl. */
#pragma once

#include <glib.h>
#include <chime/plugin.h>

/* A loaded plugin file. Loaded plugins live as long as the process: code
 * that may still run (a timer a plugin added, a thread it started) is never
 * unloaded, so these are never freed. */
typedef struct {
  char                        *path;        /* the file that was opened */
  const ChimePluginDescriptor *descriptor;
  /* The plugin's config keys copied into this header's layout (read with
   * the plugin's own config_key_size), terminated by a NULL key. Use these,
   * never descriptor->config_keys. */
  ChimeConfigKey              *keys;
} ChimePlugin;

/* Finds @spec (a plugin name searched in @search_path, or a path containing
 * '/') and loads it, checking its descriptor. A file loaded before is
 * returned again. Errors name the file and the reason. */
const ChimePlugin *chime_plugin_load (const char         *spec,
                                      const char * const *search_path,
                                      GError            **error);

/* The plugin names (file names without extension) found in @search_path,
 * sorted, each once. */
char **chime_plugin_list_names (const char * const *search_path);

/* The directory shipped plugins are installed to. */
const char *chime_plugin_default_dir (void);

/* Adds a folder searched after the configured ones and before the default
 * one: the runner's "../lib/chime/plugins" next to its executable, so an
 * installed tree works wherever it was moved. Call before any runtime. */
void chime_plugin_set_program_dir (const char *dir);

/* CHIME_PLUGIN_PATH entries, then @configured (already resolved), then the
 * program's plugin folder, then the default directory. */
char **chime_plugin_search_path (const char * const *configured);
