/* Events: construction, reference counting and the public accessors. */
#include "config.h"

#include "event-private.h"
#include "trace.h"

#include <string.h>

static const char *const event_type_names[CHIME_EVENT_N_TYPES] = {
  [CHIME_EVENT_LLM_START] = "llm_start",
  [CHIME_EVENT_CHAT_MODEL_START] = "chat_model_start",
  [CHIME_EVENT_LLM_NEW_TOKEN] = "llm_new_token",
  [CHIME_EVENT_LLM_END] = "llm_end",
  [CHIME_EVENT_LLM_ERROR] = "llm_error",
  [CHIME_EVENT_CHAIN_START] = "chain_start",
  [CHIME_EVENT_CHAIN_END] = "chain_end",
  [CHIME_EVENT_CHAIN_ERROR] = "chain_error",
  [CHIME_EVENT_TOOL_START] = "tool_start",
  [CHIME_EVENT_TOOL_END] = "tool_end",
  [CHIME_EVENT_TOOL_ERROR] = "tool_error",
  [CHIME_EVENT_AGENT_ACTION] = "agent_action",
  [CHIME_EVENT_AGENT_FINISH] = "agent_finish",
  [CHIME_EVENT_RETRIEVER_START] = "retriever_start",
  [CHIME_EVENT_RETRIEVER_END] = "retriever_end",
  [CHIME_EVENT_RETRIEVER_ERROR] = "retriever_error",
  [CHIME_EVENT_TEXT] = "text",
  [CHIME_EVENT_RETRY] = "retry",
  [CHIME_EVENT_CUSTOM_EVENT] = "custom_event",
};

const char *
chime_event_type_to_string (ChimeEventType type)
{
  g_return_val_if_fail (type < CHIME_EVENT_N_TYPES, "unknown");
  return event_type_names[type];
}

gboolean
chime_event_type_from_string (const char     *name,
                              ChimeEventType *out_type)
{
  if (g_str_has_prefix (name, "on_"))
    name += 3;
  for (guint i = 0; i < CHIME_EVENT_N_TYPES; i++)
    if (g_str_equal (name, event_type_names[i]))
      {
        *out_type = i;
        return TRUE;
      }
  return FALSE;
}

gboolean
chime_event_type_is_fence (ChimeEventType type)
{
  switch (type)
    {
    case CHIME_EVENT_LLM_NEW_TOKEN:
    case CHIME_EVENT_TEXT:
    case CHIME_EVENT_RETRY:
    case CHIME_EVENT_CUSTOM_EVENT:
    case CHIME_EVENT_AGENT_ACTION:
    case CHIME_EVENT_AGENT_FINISH:
      return FALSE;
    default:
      return TRUE;
    }
}

gboolean
chime_event_type_is_error (ChimeEventType type)
{
  return type == CHIME_EVENT_LLM_ERROR || type == CHIME_EVENT_CHAIN_ERROR ||
         type == CHIME_EVENT_TOOL_ERROR || type == CHIME_EVENT_RETRIEVER_ERROR;
}

/* The wall clock is derived from the monotonic clock, so stamping an event
 * reads one clock, not two. */
static gint64
real_time_offset (void)
{
  static gint64 offset;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      offset = g_get_real_time () - g_get_monotonic_time ();
      g_once_init_leave (&once, 1);
    }
  return offset;
}

ChimeEvent *
chime_event_new (ChimeEventType type,
                 ChimeRunInfo  *run,
                 const char    *inline_text)
{
  gsize text_len = inline_text != NULL ? strlen (inline_text) + 1 : 0;
  ChimeEvent *event = g_malloc0 (sizeof (ChimeEvent) + text_len);

  event->ref_count = 1;
  event->type = type;
  event->run = chime_run_info_ref (run);
  event->monotonic_time = g_get_monotonic_time ();
  event->real_time = event->monotonic_time + real_time_offset ();
  if (inline_text != NULL)
    {
      memcpy (event->inline_text, inline_text, text_len);
      event->token = event->inline_text;
    }
  return event;
}

static void
clear_json (json_t **json)
{
  if (*json != NULL)
    json_decref (*json);
  *json = NULL;
}

static void
chime_event_free (ChimeEvent *event)
{
  g_free (event->text);
  g_free (event->custom_name);
  clear_json (&event->serialized);
  clear_json (&event->chunk);
  clear_json (&event->prompts);
  clear_json (&event->messages);
  clear_json (&event->inputs);
  clear_json (&event->outputs);
  clear_json (&event->response);
  clear_json (&event->data);
  clear_json (&event->kwargs);
  clear_json (&event->fallback_prompts);
  g_clear_error (&event->error);
  chime_run_info_unref (event->run);
  g_free (event);
}

ChimeEvent *
chime_event_ref (ChimeEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);
  g_atomic_int_inc (&event->ref_count);
  return event;
}

void
chime_event_unref (ChimeEvent *event)
{
  g_return_if_fail (event != NULL);
  if (g_atomic_int_dec_and_test (&event->ref_count))
    chime_event_free (event);
}

ChimeEventType
chime_event_get_event_type (ChimeEvent *event)
{
  return event->type;
}

const ChimeRunInfo *
chime_event_get_run (ChimeEvent *event)
{
  return event->run;
}

gint64
chime_event_get_monotonic_time (ChimeEvent *event)
{
  return event->monotonic_time;
}

gint64
chime_event_get_real_time (ChimeEvent *event)
{
  return event->real_time;
}

const char *
chime_event_get_token (ChimeEvent *event)
{
  return event->type == CHIME_EVENT_LLM_NEW_TOKEN ? event->token : NULL;
}

json_t *
chime_event_get_chunk (ChimeEvent *event)
{
  return event->chunk;
}

json_t *
chime_event_get_serialized (ChimeEvent *event)
{
  return event->serialized;
}

json_t *
chime_event_get_prompts (ChimeEvent *event)
{
  if (event->type == CHIME_EVENT_CHAT_MODEL_START)
    return chime_event_get_fallback_prompts (event);
  return event->prompts;
}

json_t *
chime_event_get_messages (ChimeEvent *event)
{
  return event->messages;
}

json_t *
chime_event_get_inputs (ChimeEvent *event)
{
  return event->inputs;
}

json_t *
chime_event_get_outputs (ChimeEvent *event)
{
  return event->outputs;
}

json_t *
chime_event_get_response (ChimeEvent *event)
{
  return event->response;
}

const GError *
chime_event_get_error (ChimeEvent *event)
{
  return event->error;
}

const char *
chime_event_get_text (ChimeEvent *event)
{
  return event->text;
}

const char *
chime_event_get_custom_name (ChimeEvent *event)
{
  return event->custom_name;
}

json_t *
chime_event_get_data (ChimeEvent *event)
{
  return event->data;
}

json_t *
chime_event_get_kwargs (ChimeEvent *event)
{
  return event->kwargs;
}

/* LangChain's get_buffer_string role prefixes. */
static const char *
message_role_prefix (json_t *message)
{
  const char *type = json_string_value (json_object_get (message, "type"));

  if (type == NULL)
    type = json_string_value (json_object_get (message, "role"));
  if (type == NULL)
    return "Unknown";
  if (g_str_equal (type, "human") || g_str_equal (type, "user"))
    return "Human";
  if (g_str_equal (type, "ai") || g_str_equal (type, "assistant"))
    return "AI";
  if (g_str_equal (type, "system"))
    return "System";
  if (g_str_equal (type, "function"))
    return "Function";
  if (g_str_equal (type, "tool"))
    return "Tool";
  if (g_str_equal (type, "chat"))
    {
      const char *role = json_string_value (json_object_get (message, "role"));
      return role != NULL ? role : "Chat";
    }
  return type;
}

/* Appends a message's content: a string, or the text of its text blocks. */
static void
append_message_text (GString *out,
                     json_t  *content)
{
  gsize i;
  json_t *block;

  if (json_is_string (content))
    {
      g_string_append (out, json_string_value (content));
      return;
    }
  json_array_foreach (content, i, block)
    {
      if (json_is_string (block))
        g_string_append (out, json_string_value (block));
      else
        {
          const char *text = json_string_value (json_object_get (block, "text"));
          if (text != NULL)
            g_string_append (out, text);
        }
    }
}

char *
chime_messages_to_buffer_string (json_t *messages)
{
  GString *out = g_string_new (NULL);
  gsize i;
  json_t *message;

  json_array_foreach (messages, i, message)
    {
      if (i > 0)
        g_string_append_c (out, '\n');
      g_string_append_printf (out, "%s: ", message_role_prefix (message));
      append_message_text (out, json_object_get (message, "content"));
    }
  return g_string_free (out, FALSE);
}

json_t *
chime_event_get_fallback_prompts (ChimeEvent *event)
{
  json_t *prompts = g_atomic_pointer_get (&event->fallback_prompts);
  gsize i;
  json_t *message_list;

  if (prompts != NULL || event->messages == NULL)
    return prompts;

  /* messages is a list of message lists; LangChain calls on_llm_start once
   * per list, and chime emits one list per run, so this is one prompt. */
  prompts = json_array ();
  json_array_foreach (event->messages, i, message_list)
    {
      g_autofree char *buffer = chime_messages_to_buffer_string (message_list);
      json_array_append_new (prompts, json_string (buffer));
    }

  if (!g_atomic_pointer_compare_and_exchange (&event->fallback_prompts, NULL, prompts))
    {
      /* Another thread won the race; use its copy. */
      json_decref (prompts);
      prompts = g_atomic_pointer_get (&event->fallback_prompts);
    }
  return prompts;
}
