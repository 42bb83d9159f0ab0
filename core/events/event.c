/* Events: construction, reference counting and the public accessors. */
#include "config.h"

#include "event-private.h"
#include "event-clock.h"
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

/* A per-thread stack of free events. In a pipeline the emitting thread
 * both creates events and frees them (when it reuses their ring slot), so
 * recycling them here keeps the token path away from malloc.
 *
 * The cache also keeps references to one run: an event freed here gives
 * its run reference to the cache instead of dropping it, and the next
 * event of that run created here takes it back. In the steady state of a
 * stream the emitter frees an event of the run for every one it creates,
 * so the run's counter is not touched per event: a locked increment and
 * decrement there cost the ring more than the rest of an emit together
 * (docs/benchmarks.md). The references are returned when the thread
 * moves to another run, when the run is finished on this thread
 * (chime_event_cache_drop_run) and when the thread exits. */
#define EVENT_CACHE_SIZE 256

/* Event numbers (chime_event_get_sequence) are taken from the run's
 * counter in blocks, for the same reason: a locked add per event on the
 * emitter cost row 1 of the benchmark 20 ns of its 85. A thread's first
 * event of a run takes one number, and each refill while the thread stays
 * on that run takes twice as many, up to SEQUENCE_BLOCK_MAX, so a short
 * run numbers its events 1, 2, 3 ... and a stream pays one add per 64
 * tokens. Numbers left in a block when the thread moves to another run
 * are skipped. The block is keyed by the run's id, not its address: a
 * run freed and another made at the same address must not use it. */
#define SEQUENCE_BLOCK_MAX 64

typedef struct {
  guint         n;
  ChimeRunInfo *run;        /* NULL, or the run the cache holds references of */
  gint          run_refs;
  ChimeRunId    seq_run;    /* the run whose numbers seq_next..seq_end are */
  guint64       seq_next;
  guint64       seq_end;    /* seq_next == seq_end: none left */
  guint64       seq_block;  /* the size of the last block taken */
  ChimeEvent   *events[EVENT_CACHE_SIZE];
} EventCache;

/* Gives back @n references to @info at once. */
static void
run_info_drop_refs (ChimeRunInfo *info,
                    gint          n)
{
  if (n <= 0)
    return;
  if (n > 1)
    g_atomic_int_add (&info->ref_count, -(n - 1));
  chime_run_info_unref (info);
}

static void
event_cache_drop_run_refs (EventCache *cache)
{
  ChimeRunInfo *run = cache->run;
  gint n = cache->run_refs;

  cache->run = NULL;
  cache->run_refs = 0;
  if (run != NULL)
    run_info_drop_refs (run, n);
}

/* The thread's cache, without a call: GPrivate only frees it at thread
 * exit. */
static __thread EventCache *thread_cache __attribute__ ((tls_model ("initial-exec")));

/* An event on a line boundary, from malloc itself: posix_memalign costs
 * some 600 instructions an event and splits the heap around each, and a
 * fresh ring's first lap makes an event for every slot (row 2a of the
 * benchmark, 20,000 tokens in a fresh process, paid 100 instructions a
 * token for it). The offset is below 64: it fits 6 bits. */
static ChimeEvent *
event_alloc (void)
{
  char *block = g_malloc (sizeof (ChimeEvent) + CHIME_EVENT_ALIGN - 1);
  gsize offset = (gsize) (-(guintptr) block & (CHIME_EVENT_ALIGN - 1));
  ChimeEvent *event = (ChimeEvent *) (gpointer) (block + offset);

  event->alloc_offset = offset;
  return event;
}

static void
event_release (ChimeEvent *event)
{
  g_free ((char *) event - event->alloc_offset);
}

static void
event_cache_free (gpointer data)
{
  EventCache *cache = data;

  if (thread_cache == cache)
    thread_cache = NULL;
  event_cache_drop_run_refs (cache);
  for (guint i = 0; i < cache->n; i++)
    event_release (cache->events[i]);
  g_free (cache);
}

static GPrivate event_cache_key = G_PRIVATE_INIT (event_cache_free);

static EventCache *
event_cache (void)
{
  EventCache *cache = thread_cache;

  if (G_UNLIKELY (cache == NULL))
    {
      cache = g_new0 (EventCache, 1);
      g_private_set (&event_cache_key, cache);
      thread_cache = cache;
    }
  return cache;
}

/* A reference to @run for a new event, from the cache when it has one. */
static ChimeRunInfo *
event_cache_take_run (EventCache   *cache,
                      ChimeRunInfo *run)
{
  if (G_LIKELY (cache->run == run && cache->run_refs > 0))
    {
      cache->run_refs--;
      return run;
    }
  return chime_run_info_ref (run);
}

/* event_cache_take_sequence when the block is used up or of another run. */
static guint64
event_cache_refill_sequence (EventCache   *cache,
                             ChimeRunInfo *run,
                             gboolean      same_run)
{
  if (same_run)
    cache->seq_block = MIN (cache->seq_block * 2, SEQUENCE_BLOCK_MAX);
  else
    {
      cache->seq_run = run->id;
      cache->seq_block = 1;
    }
  cache->seq_end = __atomic_add_fetch (&run->n_events, cache->seq_block, __ATOMIC_RELAXED) + 1;
  cache->seq_next = cache->seq_end - cache->seq_block;
  return cache->seq_next++;
}

/* The next number of an event of @run made on this thread. Inline: once
 * per token. */
static inline guint64
event_cache_take_sequence (EventCache   *cache,
                           ChimeRunInfo *run)
{
  gboolean same_run = memcmp (&cache->seq_run, &run->id, sizeof run->id) == 0;

  if (G_LIKELY (same_run && cache->seq_next < cache->seq_end))
    return cache->seq_next++;
  return event_cache_refill_sequence (cache, run, same_run);
}

/* Keeps the run reference of a freed event. */
static void
event_cache_give_run (EventCache   *cache,
                      ChimeRunInfo *run)
{
  if (G_LIKELY (cache->run == run))
    {
      cache->run_refs++;
      return;
    }
  event_cache_drop_run_refs (cache);
  cache->run = run;
  cache->run_refs = 1;
}

void
chime_event_cache_drop_run (ChimeRunInfo *run)
{
  EventCache *cache = thread_cache;

  if (cache != NULL && (run == NULL || cache->run == run))
    event_cache_drop_run_refs (cache);
}

ChimeEvent *
chime_event_new (ChimeEventType type,
                 ChimeRunInfo  *run,
                 const char    *token)
{
  EventCache *cache = event_cache ();
  ChimeEvent *event = cache->n > 0 ? cache->events[--cache->n]
                                    : event_alloc ();

  event->ref_count = 1;
  event->type = type;
  event->inline_done = FALSE;
  event->run = event_cache_take_run (cache, run);
  event->monotonic_time = chime_event_clock_now ();
  event->sequence = event_cache_take_sequence (cache, run);
  event->token = NULL;
  event->chunk = NULL;
  event->payload = type == CHIME_EVENT_LLM_NEW_TOKEN ? NULL : g_new0 (ChimeEventPayload, 1);
  if (token != NULL)
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
  return event;
}

/* The ring's event of a slot made the event of a new token of @run in
 * place: the stream's events then stay where the ring is, each written
 * once a lap, and a token costs no trip through the cache, no run
 * reference and no free. */
ChimeEvent *
chime_event_renew_token (ChimeEvent   *old,
                         ChimeRunInfo *run,
                         const char   *token)
{
  EventCache *cache;
  gsize i = 0;

  /* Ours alone (acquire: as chime_event_unref_from_ring), a token of the
   * same run, the token short: else the long way. */
  if (old == NULL || __atomic_load_n (&old->ref_count, __ATOMIC_ACQUIRE) != 1 ||
      old->run != run || old->payload != NULL || old->token != old->inline_text)
    {
      if (old != NULL)
        chime_event_unref_from_ring (old);
      return chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, run, token);
    }
  while (i < sizeof old->inline_text && (old->inline_text[i] = token[i]) != '\0')
    i++;
  if (G_UNLIKELY (i == sizeof old->inline_text))
    old->token = g_memdup2 (token, strlen (token) + 1);
  /* A handler may have had the chunk built (chime_event_get_chunk). */
  if (G_UNLIKELY (old->chunk != NULL))
    {
      json_decref (old->chunk);
      old->chunk = NULL;
    }
  cache = event_cache ();
  old->inline_done = FALSE;
  old->monotonic_time = chime_event_clock_now ();
  old->sequence = event_cache_take_sequence (cache, run);
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
  EventCache *cache = event_cache ();

  /* A token event has neither (tokens fit inline_text): no call then. */
  if (G_UNLIKELY (event->token != NULL && event->token != event->inline_text))
    g_free ((char *) event->token);
  if (event->chunk != NULL)
    json_decref (event->chunk);
  if (event->payload != NULL)
    payload_free (event->payload);
  event_cache_give_run (cache, event->run);
  if (cache->n < EVENT_CACHE_SIZE)
    cache->events[cache->n++] = event;
  else
    event_release (event);
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
