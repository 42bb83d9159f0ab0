/* Tool calls assembled from the pieces a stream sends
 * (provider-tool-calls.h says how the APIs cut them). */
#include "config.h"

#include "provider-tool-calls.h"

#include <string.h>

typedef struct {
  gint64   index;
  char    *id;
  char    *name;
  GString *args;
} ToolCall;

struct _ChimeToolCallBuffer {
  GPtrArray *calls;   /* of ToolCall, in the order they began */
};

static void
tool_call_free (gpointer data)
{
  ToolCall *call = data;

  g_free (call->id);
  g_free (call->name);
  g_string_free (call->args, TRUE);
  g_free (call);
}

ChimeToolCallBuffer *
chime_tool_call_buffer_new (void)
{
  ChimeToolCallBuffer *buffer = g_new0 (ChimeToolCallBuffer, 1);

  buffer->calls = g_ptr_array_new_with_free_func (tool_call_free);
  return buffer;
}

void
chime_tool_call_buffer_free (ChimeToolCallBuffer *buffer)
{
  if (buffer == NULL)
    return;
  g_ptr_array_unref (buffer->calls);
  g_free (buffer);
}

static ToolCall *
find_call (ChimeToolCallBuffer *buffer,
           gint64               index)
{
  for (guint i = 0; i < buffer->calls->len; i++)
    {
      ToolCall *call = g_ptr_array_index (buffer->calls, i);

      if (call->index == index)
        return call;
    }
  return NULL;
}

/* A later piece that names the call again only fills in what was not
 * said: OpenAI-compatible servers repeat the id on every piece. */
static void
keep_first (char      **slot,
            const char *value)
{
  if (*slot == NULL && value != NULL)
    *slot = g_strdup (value);
}

char *
chime_tool_call_buffer_add (ChimeToolCallBuffer *buffer,
                            gint64               index,
                            const char          *id,
                            const char          *name,
                            const char          *args)
{
  ToolCall *call = find_call (buffer, index);
  gsize length = args != NULL ? strlen (args) : 0;

  if (call == NULL)
    {
      if (buffer->calls->len >= CHIME_TOOL_CALLS_MAX)
        {
          return g_strdup_printf ("the model asked for more than %d tool calls in one reply",
                                  CHIME_TOOL_CALLS_MAX);
        }
      call = g_new0 (ToolCall, 1);
      call->index = index;
      call->args = g_string_new (NULL);
      g_ptr_array_add (buffer->calls, call);
    }
  if (call->args->len + length > CHIME_TOOL_CALL_MAX_ARGS)
    return g_strdup_printf ("the arguments of tool call %" G_GINT64_FORMAT " (%s) are longer than %d bytes",
                            index, call->name != NULL ? call->name : name != NULL ? name : "unnamed",
                            CHIME_TOOL_CALL_MAX_ARGS);
  keep_first (&call->id, id);
  keep_first (&call->name, name);
  g_string_append_len (call->args, args != NULL ? args : "", (gssize) length);
  return NULL;
}

static gint
compare_index (gconstpointer a,
               gconstpointer b)
{
  const ToolCall *x = *(ToolCall *const *) a;
  const ToolCall *y = *(ToolCall *const *) b;

  return x->index < y->index ? -1 : x->index > y->index;
}

static json_t *
nullable_string (const char *value)
{
  return value != NULL ? json_string (value) : json_null ();
}

/* The reason @call's arguments are not a JSON object, or NULL when they
 * are one (in *@args). */
static char *
parse_args (const ToolCall *call,
            json_t        **args)
{
  json_error_t error;

  *args = NULL;
  if (call->args->len == 0)
    {
      *args = json_object ();
      return NULL;
    }
  *args = json_loadb (call->args->str, call->args->len, JSON_REJECT_DUPLICATES, &error);
  if (*args == NULL)
    return g_strdup_printf ("the arguments of tool call '%s' are not valid JSON (%s, at character %d)",
                            call->name != NULL ? call->name : "", error.text, error.position);
  if (!json_is_object (*args))
    {
      g_clear_pointer (args, json_decref);
      return g_strdup_printf ("the arguments of tool call '%s' are JSON but not an object",
                              call->name != NULL ? call->name : "");
    }
  return NULL;
}

static void
append_to (json_t **array,
           json_t  *item)
{
  if (*array == NULL)
    *array = json_array ();
  json_array_append_new (*array, item);
}

void
chime_tool_call_buffer_finish (ChimeToolCallBuffer *buffer,
                               json_t             **tool_calls,
                               json_t             **invalid_tool_calls)
{
  *tool_calls = *invalid_tool_calls = NULL;
  g_ptr_array_sort (buffer->calls, compare_index);
  for (guint i = 0; i < buffer->calls->len; i++)
    {
      const ToolCall *call = g_ptr_array_index (buffer->calls, i);
      json_t *args;
      g_autofree char *reason = parse_args (call, &args);

      /* As LangChain's create_tool_call: a name is always a string. */
      if (reason == NULL)
        append_to (tool_calls, json_pack ("{s:s, s:o, s:o, s:s}", "name", call->name != NULL ? call->name : "",
                                          "args", args, "id", nullable_string (call->id),
                                          "type", "tool_call"));
      else
        append_to (invalid_tool_calls,
                   json_pack ("{s:o, s:s, s:o, s:s, s:s}", "name", nullable_string (call->name),
                              "args", call->args->str, "id", nullable_string (call->id),
                              "error", reason, "type", "invalid_tool_call"));
    }
}

json_t *
chime_tool_call_chunk_new (gint64      index,
                           const char *id,
                           const char *name,
                           const char *args)
{
  return json_pack ("{s:o, s:o, s:o, s:I, s:s}", "name", nullable_string (name),
                    "args", nullable_string (args), "id", nullable_string (id),
                    "index", (json_int_t) index, "type", "tool_call_chunk");
}
