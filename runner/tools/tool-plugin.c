/* The plugin kind of tool: `plugin = SPEC` names a plugin (searched as
 * handler plugins are) whose descriptor declares the tool (ABI 2.2),
 * `plugin_tool` which of its tools (default: the section's NAME). Its
 * description and parameters are the descriptor's unless the section
 * sets them. */
#include "config.h"

#include "tool.h"

#include <chime/plugin-loader.h>

typedef struct {
  ChimeTool                  parent;
  const ChimeToolDescriptor *descriptor;   /* the plugin's, loaded for good */
} PluginTool;

static void
plugin_invoke (ChimeTool        *tool,
               json_t           *args,
               ChimeRun         *run,
               GCancellable     *cancellable,
               GMainContext     *context,
               ChimeToolDoneFunc done,
               gpointer          user_data)
{
  /* A plugin's call cannot be taken back: it ends when the tool says. */
  chime_tool_call_start (((PluginTool *) tool)->descriptor, args, run, context, done, user_data);
}

static void
plugin_free (ChimeTool *tool)
{
  g_free (tool);
}

static const ChimeToolOps plugin_ops = {
  .invoke = plugin_invoke,
  .free = plugin_free,
};

/* CHIME_PLUGIN_PATH, [runtime] plugin_path, then chime's own folders. */
static char **
search_path (ChimeConfig *config)
{
  g_auto (GStrv) dirs = chime_config_read_list (config, "runtime", "plugin_path", NULL);

  for (guint i = 0; dirs[i] != NULL; i++)
    {
      char *path = chime_config_resolve_path (config, dirs[i]);

      g_free (dirs[i]);
      dirs[i] = path;
    }
  return chime_plugin_get_search_path ((const char * const *) dirs);
}

static const ChimeToolDescriptor *
find_tool (const ChimePlugin *plugin,
           const char        *name)
{
  const ChimeToolDescriptor *tools = chime_plugin_get_tools (plugin);

  for (guint i = 0; tools != NULL && tools[i].name != NULL; i++)
    if (g_strcmp0 (tools[i].name, name) == 0)
      return &tools[i];
  return NULL;
}

static char *
tool_names (const ChimePlugin *plugin)
{
  const ChimeToolDescriptor *tools = chime_plugin_get_tools (plugin);
  GString *names = g_string_new (NULL);

  for (guint i = 0; tools != NULL && tools[i].name != NULL; i++)
    g_string_append_printf (names, "%s%s", i > 0 ? ", " : "", tools[i].name);
  return g_string_free (names, FALSE);
}

ChimeTool *
chime_plugin_tool_new (ChimeConfig *config,
                       const char  *section,
                       const char  *name)
{
  g_autofree char *spec = chime_config_read_string (config, section, "plugin", NULL);
  g_autofree char *wanted = chime_config_read_string (config, section, "plugin_tool", name);
  g_auto (GStrv) path = search_path (config);
  g_autoptr (GError) error = NULL;
  const ChimePlugin *plugin = chime_plugin_load (spec, (const char * const *) path, &error);
  const ChimeToolDescriptor *descriptor;
  PluginTool *tool;

  if (plugin == NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "plugin");

      chime_config_add_problem (config, "cannot load the tool's 'plugin'%s: %s", location, error->message);
      return NULL;
    }
  descriptor = find_tool (plugin, wanted);
  if (descriptor == NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "plugin_tool");
      g_autofree char *names = tool_names (plugin);

      chime_config_add_problem (config, "plugin %s has no tool '%s'%s; its tools: %s (set "
                                "plugin_tool to one)", chime_plugin_get_path (plugin), wanted,
                                location, names[0] != '\0' ? names : "none");
      return NULL;
    }
  tool = g_new0 (PluginTool, 1);
  tool->parent.ops = &plugin_ops;
  tool->descriptor = descriptor;
  tool->parent.description = g_strdup (descriptor->description);
  if (descriptor->parameters != NULL)
    tool->parent.parameters = json_loads (descriptor->parameters, 0, NULL);
  return &tool->parent;
}
