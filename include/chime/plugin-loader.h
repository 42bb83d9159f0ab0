/* chime — finding and loading plugins, for hosts.
 *
 * The runtime loads the plugins its configuration names; a host that lists
 * or describes plugins (`chime plugins`) uses the same search and the same
 * checks. Plugins are searched in CHIME_PLUGIN_PATH, then in the folders a
 * configuration adds (`plugin_path` in [runtime]), then in the plugin
 * folder of the libchime that is loaded (LIBDIR/chime/plugins next to it,
 * so a moved installation finds its plugins), then in the folder chime was
 * configured to install them in. A plugin, once loaded, stays loaded for
 * the life of the process: code that may still run is never unloaded.
 * chime's own modules (HTTP, `chime consume`) and programs are found the
 * same way, beside the loaded libchime first (chime_module_find()).
 */
#pragma once

#include <glib.h>
#include <chime/macros.h>
#include <chime/plugin.h>

G_BEGIN_DECLS

typedef struct _ChimePlugin ChimePlugin;

/* The folders searched for plugins, in order, with @extra_dirs
 * (NULL-terminated, absolute; may be NULL) after CHIME_PLUGIN_PATH.
 * Newly allocated. */
CHIME_API char **chime_plugin_get_search_path (const char * const *extra_dirs);
/* The names of the plugins (file names without .so or .la) found in
 * @search_path, sorted, each once. Newly allocated. */
CHIME_API char **chime_plugin_list_names      (const char * const *search_path);
/* Finds @spec (a plugin name searched in @search_path, or a path with a
 * '/') and loads it, checking its descriptor. A file loaded before is
 * returned again. Errors (CHIME_CONFIG_ERROR_PLUGIN) name the file and say
 * why it will not load. */
CHIME_API const ChimePlugin *chime_plugin_load (const char         *spec,
                                                const char * const *search_path,
                                                GError            **error);

/* The file the plugin was loaded from. */
CHIME_API const char          *chime_plugin_get_path        (const ChimePlugin *plugin);
/* The plugin's name, from its descriptor. */
CHIME_API const char          *chime_plugin_get_name        (const ChimePlugin *plugin);
/* Its description, or NULL. */
CHIME_API const char          *chime_plugin_get_description (const ChimePlugin *plugin);
/* Its version, or NULL. */
CHIME_API const char          *chime_plugin_get_version     (const ChimePlugin *plugin);
/* Sync or async. */
CHIME_API ChimeHandlerMode     chime_plugin_get_mode        (const ChimePlugin *plugin);
/* Its ChimePluginFlags, as its descriptor declares them. */
CHIME_API ChimePluginFlags     chime_plugin_get_flags       (const ChimePlugin *plugin);
/* The keys it declares, read into this header's ChimeConfigKey layout,
 * ending with a NULL key. */
CHIME_API const ChimeConfigKey *chime_plugin_get_config_keys (const ChimePlugin *plugin);

/* The tools the plugin provides (ABI 2.2) in this header's layout,
 * ending with a NULL name; NULL when it provides none. */
CHIME_API const ChimeToolDescriptor *chime_plugin_get_tools (const ChimePlugin *plugin);

/* How a tool call ended: @output or @error, both taken. */
typedef void (*ChimeToolCallDoneFunc) (char     *output,
                                       GError   *error,
                                       gpointer  user_data);

/* Calls @tool with @args (a JSON object) as the tool run @run: a sync
 * tool on a worker thread, an async one from here. @done is called once
 * on @context, never inside this call. */
CHIME_API void chime_tool_call_start (const ChimeToolDescriptor *tool,
                                      json_t                    *args,
                                      ChimeRun                  *run,
                                      GMainContext              *context,
                                      ChimeToolCallDoneFunc      done,
                                      gpointer                   user_data);

/* Finds chime's own module or program @name (its file name in
 * LIBDIR/chime, such as "chime-consume.so" or "chime-plugin-host"): the
 * path in the environment variable @env_var when it is set and not empty
 * (as it is: opening it reports a wrong one), else LIBDIR/chime/@name
 * beside the libchime that is running (an installation moved elsewhere or
 * installed under DESTDIR), else the folder chime was configured to
 * install it in. Newly allocated; NULL when it is in neither folder, with
 * a G_IO_ERROR_NOT_FOUND error that names @name, the folders and
 * @env_var. */
CHIME_API char *chime_module_find (const char *name,
                                   const char *env_var,
                                   GError    **error);

/* "string", "integer", "boolean", "number", "list", "path" or "choice". */
CHIME_API const char *chime_config_type_to_string (ChimeConfigType type);

G_END_DECLS
