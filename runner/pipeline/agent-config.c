/* Reading `[agent]`. */
#include "config.h"

#include "agent-config.h"

static const char *const agent_keys[] = { "tools", "max_iterations", "name", NULL };

/* LangChain's AgentExecutor default. */
#define DEFAULT_MAX_ITERATIONS 15

void
chime_agent_config_free (ChimeAgentConfig *agent)
{
  if (agent == NULL)
    return;
  g_free (agent->name);
  g_ptr_array_unref (agent->tools);
  json_decref (agent->tool_specs);
  g_free (agent);
}

static void
read_tools (ChimeConfig      *config,
            ChimeAgentConfig *agent,
            char            **names)
{
  g_autofree char *referrer = NULL;
  g_autofree char *location = chime_config_describe_location (config, "agent", "tools");

  referrer = g_strdup_printf ("'tools'%s", location);
  for (guint i = 0; names[i] != NULL; i++)
    {
      ChimeTool *tool;

      if (g_strv_contains ((const char * const *) names + i + 1, names[i]))
        {
          chime_config_add_problem (config, "tool '%s' is listed twice in 'tools'%s; list it once",
                                    names[i], location);
          continue;
        }
      tool = chime_tool_new (config, names[i], referrer);
      if (tool == NULL)
        continue;
      g_ptr_array_add (agent->tools, tool);
      json_array_append_new (agent->tool_specs, chime_tool_describe (tool));
    }
}

ChimeAgentConfig *
chime_agent_config_read (ChimeConfig *config)
{
  g_autoptr (ChimeAgentConfig) agent = NULL;
  g_auto (GStrv) names = NULL;

  if (!g_key_file_has_group (chime_config_get_key_file (config), "agent"))
    {
      chime_tools_check_unused (config, NULL);
      return NULL;
    }
  agent = g_new0 (ChimeAgentConfig, 1);
  agent->tools = g_ptr_array_new_with_free_func ((GDestroyNotify) chime_tool_free);
  agent->tool_specs = json_array ();
  chime_config_check_keys (config, "agent", agent_keys);
  agent->name = chime_config_read_string (config, "agent", "name", "AgentExecutor");
  chime_config_read_int (config, "agent", "max_iterations", DEFAULT_MAX_ITERATIONS, 1, 1000,
                         &agent->max_iterations);
  names = chime_config_read_list (config, "agent", "tools", NULL);
  if (names[0] == NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, "agent", NULL);
      chime_config_add_problem (config, "missing required key 'tools'%s: the [tool NAME] sections "
                                "the model may call, e.g. tools = word_count", location);
    }
  read_tools (config, agent, names);
  chime_tools_check_unused (config, (const char * const *) names);
  return g_steal_pointer (&agent);
}

ChimeTool *
chime_agent_config_find_tool (ChimeAgentConfig *agent,
                              const char       *name)
{
  for (guint i = 0; i < agent->tools->len; i++)
    {
      ChimeTool *tool = agent->tools->pdata[i];

      if (g_strcmp0 (tool->name, name) == 0)
        return tool;
    }
  return NULL;
}

char *
chime_agent_config_tool_names (ChimeAgentConfig *agent)
{
  GString *names = g_string_new (NULL);

  for (guint i = 0; i < agent->tools->len; i++)
    g_string_append_printf (names, "%s%s", i > 0 ? ", " : "",
                            ((ChimeTool *) agent->tools->pdata[i])->name);
  return g_string_free (names, FALSE);
}
