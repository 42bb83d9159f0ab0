/* Events: construction, reference counting and the public accessors. */
#include "config.h"

#include "event-private.h"
#include "event-cache.h"
#include "event-wire.h"
#include "llm-result.h"
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
chime_event_type_ends_run (ChimeEventType type)
{
  switch (type)
    {
    case CHIME_EVENT_LLM_END:
    case CHIME_EVENT_LLM_ERROR:
    case CHIME_EVENT_CHAIN_END:
    case CHIME_EVENT_CHAIN_ERROR:
    case CHIME_EVENT_TOOL_END:
    case CHIME_EVENT_TOOL_ERROR:
    case CHIME_EVENT_RETRIEVER_END:
    case CHIME_EVENT_RETRIEVER_ERROR:
      return TRUE;
    default:
      return FALSE;
    }
}

/* The wall clock is derived from the monotonic clock, so stamping an event
 * reads one clock, not two. */
gint64
chime_event_real_time_offset (void)
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

/* @event's text becomes a copy of @token: inline when it fits. */
static void
copy_token (ChimeEvent *event,
            const char *token)
{
  gsize i = 0;

  /* Tokens are a few bytes: copying up to the NUL costs less than
   * strlen and memcpy, two calls per token. */
  while (i < sizeof event->inline_text && (event->inline_text[i] = token[i]) != '\0')
    i++;
  if (G_LIKELY (i < sizeof event->inline_text))
    event->token = event->inline_text;
  else
    event->token = g_memdup2 (token, strlen (token) + 1);
}

ChimeEvent *
chime_event_new (ChimeEventType type,
                 ChimeRunInfo  *run,
                 const char    *token)
{
  ChimeEventCache *cache = chime_event_cache_get ();
  ChimeEvent *event = cache->n > 0 ? cache->events[--cache->n]
                                    : chime_event_alloc ();

  event->ref_count = 1;
  event->type = type;
  event->inline_done = FALSE;
  event->run = chime_event_cache_take_run (cache, run);
  event->monotonic_time = chime_event_clock_now ();
  event->sequence = chime_event_cache_take_sequence (cache, run);
  event->token = NULL;
  event->chunk = NULL;
  event->payload = type == CHIME_EVENT_LLM_NEW_TOKEN ? NULL : g_new0 (ChimeEventPayload, 1);
  if (token != NULL)
    copy_token (event, token);
  return event;
}

ChimeEvent *
chime_event_remake_token (ChimeEvent   *old,
                          ChimeRunInfo *run,
                          const char   *token)
{
  ChimeEventCache *cache;

  /* Acquire: as chime_event_unref_from_ring. */
  if (old == NULL || __atomic_load_n (&old->ref_count, __ATOMIC_ACQUIRE) != 1 ||
      old->payload != NULL)
    {
      if (old != NULL)
        chime_event_unref_from_ring (old);
      return chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, run, token);
    }
  cache = chime_event_cache_get ();
  if (old->token != old->inline_text)
    g_free ((char *) old->token);
  if (old->chunk != NULL)
    {
      json_decref (old->chunk);
      old->chunk = NULL;
    }
  if (old->run != run)
    {
      chime_event_cache_give_run (cache, old->run);
      old->run = chime_event_cache_take_run (cache, run);
    }
  old->inline_done = FALSE;
  copy_token (old, token);
  old->monotonic_time = chime_event_clock_now ();
  old->sequence = chime_event_cache_take_sequence (cache, run);
  return old;
}

static void
clear_json (json_t **json)
{
  if (*json != NULL)
    json_decref (*json);
  *json = NULL;
}

static void
payload_free (ChimeEventPayload *payload)
{
  g_free (payload->text);
  g_free (payload->custom_name);
  clear_json (&payload->serialized);
  clear_json (&payload->prompts);
  clear_json (&payload->messages);
  clear_json (&payload->inputs);
  clear_json (&payload->outputs);
  clear_json (&payload->response);
  clear_json (&payload->data);
  clear_json (&payload->kwargs);
  clear_json (&payload->fallback_prompts);
  g_clear_error (&payload->error);
  g_free (payload);
}

static void
chime_event_free (ChimeEvent *event)
{
  ChimeEventCache *cache = chime_event_cache_get ();

  /* A token event has neither (tokens fit inline_text): no call then. */
  if (G_UNLIKELY (event->token != NULL && event->token != event->inline_text))
    g_free ((char *) event->token);
  if (event->chunk != NULL)
    json_decref (event->chunk);
  if (event->payload != NULL)
    payload_free (event->payload);
  chime_event_cache_give_run (cache, event->run);
  /* An event of a slab is not recycled: one left in a cache would keep
   * its whole block, and a slot's events are renewed in place anyway. */
  if (cache->n < EVENT_CACHE_SIZE && event->slab_order == 0)
    cache->events[cache->n++] = event;
  else
    chime_event_release (event);
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

void
chime_event_unref_from_ring (ChimeEvent *event)
{
  /* Acquire pairs with the decrements of the other owners: once the count
   * reads 1, the last of them is done with the event, and nobody can take
   * a new reference but from ours. */
  if (G_LIKELY (__atomic_load_n (&event->ref_count, __ATOMIC_ACQUIRE) == 1))
    chime_event_free (event);
  else
    chime_event_unref (event);
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

guint64
chime_event_get_sequence (ChimeEvent *event)
{
  return event->sequence;
}

void
chime_event_get_id (ChimeEvent *event,
                    char        out[CHIME_EVENT_ID_LEN])
{
  gsize length;

  /* By hand: printf was most of this, once per published event. */
  chime_run_id_to_string (&event->run->id, out);
  length = strlen (out);
  out[length++] = ':';
  length += chime_wire_format_int64 (out + length, (gint64) event->sequence);
  out[length] = '\0';
}

gint64
chime_event_get_real_time (ChimeEvent *event)
{
  return event->monotonic_time + chime_event_real_time_offset ();
}

const char *
chime_event_get_token (ChimeEvent *event)
{
  return event->type == CHIME_EVENT_LLM_NEW_TOKEN ? event->token : NULL;
}

json_t *
chime_event_get_chunk (ChimeEvent *event)
{
  json_t *chunk = g_atomic_pointer_get (&event->chunk);
  g_autofree char *message_id = NULL;

  if (chunk != NULL || event->type != CHIME_EVENT_LLM_NEW_TOKEN)
    return chunk;
  /* Built on first use, not per token: most handlers never look. */
  message_id = chime_llm_message_id (&event->run->id);
  chunk = chime_llm_chunk_build (event->token, message_id);
  if (!g_atomic_pointer_compare_and_exchange (&event->chunk, NULL, chunk))
    {
      json_decref (chunk);
      chunk = g_atomic_pointer_get (&event->chunk);
    }
  return chunk;
}

json_t *
chime_event_get_serialized (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->serialized : NULL;
}

json_t *
chime_event_get_prompts (ChimeEvent *event)
{
  if (event->type == CHIME_EVENT_CHAT_MODEL_START)
    return chime_event_get_fallback_prompts (event);
  return event->payload != NULL ? event->payload->prompts : NULL;
}

json_t *
chime_event_get_messages (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->messages : NULL;
}

json_t *
chime_event_get_inputs (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->inputs : NULL;
}

json_t *
chime_event_get_outputs (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->outputs : NULL;
}

json_t *
chime_event_get_response (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->response : NULL;
}

const GError *
chime_event_get_error (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->error : NULL;
}

const char *
chime_event_get_text (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->text : NULL;
}

const char *
chime_event_get_custom_name (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->custom_name : NULL;
}

json_t *
chime_event_get_data (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->data : NULL;
}

json_t *
chime_event_get_kwargs (ChimeEvent *event)
{
  return event->payload != NULL ? event->payload->kwargs : NULL;
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
  ChimeEventPayload *payload = event->payload;
  json_t *prompts;
  gsize i;
  json_t *message_list;

  if (payload == NULL || payload->messages == NULL)
    return NULL;
  prompts = g_atomic_pointer_get (&payload->fallback_prompts);
  if (prompts != NULL)
    return prompts;

  /* messages is a list of message lists; LangChain calls on_llm_start once
   * per list, and chime emits one list per run, so this is one prompt. */
  prompts = json_array ();
  json_array_foreach (payload->messages, i, message_list)
    {
      g_autofree char *buffer = chime_messages_to_buffer_string (message_list);
      json_array_append_new (prompts, json_string (buffer));
    }

  if (!g_atomic_pointer_compare_and_exchange (&payload->fallback_prompts, NULL, prompts))
    {
      /* Another thread won the race; use its copy. */
      json_decref (prompts);
      prompts = g_atomic_pointer_get (&payload->fallback_prompts);
    }
  return prompts;
}
