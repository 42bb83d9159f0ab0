/* Tools: a `[tool NAME]` section, and running one on the main loop.
 *
 * A tool has a name, a description and a JSON Schema object for its
 * arguments (what a model is offered), and a kind that runs it: a command
 * (tool-command.c) or a plugin's tool (tool-plugin.c). Running one never blocks the main loop: the
 * kind reports through a ChimeToolDoneFunc on the context it was given. */
#pragma once

#include <gio/gio.h>
#include <jansson.h>

#include <chime/chime.h>

typedef struct _ChimeTool ChimeTool;

/* How a run of a tool ended: @output (the tool's text) or @error, both
 * taken by the callee. Called exactly once, never inside invoke(). */
typedef void (*ChimeToolDoneFunc) (char     *output,
                                   GError   *error,
                                   gpointer  user_data);

typedef struct {
  /* Runs @tool with @args (a JSON object); @run is the tool's run (for
   * events the tool itself emits). Cancelling ends it soon through
   * @done with an error. */
  void (*invoke) (ChimeTool        *tool,
                  json_t           *args,
                  ChimeRun         *run,
                  GCancellable     *cancellable,
                  GMainContext     *context,
                  ChimeToolDoneFunc done,
                  gpointer          user_data);
  void (*free)   (ChimeTool *tool);
} ChimeToolOps;

struct _ChimeTool {
  const ChimeToolOps *ops;
  char               *name;         /* the NAME of [tool NAME] */
  char               *description;
  json_t             *parameters;   /* a JSON Schema object */
};

/* Declares [tool NAME] as the runner's. */
void       chime_tools_accept_sections (ChimeConfig *config);

/* Reads `[tool NAME]`. NULL when it is missing or unusable (problems
 * recorded; @referrer, e.g. "'tools' in [agent] of agent.ini (line 3)",
 * says who named a missing one). */
ChimeTool *chime_tool_new    (ChimeConfig *config,
                              const char  *name,
                              const char  *referrer);
void       chime_tool_free   (ChimeTool *tool);

/* What a model is offered: {"name", "description", "parameters"}. New
 * reference. */
json_t    *chime_tool_describe (ChimeTool *tool);

/* Reads every [tool NAME] of @config not in @used, so that a mistake in
 * a tool no agent uses today is still reported. */
void       chime_tools_check_unused (ChimeConfig       *config,
                                     const char *const *used);

void       chime_tool_invoke (ChimeTool        *tool,
                              json_t           *args,
                              ChimeRun         *run,
                              GCancellable     *cancellable,
                              GMainContext     *context,
                              ChimeToolDoneFunc done,
                              gpointer          user_data);

/* tool-command.c: the `command` kind. Reads the section's command keys
 * into a tool of that kind; NULL after recording a problem. */
ChimeTool *chime_command_tool_new (ChimeConfig *config,
                                   const char  *section);

/* tool-plugin.c: the `plugin` kind (a tool a plugin declares, ABI 2.2);
 * its description and parameters are the descriptor's. */
ChimeTool *chime_plugin_tool_new (ChimeConfig *config,
                                  const char  *section,
                                  const char  *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeTool, chime_tool_free)
