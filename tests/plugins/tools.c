/* test_tools: a plugin that provides tools and no handler (ABI 2.2).
 *
 *   count_words  sync, on a worker thread: {"text"} -> the number of
 *                words; dispatches the custom event "words_counted"
 *                {"words": N} through its run first, and checks that a
 *                "chime." name is refused.
 *   later        async, on the main loop: answers "waited" after
 *                {"ms": N} milliseconds.
 *   broken       sync: always fails. */
#include <chime/plugin.h>
#include <chime/run.h>

#include <string.h>

static char *
count_words (gpointer       user_data,
             ChimeToolCall *call,
             GError       **error)
{
  const char *text = json_string_value (json_object_get (chime_tool_call_get_args (call), "text"));
  g_auto (GStrv) words = NULL;
  g_autoptr (GError) refused = NULL;
  json_t *data;
  guint n = 0;
  gboolean sent;

  if (text == NULL)
    {
      g_set_error_literal (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                           "count_words needs {\"text\": TEXT}");
      return NULL;
    }
  words = g_strsplit_set (text, " \t\n", -1);
  for (guint i = 0; words[i] != NULL; i++)
    n += words[i][0] != '\0';
  if (chime_run_dispatch_custom_event (chime_tool_call_get_run (call), CHIME_STREAM_EVENT, NULL, &refused))
    {
      g_set_error_literal (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                           "a chime. custom event was dispatched");
      return NULL;
    }
  data = json_pack ("{s:i, s:b}", "words", n, "on_main_thread",
                    g_main_context_is_owner (chime_tool_call_get_main_context (call)));
  sent = chime_run_dispatch_custom_event (chime_tool_call_get_run (call), "words_counted", data, error);
  json_decref (data);
  return sent ? g_strdup_printf ("%u", n) : NULL;
}

static gboolean
answer_later (gpointer data)
{
  chime_tool_call_return (data, "waited");
  return G_SOURCE_REMOVE;
}

static void
later (gpointer       user_data,
       ChimeToolCall *call)
{
  GSource *source = g_timeout_source_new (json_integer_value (json_object_get (chime_tool_call_get_args (call), "ms")));

  g_source_set_callback (source, answer_later, call, NULL);
  g_source_attach (source, chime_tool_call_get_main_context (call));
  g_source_unref (source);
}

static char *
broken (gpointer       user_data,
        ChimeToolCall *call,
        GError       **error)
{
  g_set_error_literal (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED, "broken on purpose");
  return NULL;
}

static const ChimeToolDescriptor tools[] = {
  { .struct_size = CHIME_TOOL_DESCRIPTOR_SIZE, .name = "count_words",
    .description = "Counts the words of a text",
    .parameters = "{\"type\": \"object\", \"properties\": {\"text\": {\"type\": \"string\"}}, "
                  "\"required\": [\"text\"]}",
    .invoke = count_words },
  { .struct_size = CHIME_TOOL_DESCRIPTOR_SIZE, .name = "later",
    .description = "Answers after a while", .invoke_async = later },
  { .struct_size = CHIME_TOOL_DESCRIPTOR_SIZE, .name = "broken",
    .description = "Always fails", .invoke = broken },
  { 0 },
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "test_tools",
  .description = "tools for the agent tests",
  .tools = tools,
);
