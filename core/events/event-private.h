/* The event object behind the public accessors, and the run facts it
 * points to. Private to libchime. */
#pragma once

#include <chime/event.h>

typedef struct _ChimeTrace ChimeTrace;

struct _ChimeRunInfo {
  gint          ref_count;
  ChimeRunId    id;
  ChimeRunId    parent_id;
  gboolean      has_parent;
  ChimeRunInfo *parent;      /* owned; NULL for a root or an unknown parent */
  ChimeRunKind  kind;
  char         *run_type;
  char         *name;
  char        **tags;
  json_t       *metadata;
  gint64        start_time;
  ChimeTrace   *trace;       /* owned; shared by the whole run tree */
  /* The highest event number given out for the run (atomic: a run's
   * events may be prepared on several threads, which take numbers in
   * blocks, see event.c). */
  guint64       n_events;
  /* chime_run_info_to_wire() as compact JSON text, made on first use by
   * chime_event_append_transport() (atomic). */
  char         *wire_text;
};

/* What events other than tokens carry. Tokens are the hot path: they
 * carry only their text and chunk and skip this allocation. */
typedef struct {
  char          *text;
  char          *custom_name;
  json_t        *serialized;
  json_t        *prompts;
  json_t        *messages;
  json_t        *inputs;
  json_t        *outputs;
  json_t        *response;
  json_t        *data;
  json_t        *kwargs;
  GError        *error;
  /* chat_model_start only: the messages rendered for the llm_start
   * fallback, built once on first use (atomic pointer). */
  json_t        *fallback_prompts;
} ChimeEventPayload;

/* Room for the token text inside the event itself; longer tokens get their
 * own allocation. An event is two cache lines, allocated on a line
 * boundary, and the text begins in the first: a token of up to 7 bytes
 * is written to one line only. Each line an emitter writes was read by
 * the handler's core a ring lap earlier and must be taken back from it,
 * which is most of what an event costs on the ring (docs/benchmarks.md,
 * "The third round"). */
#define CHIME_EVENT_INLINE_TEXT 72
#define CHIME_EVENT_ALIGN 64

struct _ChimeEvent {
  gint               ref_count;
  ChimeEventType     type : 16;
  /* The run_inline handlers have had it (an emission that found the ring
   * full is retried without calling them twice). */
  guint              inline_done : 1;
  /* Not 0: the event's memory is part of a slab of 1 << slab_order bytes
   * (event-slab.c). */
  guint              slab_order : 5;
  ChimeRunInfo      *run;        /* owned */
  gint64             monotonic_time;
  /* Its place among the run's events (chime_event_get_sequence()). */
  guint64            sequence;
  /* inline_text, or an allocation of its own when it did not fit. */
  const char        *token;
  json_t            *chunk;
  ChimeEventPayload *payload;    /* NULL for llm_new_token */
  char               inline_text[CHIME_EVENT_INLINE_TEXT];
} __attribute__ ((aligned (CHIME_EVENT_ALIGN)));

G_STATIC_ASSERT (sizeof (ChimeEvent) == 2 * CHIME_EVENT_ALIGN);

/* Creates an event of @type for @run (a new reference to @run is taken),
 * stamped now. @token (may be NULL) is copied and becomes the token.
 * Events are recycled through a small per-thread cache, so the token path
 * does not go to malloc. */
ChimeEvent *chime_event_new (ChimeEventType  type,
                             ChimeRunInfo   *run,
                             const char     *token);

/* g_get_real_time() - g_get_monotonic_time(), measured once. */
gint64 chime_event_real_time_offset (void);

/* Drops the ring's reference to @event when it reuses the event's slot:
 * without a locked instruction when it is the only one left (a handler
 * may keep its own, chime_event_ref()). */
void chime_event_unref_from_ring (ChimeEvent *event);

/* Returns the references to @run (NULL: to any run) that this thread's
 * event cache keeps for the next events of the run (event.c). Called when
 * a run is finished, so that its facts are freed then. */
void chime_event_cache_drop_run (ChimeRunInfo *run);

/* The messages of a chat_model_start rendered as LangChain's
 * get_buffer_string does ("Human: hi\nAI: hello"), as a one-element JSON
 * array; computed once per event, thread-safe. */
json_t *chime_event_get_fallback_prompts (ChimeEvent *event);

/* Renders one list of messages as get_buffer_string does. */
char *chime_messages_to_buffer_string (json_t *messages);

/* Sets a JSON field of an event under construction to a new reference of
 * @value: callers lend their JSON, the event keeps its own reference
 * (events are immutable once emitted). */
static inline void
chime_event_set_json (json_t **field,
                       json_t  *value)
{
  if (value != NULL)
    *field = json_incref (value);
}

/* A token event of @run: @token (not NULL) copied, a reference to @chunk
 * (may be NULL) taken. */
static inline ChimeEvent *
chime_event_new_token (ChimeRunInfo *run,
                       const char   *token,
                       json_t       *chunk)
{
  ChimeEvent *event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, run, token);

  chime_event_set_json (&event->chunk, chunk);
  return event;
}

ChimeRunInfo *chime_run_info_ref   (ChimeRunInfo *info);
void          chime_run_info_unref (ChimeRunInfo *info);

/* Events whose delivery is a fence in the fenced mode: start, end, error.
 * Every other type is one of these (a bit each); inline, because the
 * fenced mode asks for every event. */
#define CHIME_EVENT_NOT_FENCES                                                     \
  ((G_GUINT64_CONSTANT (1) << CHIME_EVENT_LLM_NEW_TOKEN) |                         \
   (G_GUINT64_CONSTANT (1) << CHIME_EVENT_TEXT) |                                  \
   (G_GUINT64_CONSTANT (1) << CHIME_EVENT_RETRY) |                                 \
   (G_GUINT64_CONSTANT (1) << CHIME_EVENT_CUSTOM_EVENT) |                          \
   (G_GUINT64_CONSTANT (1) << CHIME_EVENT_AGENT_ACTION) |                          \
   (G_GUINT64_CONSTANT (1) << CHIME_EVENT_AGENT_FINISH))

static inline gboolean
chime_event_type_is_fence (ChimeEventType type)
{
  return ((CHIME_EVENT_NOT_FENCES >> type) & 1) == 0;
}
/* Error events are never refused because of an earlier handler failure.
 * Inline: every emit asks, twice. */
static inline gboolean
chime_event_type_is_error (ChimeEventType type)
{
  return type == CHIME_EVENT_LLM_ERROR || type == CHIME_EVENT_CHAIN_ERROR ||
         type == CHIME_EVENT_TOOL_ERROR || type == CHIME_EVENT_RETRIEVER_ERROR;
}
