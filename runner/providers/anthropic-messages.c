/* Messages and tools in the Messages API's wire shape, as
 * langchain-anthropic's _format_messages and bind_tools make them: an
 * "ai" message that called tools is an assistant message whose content
 * is blocks, its text (when it said any) then a tool_use block {"id",
 * "name", "input"} per call; a "tool" message is a tool_result block
 * {"tool_use_id", "content", "is_error"?} in a user message, and the
 * results of one turn's calls (with any human text after them) share
 * that one user message, as the API wants every result of a turn in the
 * next user turn. */
#include "config.h"

#include "anthropic-messages.h"
#include "provider-tools.h"
#include "pipeline/pipeline-error.h"

static json_t *
text_block (json_t *text)
{
  return json_pack ("{s:s, s:O}", "type", "text", "text", text);
}

/* A call whose arguments did not parse still goes back (with no input),
 * so that the tool message answering it has its tool_use. */
static void
add_tool_use_blocks (json_t     *blocks,
                     json_t     *calls,
                     gboolean    valid)
{
  json_t *call;
  gsize i;

  json_array_foreach (calls, i, call)
    {
      json_t *args = json_object_get (call, "args");
      const char *name = json_string_value (json_object_get (call, "name"));
      const char *id = json_string_value (json_object_get (call, "id"));

      json_array_append_new (blocks, json_pack ("{s:s, s:s, s:s, s:o}", "type", "tool_use",
                                                "id", id != NULL ? id : "", "name", name != NULL ? name : "",
                                                "input", valid && json_is_object (args) ? json_incref (args)
                                                                                        : json_object ()));
    }
}

static json_t *
assistant_content (json_t *message)
{
  json_t *content = json_object_get (message, "content");
  json_t *calls = json_object_get (message, "tool_calls");
  json_t *invalid = json_object_get (message, "invalid_tool_calls");
  json_t *blocks;

  if (json_array_size (calls) == 0 && json_array_size (invalid) == 0)
    return content != NULL ? json_incref (content) : json_string ("");
  blocks = json_array ();
  if (json_is_string (content) && json_string_length (content) > 0)
    json_array_append_new (blocks, text_block (content));
  add_tool_use_blocks (blocks, calls, TRUE);
  add_tool_use_blocks (blocks, invalid, FALSE);
  return blocks;
}

static json_t *
tool_result_block (json_t  *message,
                   GError **error)
{
  json_t *id = json_object_get (message, "tool_call_id");
  json_t *content = json_object_get (message, "content");
  g_autofree char *text = NULL;
  json_t *block;

  if (!json_is_string (id))
    {
      g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
                   "anthropic: a tool message without the tool_call_id of the call it answers");
      return NULL;
    }
  text = json_is_string (content) ? g_strdup (json_string_value (content)) : chime_provider_tool_args_text (content);
  block = json_pack ("{s:s, s:O, s:s}", "type", "tool_result", "tool_use_id", id, "content", text);
  /* LangChain's ToolMessage(status="error") */
  if (g_strcmp0 (json_string_value (json_object_get (message, "status")), "error") == 0)
    json_object_set_new (block, "is_error", json_true ());
  return block;
}

/* The user message of tool results @wire ends with, or NULL. */
static json_t *
open_results (json_t *wire)
{
  json_t *last = json_array_get (wire, json_array_size (wire) - 1);
  json_t *content = json_object_get (last, "content");
  json_t *first = json_array_get (content, 0);

  if (g_strcmp0 (json_string_value (json_object_get (last, "role")), "user") != 0 ||
      g_strcmp0 (json_string_value (json_object_get (first, "type")), "tool_result") != 0)
    return NULL;
  return content;
}

/* A tool result, or human text right after results, joins them. */
static gboolean
add_user (json_t  *wire,
          json_t  *message,
          gboolean is_tool,
          GError **error)
{
  json_t *results = open_results (wire);
  json_t *content = json_object_get (message, "content");
  json_t *block;

  if (!is_tool && (results == NULL || !json_is_string (content)))
    {
      json_array_append_new (wire, json_pack ("{s:s, s:O}", "role", "user", "content",
                                              content != NULL ? content : json_string ("")));
      return TRUE;
    }
  block = is_tool ? tool_result_block (message, error) : text_block (content);
  if (block == NULL)
    return FALSE;
  if (results != NULL)
    json_array_append_new (results, block);
  else
    json_array_append_new (wire, json_pack ("{s:s, s:[o]}", "role", "user", "content", block));
  return TRUE;
}

json_t *
chime_anthropic_messages (json_t     *messages,
                          GPtrArray  *system,
                          GError    **error)
{
  g_autoptr (json_t) wire = json_array ();
  json_t *message;
  gsize i;

  json_array_foreach (messages, i, message)
    {
      const char *type = json_string_value (json_object_get (message, "type"));
      json_t *content = json_object_get (message, "content");

      if (g_strcmp0 (type, "system") == 0 && json_is_string (content))
        g_ptr_array_add (system, (gpointer) json_string_value (content));
      else if (g_strcmp0 (type, "human") == 0 || g_strcmp0 (type, "user") == 0 ||
               g_strcmp0 (type, "tool") == 0)
        {
          if (!add_user (wire, message, g_str_equal (type, "tool"), error))
            return NULL;
        }
      else if (g_strcmp0 (type, "ai") == 0 || g_strcmp0 (type, "assistant") == 0)
        json_array_append_new (wire, json_pack ("{s:s, s:o}", "role", "assistant",
                                                "content", assistant_content (message)));
      else
        {
          g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
                       "anthropic: cannot send a message of type '%s'", type != NULL ? type : "(none)");
          return NULL;
        }
    }
  return g_steal_pointer (&wire);
}

static json_t *
wire_tool (json_t *tool)
{
  json_t *wire = json_pack ("{s:O, s:o}", "name", json_object_get (tool, "name"),
                            "input_schema", chime_provider_tool_parameters (tool));
  json_t *description = json_object_get (tool, "description");

  if (description != NULL)
    json_object_set (wire, "description", description);
  return wire;
}

/* tool_choice as langchain-anthropic's bind_tools: {"type": "auto" |
 * "any" | "none"} or {"type": "tool", "name"}. */
static json_t *
wire_tool_choice (const char *choice)
{
  if (g_str_equal (choice, "required"))
    return json_pack ("{s:s}", "type", "any");
  if (g_str_equal (choice, "auto") || g_str_equal (choice, "none"))
    return json_pack ("{s:s}", "type", choice);
  return json_pack ("{s:s, s:s}", "type", "tool", "name", choice);
}

gboolean
chime_anthropic_add_tools (ChimeProviderModel *model,
                           json_t             *body,
                           json_t             *tools,
                           GError            **error)
{
  return chime_provider_add_tools (model, body, tools, wire_tool, wire_tool_choice, error);
}
