/* chime plugins: the plugins chime can find, with their keys. */
#include "config.h"

#include <chime/chime.h>

#include "cli.h"

static void
describe_plugin (const char         *name,
                 const char * const *search_path)
{
  g_autoptr (GError) error = NULL;
  const ChimePlugin *plugin = chime_plugin_load (name, search_path, &error);
  const char *description;

  if (plugin == NULL)
    {
      g_print ("%s\n    cannot load: %s\n", name, error->message);
      return;
    }
  description = chime_plugin_get_description (plugin);
  g_print ("%s (%s)%s%s\n", chime_plugin_get_name (plugin),
           chime_plugin_get_mode (plugin) == CHIME_HANDLER_SYNC ? "sync" : "async",
           description != NULL ? " — " : "", description != NULL ? description : "");
  g_print ("    file: %s\n", chime_plugin_get_path (plugin));
  for (const ChimeConfigKey *key = chime_plugin_get_config_keys (plugin); key->key != NULL; key++)
    {
      g_autofree char *choices = key->type == CHIME_CONFIG_CHOICE
                                   ? g_strjoinv ("|", (char **) key->choices) : NULL;
      g_print ("    %s (%s%s%s%s): %s\n", key->key,
               choices != NULL ? choices : chime_config_type_to_string (key->type),
               key->flags & CHIME_CONFIG_KEY_REQUIRED ? ", required" : "",
               key->default_value != NULL ? ", default " : "",
               key->default_value != NULL ? key->default_value : "",
               key->description != NULL ? key->description : "");
    }
  for (const ChimeToolDescriptor *tool = chime_plugin_get_tools (plugin); tool != NULL && tool->name != NULL; tool++)
    g_print ("    tool %s (%s): %s\n", tool->name, tool->invoke != NULL ? "sync" : "async",
             tool->description != NULL ? tool->description : "");
}

int
cli_command_plugins (int    argc,
                     char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- list the plugins chime can find");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) search_path = NULL;
  g_auto (GStrv) names = NULL;

  g_option_context_set_description (context,
    "Searches CHIME_PLUGIN_PATH, then $XDG_DATA_HOME/chime/plugins (~/.local/share/chime/plugins),\n"
    "then the plugin folder next to the libchime in use\n"
    "(LIBDIR/chime/plugins), then the installed plugin folder. A configuration's\n"
    "plugin_path comes after CHIME_PLUGIN_PATH and before the other two.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return cli_usage_error (context, "%s", error->message);
  if (argc > 1)
    return cli_usage_error (context, "plugins takes no arguments, got '%s'", argv[1]);
  search_path = chime_plugin_get_search_path (NULL);
  names = chime_plugin_list_names ((const char * const *) search_path);
  g_print ("Plugin search path:\n");
  for (guint i = 0; search_path[i] != NULL; i++)
    g_print ("  %s%s\n", search_path[i],
             g_file_test (search_path[i], G_FILE_TEST_IS_DIR) ? "" : " (missing)");
  g_print ("\n");
  if (names[0] == NULL)
    g_print ("No plugins found.\n");
  for (guint i = 0; names[i] != NULL; i++)
    describe_plugin (names[i], (const char * const *) search_path);
  return CLI_EXIT_OK;
}
