/* console — LangChain's ConsoleCallbackHandler (what set_debug(True) prints).
 *
 * Prints every chain, LLM and tool run as it starts, ends or fails, with
 * its inputs and outputs as indented JSON:
 *
 *   [chain/start] [chain:Root] Entering Chain run with input:
 *   {
 *     "input": "hi"
 *   }
 *   [llm/end] [chain:Root > chat_model:FakeChat] [312ms] Exiting LLM run with output:
 *   ...
 *
 * The breadcrumbs are run_type:name from the root run down to this one;
 * the elapsed time is since the run's start event.
 *
 *   [handler debug]
 *   plugin = console
 *   color = auto        # auto | always | never
 */
#include <chime/plugin.h>

#include "../printing.h"

/* LangChain's _TEXT_COLOR_MAPPING entries for the three colours used. */
#define GREEN "32;1"
#define BLUE  "36;1"
#define RED   "31;1"

typedef struct {
  gboolean color;   /* colour the tags and bold the headers */
  gboolean broken;  /* stdout failed: said once, nothing more written */
} Console;

static const ChimeConfigKey console_keys[] = {
  { "color", CHIME_CONFIG_CHOICE, "auto",
    "ANSI colours: auto (when stdout is a terminal), always or never", 0, printing_color_choices },
  { NULL }
};

static gpointer
console_new (ChimeHandlerContext *context,
             GError             **error)
{
  g_autofree Console *self = g_new0 (Console, 1);

  self->color = printing_wants_color (context);
  return g_steal_pointer (&self);
}

static void
console_free (gpointer instance)
{
  g_free (instance);
}

/* Prints one entry as LangChain composes it:
 *   colored(tag) + " " + bold(header) + body + "\n"
 * in a single write, so that entries of concurrent handlers stay whole. */
static gboolean
console_print (Console     *self,
               const char  *colour,
               const char  *tag,
               const char  *header,
               const char  *body,
               GError     **error)
{
  g_autoptr (GString) entry = g_string_new (NULL);

  if (self->color)
    g_string_append_printf (entry, "\033[%sm\033[1;3m%s\033[0m \033[1m%s\033[0m%s\n",
                            colour, tag, header, body);
  else
    g_string_append_printf (entry, "%s %s%s\n", tag, header, body);

  return printing_write_stdout (&self->broken, entry->str, entry->len, error);
}

/* "chain:Root > chat_model:FakeChat": run_type:name from the root down. */
static char *
breadcrumbs (const ChimeRunInfo *run)
{
  g_autoptr (GPtrArray) crumbs = g_ptr_array_new_with_free_func (g_free);

  for (; run != NULL; run = chime_run_info_get_parent (run))
    g_ptr_array_insert (crumbs, 0, g_strdup_printf ("%s:%s", chime_run_info_get_run_type (run),
                                                    chime_run_info_get_name (run)));
  g_ptr_array_add (crumbs, NULL);
  return g_strjoinv (" > ", (char **) crumbs->pdata);
}

/* LangChain's elapsed(): "312ms" under a second, else "1.02s". Formatted
 * with g_ascii_formatd() so that a host's LC_NUMERIC cannot turn the
 * point into a comma. */
static char *
format_elapsed (ChimeEvent *event)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  gint64 elapsed = chime_event_get_monotonic_time (event) - chime_run_info_get_start_time (run);
  gdouble seconds = (gdouble) elapsed / G_USEC_PER_SEC;
  char number[G_ASCII_DTOSTR_BUF_SIZE];

  if (seconds < 1.0)
    return g_strconcat (g_ascii_formatd (number, sizeof number, "%.0f", seconds * 1000), "ms", NULL);
  return g_strconcat (g_ascii_formatd (number, sizeof number, "%.2f", seconds), "s", NULL);
}

/* json.dumps(value, indent=2, ensure_ascii=False), or @fallback when there
 * is nothing to dump, as LangChain's try_json_stringify. */
static char *
dump_json (json_t     *value,
           const char *fallback)
{
  char *text = value != NULL ? json_dumps (value, JSON_INDENT (2) | JSON_ENCODE_ANY) : NULL;

  /* jansson allocates with malloc(), which g_free() accepts. */
  return text != NULL ? text : g_strdup (fallback);
}

/* The tracer stores a chain's inputs or outputs as they are when they are
 * a dict, else wrapped as {key: value}. */
static char *
dump_chain_io (json_t     *value,
               const char *key,
               const char *fallback)
{
  g_autoptr (json_t) wrapped = NULL;

  if (value == NULL || json_is_object (value))
    return dump_json (value, fallback);
  wrapped = json_pack ("{s:O}", key, value);
  return dump_json (wrapped, fallback);
}

/* A run's error as the tracer records it (a string), dumped as JSON. */
static char *
dump_error (ChimeEvent *event)
{
  const GError *failure = chime_event_get_error (event);
  g_autoptr (json_t) message = NULL;

  if (failure == NULL)
    return g_strdup ("[error]");
  message = json_string (failure->message);
  return dump_json (message, "[error]");
}

/* "chain" → "Chain", Python's str.capitalize() on an ASCII run type. */
static char *
capitalize (const char *run_type)
{
  char *text = g_ascii_strdown (run_type, -1);

  text[0] = g_ascii_toupper (text[0]);
  return text;
}

static gboolean
console_on_chain_start (gpointer     instance,
                        ChimeEvent  *event,
                        GError     **error)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  g_autofree char *crumbs = breadcrumbs (run);
  g_autofree char *run_type = capitalize (chime_run_info_get_run_type (run));
  g_autofree char *header = g_strdup_printf ("[%s] Entering %s run with input:\n", crumbs, run_type);
  g_autofree char *body = dump_chain_io (chime_event_get_inputs (event), "input", "[inputs]");

  return console_print (instance, GREEN, "[chain/start]", header, body, error);
}

static gboolean
console_on_chain_end (gpointer     instance,
                      ChimeEvent  *event,
                      GError     **error)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  g_autofree char *crumbs = breadcrumbs (run);
  g_autofree char *elapsed = format_elapsed (event);
  g_autofree char *run_type = capitalize (chime_run_info_get_run_type (run));
  g_autofree char *header = g_strdup_printf ("[%s] [%s] Exiting %s run with output:\n",
                                             crumbs, elapsed, run_type);
  g_autofree char *body = dump_chain_io (chime_event_get_outputs (event), "output", "[outputs]");

  return console_print (instance, BLUE, "[chain/end]", header, body, error);
}

static gboolean
console_on_chain_error (gpointer     instance,
                        ChimeEvent  *event,
                        GError     **error)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  g_autofree char *crumbs = breadcrumbs (run);
  g_autofree char *elapsed = format_elapsed (event);
  g_autofree char *run_type = capitalize (chime_run_info_get_run_type (run));
  g_autofree char *header = g_strdup_printf ("[%s] [%s] %s run errored with error:\n",
                                             crumbs, elapsed, run_type);
  g_autofree char *body = dump_error (event);

  return console_print (instance, RED, "[chain/error]", header, body, error);
}

/* llm_start and chat_model_start: the prompts, stripped; a chat model's
 * messages come rendered "Role: content" as LangChain's fallback does. */
static gboolean
console_on_llm_start (gpointer     instance,
                      ChimeEvent  *event,
                      GError     **error)
{
  g_autofree char *crumbs = breadcrumbs (chime_event_get_run (event));
  g_autofree char *header = g_strdup_printf ("[%s] Entering LLM run with input:\n", crumbs);
  json_t *prompts = chime_event_get_prompts (event);
  g_autoptr (json_t) stripped = json_array ();
  g_autoptr (json_t) inputs = NULL;
  g_autofree char *body = NULL;
  gsize i;
  json_t *prompt;

  json_array_foreach (prompts, i, prompt)
    {
      g_autofree char *text = g_strdup (json_string_value (prompt));

      json_array_append_new (stripped, json_string (text != NULL ? g_strstrip (text) : ""));
    }
  inputs = json_pack ("{s:O}", "prompts", stripped);
  body = dump_json (inputs, "[inputs]");
  return console_print (instance, GREEN, "[llm/start]", header, body, error);
}

static gboolean
console_on_llm_end (gpointer     instance,
                    ChimeEvent  *event,
                    GError     **error)
{
  g_autofree char *crumbs = breadcrumbs (chime_event_get_run (event));
  g_autofree char *elapsed = format_elapsed (event);
  g_autofree char *header = g_strdup_printf ("[%s] [%s] Exiting LLM run with output:\n",
                                             crumbs, elapsed);
  g_autofree char *body = dump_json (chime_event_get_response (event), "[response]");

  return console_print (instance, BLUE, "[llm/end]", header, body, error);
}

static gboolean
console_on_llm_error (gpointer     instance,
                      ChimeEvent  *event,
                      GError     **error)
{
  g_autofree char *crumbs = breadcrumbs (chime_event_get_run (event));
  g_autofree char *elapsed = format_elapsed (event);
  g_autofree char *header = g_strdup_printf ("[%s] [%s] LLM run errored with error:\n",
                                             crumbs, elapsed);
  g_autofree char *body = dump_error (event);

  return console_print (instance, RED, "[llm/error]", header, body, error);
}

/* Tools print their input and output as quoted, stripped text. */
static char *
quote_stripped (const char *text)
{
  g_autofree char *copy = g_strdup (text != NULL ? text : "");

  return g_strdup_printf ("\"%s\"", g_strstrip (copy));
}

static gboolean
console_on_tool_start (gpointer     instance,
                       ChimeEvent  *event,
                       GError     **error)
{
  g_autofree char *crumbs = breadcrumbs (chime_event_get_run (event));
  g_autofree char *header = g_strdup_printf ("[%s] Entering Tool run with input:\n", crumbs);
  g_autofree char *body = quote_stripped (chime_event_get_text (event));

  return console_print (instance, GREEN, "[tool/start]", header, body, error);
}

/* str(output): a string as it is, anything else as compact JSON. Printed
 * only when there is an output, as LangChain does. */
static gboolean
console_on_tool_end (gpointer     instance,
                     ChimeEvent  *event,
                     GError     **error)
{
  json_t *output = chime_event_get_outputs (event);
  g_autofree char *crumbs = NULL;
  g_autofree char *elapsed = NULL;
  g_autofree char *header = NULL;
  g_autofree char *text = NULL;
  g_autofree char *body = NULL;

  if (output == NULL)
    return TRUE;
  crumbs = breadcrumbs (chime_event_get_run (event));
  elapsed = format_elapsed (event);
  header = g_strdup_printf ("[%s] [%s] Exiting Tool run with output:\n", crumbs, elapsed);
  text = json_is_string (output) ? g_strdup (json_string_value (output))
                                 : json_dumps (output, JSON_COMPACT | JSON_ENCODE_ANY);
  body = quote_stripped (text);
  return console_print (instance, BLUE, "[tool/end]", header, body, error);
}

/* Unlike the others, LangChain bolds only the breadcrumbs and elapsed time
 * of a tool error and prints the error as plain text. */
static gboolean
console_on_tool_error (gpointer     instance,
                       ChimeEvent  *event,
                       GError     **error)
{
  const GError *failure = chime_event_get_error (event);
  g_autofree char *crumbs = breadcrumbs (chime_event_get_run (event));
  g_autofree char *elapsed = format_elapsed (event);
  g_autofree char *header = g_strdup_printf ("[%s] [%s] ", crumbs, elapsed);
  g_autofree char *body = g_strdup_printf ("Tool run errored with error:\n%s",
                                           failure != NULL ? failure->message : "[error]");

  return console_print (instance, RED, "[tool/error]", header, body, error);
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "console",
  .description = "prints every chain, LLM and tool run with its inputs and outputs, as LangChain's debug mode",
  .version = CHIME_VERSION_STRING,
  .config_keys = console_keys,
  .instance_new = console_new,
  .instance_free = console_free,
  .on_llm_start = console_on_llm_start,
  .on_chat_model_start = console_on_llm_start,
  .on_llm_end = console_on_llm_end,
  .on_llm_error = console_on_llm_error,
  .on_chain_start = console_on_chain_start,
  .on_chain_end = console_on_chain_end,
  .on_chain_error = console_on_chain_error,
  .on_tool_start = console_on_tool_start,
  .on_tool_end = console_on_tool_end,
  .on_tool_error = console_on_tool_error,
);
