/* stdout — LangChain's StdOutCallbackHandler.
 *
 * Prints what LangChain's verbose mode prints: a banner when a chain starts
 * and when it finishes, the texts of on_text, the "log" of agent actions
 * and finishes, and tool outputs. Every chain it receives gets a banner;
 * which chains reach it is the runner's business (inheritance), as in
 * LangChain.
 *
 *   [handler verbose]
 *   plugin = stdout
 *   color = auto        # auto | always | never: bold banners, coloured agent logs
 *
 * With colour, agent logs are green and each tool's output has the
 * colour of that tool, as LangChain's AgentExecutor asks for them: its
 * tools get blue, yellow and pink in turn (green and red excluded), here
 * in the order the tools first answer.
 */
#include <chime/plugin.h>

#include <string.h>

#include "../printing.h"

#define BOLD  "\033[1m"
#define RESET "\033[0m"

typedef struct {
  gboolean    color;        /* wrap the banners in ANSI bold */
  gboolean    broken;       /* stdout failed: said once, nothing more written */
  GHashTable *tool_colors;  /* tool name -> its index in tool_colors + 1 */
} StdoutHandler;

/* LangChain's _TEXT_COLOR_MAPPING codes: green for the agent, then the
 * tools' colours. */
#define GREEN "32;1"
static const char *const tool_colors[] = { "36;1" /* blue */, "33;1" /* yellow */, "38;5;200" /* pink */ };

static const ChimeConfigKey stdout_keys[] = {
  { "color", CHIME_CONFIG_CHOICE, "auto",
    "bold banners: auto (when stdout is a terminal), always or never", 0, printing_color_choices },
  { NULL }
};

static gpointer
stdout_handler_new (ChimeHandlerContext *context,
                    GError             **error)
{
  g_autofree StdoutHandler *self = g_new0 (StdoutHandler, 1);

  self->color = printing_wants_color (context);
  self->tool_colors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return g_steal_pointer (&self);
}

static void
stdout_handler_free (gpointer instance)
{
  StdoutHandler *self = instance;

  g_hash_table_unref (self->tool_colors);
  g_free (self);
}

/* LangChain's get_colored_text, when colour is on. Newly allocated. */
static char *
colored (StdoutHandler *self,
         const char    *text,
         const char    *code)
{
  if (!self->color)
    return g_strdup (text);
  return g_strdup_printf ("\033[%sm\033[1;3m%s\033[0m", code, text);
}

static const char *
tool_color (StdoutHandler *self,
            const char    *tool)
{
  guint index = GPOINTER_TO_UINT (g_hash_table_lookup (self->tool_colors, tool != NULL ? tool : ""));

  if (index == 0)
    {
      index = g_hash_table_size (self->tool_colors) % G_N_ELEMENTS (tool_colors) + 1;
      g_hash_table_insert (self->tool_colors, g_strdup (tool != NULL ? tool : ""), GUINT_TO_POINTER (index));
    }
  return tool_colors[index - 1];
}

/* In one write and flushed, as LangChain's print_text shows every piece
 * at once. */
static gboolean
write_stdout (StdoutHandler *self,
              const char    *text,
              GError       **error)
{
  return printing_write_stdout (&self->broken, text, strlen (text), error);
}

static gboolean
stdout_on_chain_start (gpointer     instance,
                       ChimeEvent  *event,
                       GError     **error)
{
  StdoutHandler *self = instance;
  const char *name = chime_run_info_get_name (chime_event_get_run (event));
  g_autofree char *banner = NULL;

  banner = g_strdup_printf ("\n\n%s> Entering new %s chain...%s\n",
                            self->color ? BOLD : "",
                            name != NULL ? name : "<unknown>",
                            self->color ? RESET : "");
  return write_stdout (self, banner, error);
}

static gboolean
stdout_on_chain_end (gpointer     instance,
                     ChimeEvent  *event,
                     GError     **error)
{
  StdoutHandler *self = instance;

  return write_stdout (self, self->color ? "\n" BOLD "> Finished chain." RESET "\n"
                                         : "\n> Finished chain.\n",
                       error);
}

static gboolean
stdout_on_text (gpointer     instance,
                ChimeEvent  *event,
                GError     **error)
{
  const char *text = chime_event_get_text (event);

  return text == NULL || write_stdout (instance, text, error);
}

/* agent_action and agent_finish print the action's or finish's log;
 * LangChain ends the finish's with a newline. */
static gboolean
write_agent_log (StdoutHandler *self,
                 ChimeEvent    *event,
                 const char    *end,
                 GError       **error)
{
  const char *log = json_string_value (json_object_get (chime_event_get_data (event), "log"));
  g_autofree char *painted = NULL;
  g_autofree char *text = NULL;

  if (log == NULL)
    return TRUE;
  painted = colored (self, log, GREEN);
  text = g_strconcat (painted, end, NULL);
  return write_stdout (self, text, error);
}

static gboolean
stdout_on_agent_action (gpointer     instance,
                        ChimeEvent  *event,
                        GError     **error)
{
  return write_agent_log (instance, event, "", error);
}

static gboolean
stdout_on_agent_finish (gpointer     instance,
                        ChimeEvent  *event,
                        GError     **error)
{
  return write_agent_log (instance, event, "\n", error);
}

/* Prints str(output): a string as it is, anything else as compact JSON. */
static gboolean
stdout_on_tool_end (gpointer     instance,
                    ChimeEvent  *event,
                    GError     **error)
{
  StdoutHandler *self = instance;
  json_t *output = chime_event_get_outputs (event);
  const char *tool = chime_run_info_get_name (chime_event_get_run (event));
  g_autofree char *text = NULL;
  g_autofree char *painted = NULL;

  if (output == NULL)
    return TRUE;
  /* jansson allocates with malloc(), which g_free() accepts. */
  text = json_is_string (output) ? g_strdup (json_string_value (output))
                                 : json_dumps (output, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text == NULL)
    return TRUE;
  painted = colored (self, text, tool_color (self, tool));
  return write_stdout (self, painted, error);
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "stdout",
  .description = "prints chain banners, texts, agent logs and tool outputs, as LangChain's verbose mode",
  .version = CHIME_VERSION_STRING,
  .config_keys = stdout_keys,
  .instance_new = stdout_handler_new,
  .instance_free = stdout_handler_free,
  .on_chain_start = stdout_on_chain_start,
  .on_chain_end = stdout_on_chain_end,
  .on_text = stdout_on_text,
  .on_agent_action = stdout_on_agent_action,
  .on_agent_finish = stdout_on_agent_finish,
  .on_tool_end = stdout_on_tool_end,
);
