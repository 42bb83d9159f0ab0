/* Messages and tools in the wire shape of the Chat Completions API, as
 * langchain-openai's _convert_message_to_dict and bind_tools make them:
 * an "ai" message that called tools is an assistant message with
 * "tool_calls" [{"id", "type": "function", "function": {"name",
 * "arguments": JSON TEXT}}] and a null content when it said nothing; a
 * "tool" message is {"role": "tool", "content", "tool_call_id"}. */
#include "config.h"

#include "openai-messages.h"
#include "provider-tools.h"
#include "pipeline/pipeline-error.h"

static const char *
role_for_type (const char *type)
{
  static const char *const roles[][2] = {
    { "human", "user" }, { "user", "user" },
    { "ai", "assistant" }, { "assistant", "assistant" },
    { "system", "system" }, { "developer", "developer" },
    { "tool", "tool" },
  };

  for (gsize i = 0; type != NULL && i < G_N_ELEMENTS (roles); i++)
    if (g_str_equal (type, roles[i][0]))
      return roles[i][1];
  return NULL;
}

static json_t *
wire_tool_call (json_t *call)
{
  g_autofree char *arguments = chime_provider_tool_args_text (json_object_get (call, "args"));
  json_t *id = json_object_get (call, "id");
  const char *name = json_string_value (json_object_get (call, "name"));

  return json_pack ("{s:O, s:s, s:{s:s, s:s}}", "id", id != NULL ? id : json_null (), "type", "function",
                    "function", "name", name != NULL ? name : "", "arguments", arguments);
}

/* Both valid and invalid calls go back: the model asked for them all,
 * and each has a tool message answering it. */
static json_t *
wire_tool_calls (json_t *message)
{
  const char *const keys[] = { "tool_calls", "invalid_tool_calls" };
  json_t *wire = json_array ();

  for (gsize k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      json_t *call;
      gsize i;

      json_array_foreach (json_object_get (message, keys[k]), i, call)
        json_array_append_new (wire, wire_tool_call (call));
    }
  if (json_array_size (wire) == 0)
    g_clear_pointer (&wire, json_decref);
  return wire;
}

/* A tool's result is text in the API; anything else is sent as its JSON. */
static json_t *
text_content (json_t *content)
{
  g_autofree char *text = NULL;

  if (content == NULL)
    return json_string ("");
  if (json_is_string (content))
    return json_incref (content);
  text = chime_provider_tool_args_text (content);
  return json_string (text);
}

static json_t *
wire_message (ChimeProviderModel *model,
              json_t             *message,
              GError            **error)
{
  const char *type = json_string_value (json_object_get (message, "type"));
  const char *role = role_for_type (type);
  json_t *content = json_object_get (message, "content");
  json_t *calls = NULL;
  json_t *tool_call_id = json_object_get (message, "tool_call_id");

  if (role == NULL)
    {
      g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
                   "openai: cannot send a message of type '%s'", type != NULL ? type : "(none)");
      return NULL;
    }
  if (g_str_equal (role, "tool"))
    {
      if (!json_is_string (tool_call_id))
        {
          g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
                       "openai: a tool message without the tool_call_id of the call it answers");
          return NULL;
        }
      return json_pack ("{s:s, s:o, s:O}", "role", role, "content", text_content (content),
                        "tool_call_id", tool_call_id);
    }
  if (g_str_equal (role, "assistant"))
    calls = wire_tool_calls (message);
  if (calls != NULL)
    {
      gboolean said = json_is_string (content) && json_string_length (content) > 0;

      return json_pack ("{s:s, s:O, s:o}", "role", role, "content", said ? content : json_null (),
                        "tool_calls", calls);
    }
  return json_pack ("{s:s, s:O}", "role", role, "content", content != NULL ? content : json_string (""));
}

json_t *
chime_openai_messages (ChimeProviderModel *model,
                       json_t             *messages,
                       GError            **error)
{
  json_t *wire = json_array ();
  json_t *message;
  gsize i;

  json_array_foreach (messages, i, message)
    {
      json_t *item = wire_message (model, message, error);

      if (item == NULL)
        {
          json_decref (wire);
          return NULL;
        }
      json_array_append_new (wire, item);
    }
  return wire;
}

static json_t *
wire_tool (json_t *tool)
{
  json_t *function = json_pack ("{s:O, s:o}", "name", json_object_get (tool, "name"),
                                "parameters", chime_provider_tool_parameters (tool));
  json_t *description = json_object_get (tool, "description");

  if (description != NULL)
    json_object_set (function, "description", description);
  return json_pack ("{s:s, s:o}", "type", "function", "function", function);
}

/* tool_choice as langchain-openai's bind_tools: "auto", "none",
 * "required", or {"type": "function", "function": {"name"}}. */
static json_t *
wire_tool_choice (const char *choice)
{
  if (g_str_equal (choice, "auto") || g_str_equal (choice, "none") || g_str_equal (choice, "required"))
    return json_string (choice);
  return json_pack ("{s:s, s:{s:s}}", "type", "function", "function", "name", choice);
}

gboolean
chime_openai_add_tools (ChimeProviderModel *model,
                        json_t             *body,
                        json_t             *tools,
                        GError            **error)
{
  return chime_provider_add_tools (model, body, tools, wire_tool, wire_tool_choice, error);
}
