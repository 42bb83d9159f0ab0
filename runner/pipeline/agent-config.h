/* `[agent]`: a pipeline that calls tools, as LangChain's AgentExecutor. */
#pragma once

#include <chime/chime.h>
#include <jansson.h>

#include "tools/tool.h"

typedef struct {
  char      *name;            /* the executor run's name */
  GPtrArray *tools;           /* ChimeTool *, in the order of `tools` */
  json_t    *tool_specs;      /* what the model is offered */
  gint64     max_iterations;  /* model turns that may call tools */
} ChimeAgentConfig;

/* Reads [agent] and the [tool NAME] sections it names, and checks every
 * other [tool NAME]. NULL when the file has no [agent] (or after
 * recording problems). */
ChimeAgentConfig *chime_agent_config_read (ChimeConfig *config);
void              chime_agent_config_free (ChimeAgentConfig *agent);
/* The tool named @name, or NULL. */
ChimeTool        *chime_agent_config_find_tool (ChimeAgentConfig *agent,
                                                const char       *name);
/* "a, b" for messages. Newly allocated. */
char             *chime_agent_config_tool_names (ChimeAgentConfig *agent);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeAgentConfig, chime_agent_config_free)
