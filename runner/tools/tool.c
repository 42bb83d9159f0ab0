/* Reading `[tool NAME]`: what every tool has (description, parameters),
 * then what its kind needs. */
#include "config.h"

#include "tool.h"
#include "config-json.h"

#include <string.h>

static const char *const tool_keys[] = {
  "description", "parameters", "command", "timeout_ms", "env", "plugin", "plugin_tool", NULL
};

#define PARAMETERS_EXAMPLE \
  "{\"type\": \"object\", \"properties\": {\"text\": {\"type\": \"string\"}}, \"required\": [\"text\"]}"

void
chime_tools_accept_sections (ChimeConfig *config)
{
  chime_config_accept_section (config, "tool", TRUE);
}

/* The schema of a tool's arguments: the section's, else its kind's; a
 * tool without one takes an empty object, as LangChain's tools without
 * args_schema. */
static json_t *
read_parameters (ChimeConfig *config,
                 const char  *section,
                 json_t      *default_value)
{
  json_t *parameters = chime_config_read_json_value (config, section, "parameters", JSON_OBJECT,
                                                     PARAMETERS_EXAMPLE);
  json_t *type;

  if (parameters == NULL && default_value != NULL)
    return json_incref (default_value);
  if (parameters == NULL)
    return json_pack ("{s:s, s:{}}", "type", "object", "properties");
  type = json_object_get (parameters, "type");
  if (type != NULL && g_strcmp0 (json_string_value (type), "object") != 0)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "parameters");
      chime_config_add_problem (config, "invalid value for 'parameters'%s: a tool's arguments are "
                                "a JSON object, so its schema's \"type\" must be \"object\"; e.g. %s",
                                location, PARAMETERS_EXAMPLE);
    }
  return parameters;
}

ChimeTool *
chime_tool_new (ChimeConfig *config,
                const char  *name,
                const char  *referrer)
{
  g_autofree char *section = g_strdup_printf ("tool %s", name);
  g_autofree char *description = NULL;
  g_autoptr (json_t) parameters = NULL;
  GKeyFile *keys = chime_config_get_key_file (config);
  ChimeTool *tool;

  if (!g_key_file_has_group (chime_config_get_key_file (config), section))
    {
      chime_config_add_problem (config, "no [tool %s] section for %s: add one with 'description' "
                                "and 'command', or remove '%s' from the list", name, referrer, name);
      return NULL;
    }
  chime_config_check_keys (config, section, tool_keys);
  if (g_key_file_has_key (keys, section, "plugin", NULL) && g_key_file_has_key (keys, section, "command", NULL))
    {
      g_autofree char *location = chime_config_describe_location (config, section, NULL);
      chime_config_add_problem (config, "'command' and 'plugin' are both set%s; a tool is one or the "
                                "other", location);
      return NULL;
    }
  tool = g_key_file_has_key (keys, section, "plugin", NULL) ? chime_plugin_tool_new (config, section, name)
                                                            : chime_command_tool_new (config, section);
  description = chime_config_read_string (config, section, "description",
                                          tool != NULL ? tool->description : NULL);
  /* (A plugin that did not load has said why.) */
  if (description == NULL && (tool != NULL || !g_key_file_has_key (keys, section, "plugin", NULL)))
    {
      g_autofree char *location = chime_config_describe_location (config, section, NULL);
      chime_config_add_problem (config, "missing required key 'description'%s: what the tool does, "
                                "for the model to decide when to call it", location);
    }
  parameters = read_parameters (config, section, tool != NULL ? tool->parameters : NULL);
  if (tool == NULL || description == NULL)
    {
      g_clear_pointer (&tool, chime_tool_free);
      return NULL;
    }
  tool->name = g_strdup (name);
  g_free (tool->description);
  tool->description = g_steal_pointer (&description);
  g_clear_pointer (&tool->parameters, json_decref);
  tool->parameters = g_steal_pointer (&parameters);
  return tool;
}

void
chime_tool_free (ChimeTool *tool)
{
  if (tool == NULL)
    return;
  g_free (tool->name);
  g_free (tool->description);
  g_clear_pointer (&tool->parameters, json_decref);
  tool->ops->free (tool);
}

json_t *
chime_tool_describe (ChimeTool *tool)
{
  return json_pack ("{s:s, s:s, s:O}", "name", tool->name, "description", tool->description,
                    "parameters", tool->parameters);
}

void
chime_tools_check_unused (ChimeConfig       *config,
                          const char *const *used)
{
  g_auto (GStrv) sections = g_key_file_get_groups (chime_config_get_key_file (config), NULL);

  for (guint i = 0; sections[i] != NULL; i++)
    {
      const char *name = sections[i] + strlen ("tool");

      if (!g_str_has_prefix (sections[i], "tool") || !g_ascii_isspace (*name))
        continue;
      while (g_ascii_isspace (*name))
        name++;
      if (used == NULL || !g_strv_contains (used, name))
        chime_tool_free (chime_tool_new (config, name, "the file"));
    }
}

void
chime_tool_invoke (ChimeTool        *tool,
                   json_t           *args,
                   ChimeRun         *run,
                   GCancellable     *cancellable,
                   GMainContext     *context,
                   ChimeToolDoneFunc done,
                   gpointer          user_data)
{
  tool->ops->invoke (tool, args, run, cancellable, context, done, user_data);
}
