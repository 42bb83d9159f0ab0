/* word_tools: a tool plugin (plugin ABI 2.2), the agent example's. It
 * provides one tool, word_count, and no handler: a `[tool NAME]` section
 * with `plugin = word_tools` offers it to a model. The tool runs on a
 * worker thread (a sync tool) and tells the handlers what it found with a
 * custom event on its run, as LangChain's dispatch_custom_event.
 *
 *   cc -shared -fPIC -o word_tools.so word_tools.c $(pkg-config --cflags --libs chime)
 */
#include <chime/plugin.h>
#include <chime/run.h>

static char *
word_count (gpointer       user_data,
            ChimeToolCall *call,
            GError       **error)
{
  const char *text = json_string_value (json_object_get (chime_tool_call_get_args (call), "text"));
  g_auto (GStrv) words = NULL;
  json_t *data;
  guint n = 0;
  gboolean sent;

  if (text == NULL)
    {
      g_set_error_literal (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                           "word_count needs {\"text\": TEXT}");
      return NULL;
    }
  words = g_strsplit_set (text, " \t\n", -1);
  for (guint i = 0; words[i] != NULL; i++)
    n += words[i][0] != '\0';
  data = json_pack ("{s:s, s:i}", "text", text, "words", n);
  sent = chime_run_dispatch_custom_event (chime_tool_call_get_run (call), "words_counted", data, error);
  json_decref (data);
  return sent ? g_strdup_printf ("%u", n) : NULL;
}

static const ChimeToolDescriptor tools[] = {
  { .struct_size = CHIME_TOOL_DESCRIPTOR_SIZE,
    .name = "word_count",
    .description = "Counts the words of a text",
    .parameters = "{\"type\": \"object\", \"properties\": {\"text\": {\"type\": \"string\"}}, "
                  "\"required\": [\"text\"]}",
    .invoke = word_count },
  { 0 },
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "word_tools",
  .description = "the word_count tool (the agent example's tool plugin)",
  .version = "1.0",
  .tools = tools,
);
