/* The fake model's scripted tool calls: each call of a turn streams as
 * OpenAI's do, its name and id on the first piece and its arguments
 * split across two, so that handlers see tool_call_chunks to assemble;
 * arguments scripted as text that is not a JSON object come back as
 * invalid_tool_calls, as a real model's malformed arguments would. */
#include "config.h"

#include "fake-tool-calls.h"
#include "config-json.h"

#include <string.h>

#define SCRIPT_EXAMPLE \
  "[[{\"name\": \"word_count\", \"args\": {\"text\": \"hi there\"}}]]"

struct _ChimeFakeToolTurn {
  GPtrArray *texts;    /* char *: the pieces' texts */
  GPtrArray *chunks;   /* json_t * or NULL, one per piece */
  json_t    *tool_calls;
  json_t    *invalid_tool_calls;
};

/* The calls of turn item @item, or NULL when it is malformed. */
static json_t *
turn_calls (json_t *item)
{
  return json_is_object (item) ? json_object_get (item, "calls") : item;
}

static gboolean
call_is_valid (json_t *call)
{
  json_t *args = json_object_get (call, "args");
  json_t *id = json_object_get (call, "id");

  return json_is_object (call) && json_is_string (json_object_get (call, "name")) &&
         (args == NULL || json_is_object (args) || json_is_string (args)) &&
         (id == NULL || json_is_string (id));
}

static gboolean
turn_is_valid (json_t *item)
{
  json_t *calls = turn_calls (item);
  json_t *text = json_is_object (item) ? json_object_get (item, "text") : NULL;
  gsize i;
  json_t *call;

  if (!json_is_array (calls) || (text != NULL && !json_is_string (text)))
    return FALSE;
  json_array_foreach (calls, i, call)
    if (!call_is_valid (call))
      return FALSE;
  return TRUE;
}

json_t *
chime_fake_tool_calls_read (ChimeConfig *config,
                            const char  *section)
{
  g_autoptr (json_t) script = chime_config_read_json_value (config, section, "tool_calls",
                                                            JSON_ARRAY, SCRIPT_EXAMPLE);
  gsize i;
  json_t *item;

  if (script == NULL)
    return NULL;
  json_array_foreach (script, i, item)
    if (!turn_is_valid (item))
      {
        g_autofree char *location = chime_config_describe_location (config, section, "tool_calls");
        chime_config_add_problem (config, "invalid value for 'tool_calls'%s: turn %zu is not a list "
                                  "of calls {\"name\": TEXT, \"args\": OBJECT or TEXT, \"id\": TEXT} "
                                  "(or {\"text\": TEXT, \"calls\": [...]}); e.g. %s",
                                  location, i + 1, SCRIPT_EXAMPLE);
        return NULL;
      }
  return g_steal_pointer (&script);
}

static guint
count_ai_messages (json_t *messages)
{
  guint n = 0;
  gsize i;
  json_t *message;

  json_array_foreach (messages, i, message)
    if (g_strcmp0 (json_string_value (json_object_get (message, "type")), "ai") == 0)
      n++;
  return n;
}

static void
add_piece (ChimeFakeToolTurn *turn,
           const char        *text,
           json_t            *chunk)
{
  g_ptr_array_add (turn->texts, g_strdup (text));
  g_ptr_array_add (turn->chunks, chunk);
}

static json_t *
call_chunk (const char *name,
            const char *args,
            const char *id,
            gsize       index)
{
  return json_pack ("{s:[{s:s?, s:s, s:s?, s:I, s:s}]}", "tool_call_chunks",
                    "name", name, "args", args, "id", id, "index", (json_int_t) index,
                    "type", "tool_call_chunk");
}

/* The call's arguments as the model "wrote" them. */
static char *
args_text (json_t *call)
{
  json_t *args = json_object_get (call, "args");

  if (json_is_string (args))
    return g_strdup (json_string_value (args));
  return args != NULL ? json_dumps (args, JSON_COMPACT) : g_strdup ("{}");
}

/* Streams call @index: name and id first, the arguments in two halves. */
static void
add_call (ChimeFakeToolTurn *turn,
          json_t            *call,
          gsize              index,
          guint              turn_number)
{
  const char *name = json_string_value (json_object_get (call, "name"));
  g_autofree char *id = json_is_string (json_object_get (call, "id"))
                          ? g_strdup (json_string_value (json_object_get (call, "id")))
                          : g_strdup_printf ("call_%u_%zu", turn_number, index);
  g_autofree char *args = args_text (call);
  const char *middle = g_utf8_offset_to_pointer (args, g_utf8_strlen (args, -1) / 2);
  g_autofree char *first = g_strndup (args, middle - args);
  json_error_t error;
  json_t *parsed = json_loads (args, 0, &error);

  add_piece (turn, "", call_chunk (name, first, id, index));
  if (*middle != '\0')
    add_piece (turn, "", call_chunk (NULL, middle, NULL, index));
  if (json_is_object (parsed))
    json_array_append_new (turn->tool_calls, json_pack ("{s:s, s:o, s:s, s:s}", "name", name,
                                                        "args", parsed, "id", id,
                                                        "type", "tool_call"));
  else
    {
      g_autofree char *reason = parsed != NULL ? g_strdup ("not a JSON object")
                                               : g_strdup_printf ("not JSON: %s", error.text);

      g_clear_pointer (&parsed, json_decref);
      json_array_append_new (turn->invalid_tool_calls,
                             json_pack ("{s:s, s:s, s:s, s:s, s:s}", "name", name, "args", args,
                                        "id", id, "error", reason, "type", "invalid_tool_call"));
    }
}

ChimeFakeToolTurn *
chime_fake_tool_turn_new (json_t *script,
                          json_t *messages)
{
  guint number = count_ai_messages (messages);
  json_t *item = json_array_get (script, number);
  json_t *calls = turn_calls (item);
  json_t *text = json_is_object (item) ? json_object_get (item, "text") : NULL;
  ChimeFakeToolTurn *turn;
  gsize i;
  json_t *call;

  if (json_array_size (calls) == 0)
    return NULL;
  turn = g_new0 (ChimeFakeToolTurn, 1);
  turn->texts = g_ptr_array_new_with_free_func (g_free);
  turn->chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) json_decref);
  turn->tool_calls = json_array ();
  turn->invalid_tool_calls = json_array ();
  if (json_string_length (text) > 0)
    add_piece (turn, json_string_value (text), NULL);
  json_array_foreach (calls, i, call)
    add_call (turn, call, i, number);
  return turn;
}

const char *
chime_fake_tool_turn_get_piece (ChimeFakeToolTurn *turn,
                                guint              index,
                                json_t           **chunk)
{
  if (index >= turn->texts->len)
    return NULL;
  *chunk = turn->chunks->pdata[index];
  return turn->texts->pdata[index];
}

void
chime_fake_tool_turn_fill_result (ChimeFakeToolTurn *turn,
                                  ChimeModelResult  *result)
{
  if (json_array_size (turn->tool_calls) > 0)
    result->tool_calls = json_incref (turn->tool_calls);
  if (json_array_size (turn->invalid_tool_calls) > 0)
    result->invalid_tool_calls = json_incref (turn->invalid_tool_calls);
}

void
chime_fake_tool_turn_free (ChimeFakeToolTurn *turn)
{
  g_ptr_array_unref (turn->texts);
  g_ptr_array_unref (turn->chunks);
  json_decref (turn->tool_calls);
  json_decref (turn->invalid_tool_calls);
  g_free (turn);
}
