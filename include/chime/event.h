/* chime — events: what a pipeline reports to its handlers.
 *
 * An event is immutable once emitted and reference-counted: every handler
 * that receives it shares the same object. Handlers read it through the
 * accessors below; a handler that keeps an event beyond its callback takes a
 * reference with chime_event_ref().
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/macros.h>

G_BEGIN_DECLS

/**
 * ChimeEventType:
 *
 * The 19 LangChain callback events, in the order of LangChain's
 * BaseCallbackHandler. chime_event_type_to_string() gives the snake_case
 * name without the `on_` prefix ("llm_new_token").
 */
typedef enum {
  CHIME_EVENT_LLM_START,
  CHIME_EVENT_CHAT_MODEL_START,
  CHIME_EVENT_LLM_NEW_TOKEN,
  CHIME_EVENT_LLM_END,
  CHIME_EVENT_LLM_ERROR,
  CHIME_EVENT_CHAIN_START,
  CHIME_EVENT_CHAIN_END,
  CHIME_EVENT_CHAIN_ERROR,
  CHIME_EVENT_TOOL_START,
  CHIME_EVENT_TOOL_END,
  CHIME_EVENT_TOOL_ERROR,
  CHIME_EVENT_AGENT_ACTION,
  CHIME_EVENT_AGENT_FINISH,
  CHIME_EVENT_RETRIEVER_START,
  CHIME_EVENT_RETRIEVER_END,
  CHIME_EVENT_RETRIEVER_ERROR,
  CHIME_EVENT_TEXT,
  CHIME_EVENT_RETRY,
  CHIME_EVENT_CUSTOM_EVENT,
  CHIME_EVENT_N_TYPES
} ChimeEventType;

/**
 * CHIME_STREAM_EVENT:
 *
 * The name of the custom event that carries a chunk of a run's output
 * stream, `{"chunk": ...}`, on that run: what LangChain's astream_events
 * taps as on_{run_type}_stream (on_parser_stream, on_chain_stream).
 * LangChain has no callback for it. The runtime delivers custom events of
 * this name only to handlers whose plugin sets CHIME_PLUGIN_WANTS_STREAM
 * (the astream_events plugin does, and maps them back); chime's pipelines
 * emit them only when such a handler exists.
 */
#define CHIME_STREAM_EVENT "chime.stream"

/**
 * ChimeRunKind:
 *
 * Which run manager a run belongs to. The finer LangChain `run_type`
 * string ("prompt", "parser", "chat_model", ...) is
 * chime_run_info_get_run_type().
 */
typedef enum {
  CHIME_RUN_KIND_CHAIN,
  CHIME_RUN_KIND_LLM,
  CHIME_RUN_KIND_TOOL,
  CHIME_RUN_KIND_RETRIEVER,
} ChimeRunKind;

typedef struct _ChimeEvent ChimeEvent;
typedef struct _ChimeRunInfo ChimeRunInfo;

/* A run id: a UUIDv7, 16 bytes, time-ordered. */
typedef struct {
  guint8 bytes[16];
} ChimeRunId;

/* "xxxxxxxx-xxxx-7xxx-xxxx-xxxxxxxxxxxx" plus the terminating NUL. */
#define CHIME_RUN_ID_STRING_LEN 37

/* The snake_case name of @type without "on_" ("llm_new_token"). */
CHIME_API const char *chime_event_type_to_string   (ChimeEventType  type);
/* Whether @type ends its run: an end or an error of a chain, model, tool
 * or retriever. No event of the run comes after it. */
CHIME_API gboolean    chime_event_type_ends_run    (ChimeEventType  type);
/* The type named @name (as chime_event_type_to_string() gives it); FALSE
 * for an unknown name. */
CHIME_API gboolean    chime_event_type_from_string (const char     *name,
                                                    ChimeEventType *out_type);

/* Takes a reference; a handler that keeps an event beyond its call must. */
CHIME_API ChimeEvent *chime_event_ref   (ChimeEvent *event);
/* Drops a reference. */
CHIME_API void        chime_event_unref (ChimeEvent *event);

/* Which of the 19 events this is. */
CHIME_API ChimeEventType      chime_event_get_event_type     (ChimeEvent *event);
/* The facts of the event's run. */
CHIME_API const ChimeRunInfo *chime_event_get_run            (ChimeEvent *event);
/* g_get_monotonic_time() when the event was emitted (µs). */
CHIME_API gint64              chime_event_get_monotonic_time (ChimeEvent *event);
/* g_get_real_time() when the event was emitted (µs since the epoch). */
CHIME_API gint64              chime_event_get_real_time      (ChimeEvent *event);

/* The event's number among the events of its run, unique in the run: from
 * 1 (the run's start event) upwards in the order they were made on each
 * thread. Numbers are not dense: those of events made but never emitted
 * are skipped, and so are some when a thread moves between runs (it takes
 * numbers in blocks); events of one run made on several threads at once
 * are numbered in no order between the threads. An event rebuilt in another process
 * (isolation = process, `chime consume`) keeps the number it was emitted
 * with, so (run id, sequence) names one event wherever it is handled. */
CHIME_API guint64             chime_event_get_sequence       (ChimeEvent *event);

/* The length of chime_event_get_id()'s text, its NUL included. */
#define CHIME_EVENT_ID_LEN (CHIME_RUN_ID_STRING_LEN + 21)
/* Writes the event's stable id, "RUN_ID:SEQUENCE"
 * ("01a20c03-718d-725f-a177-fbc10d6726a6:42"): the same for every copy of
 * the event (a re-publish, a redelivery), different for any other event. */
CHIME_API void                chime_event_get_id             (ChimeEvent *event,
                                                              char        out[CHIME_EVENT_ID_LEN]);

/* llm_new_token: the token text. NULL for other events. */
CHIME_API const char   *chime_event_get_token       (ChimeEvent *event);
/* llm_new_token: the chunk, a ChatGenerationChunk as JSON
 * ({"text", "message": {"content", "type": "AIMessageChunk", "id", ...},
 * "type": "ChatGenerationChunk"}); built on first use when the emitter
 * gave none. NULL for other events. */
CHIME_API json_t       *chime_event_get_chunk       (ChimeEvent *event);
/* *_start: the serialized description of the runnable (may be NULL). */
CHIME_API json_t       *chime_event_get_serialized  (ChimeEvent *event);
/* llm_start: JSON array of prompt strings (one prompt per call, as
 * LangChain). chat_model_start: the messages rendered "Role: content" as
 * LangChain's get_buffer_string does, one string per message list; this
 * is what a handler receives through the llm_start fallback. */
CHIME_API json_t       *chime_event_get_prompts     (ChimeEvent *event);
/* chat_model_start: [[{"type": "human", "content": "..."}, ...]]. */
CHIME_API json_t       *chime_event_get_messages    (ChimeEvent *event);
/* chain_start / tool_start: the inputs. */
CHIME_API json_t       *chime_event_get_inputs      (ChimeEvent *event);
/* chain_end / tool_end: the outputs. */
CHIME_API json_t       *chime_event_get_outputs     (ChimeEvent *event);
/* llm_end: the LLMResult; llm_error: the partial LLMResult, if any. */
CHIME_API json_t       *chime_event_get_response    (ChimeEvent *event);
/* *_error: the error. */
CHIME_API const GError *chime_event_get_error       (ChimeEvent *event);
/* text: the text; tool_start: input_str; retriever_start: the query. */
CHIME_API const char   *chime_event_get_text        (ChimeEvent *event);
/* custom_event: the user's event name. */
CHIME_API const char   *chime_event_get_custom_name (ChimeEvent *event);
/* custom_event: data; agent_action: action; agent_finish: finish;
 * retriever_end: documents; retry: the retry state. */
CHIME_API json_t       *chime_event_get_data        (ChimeEvent *event);
/* Extra keyword arguments LangChain passes (invocation_params, color,
 * batch_size, ...), as a JSON object, or NULL. */
CHIME_API json_t       *chime_event_get_kwargs      (ChimeEvent *event);

/* The event as one JSON object (new reference), e.g.
 * {"event": "llm_new_token", "run_id": "...", "parent_run_id": null,
 *  "run_type": "chat_model", "name": "...", "tags": [...],
 *  "metadata": {...}, "time": "2026-...Z", "token": "Why", ...}. */
CHIME_API json_t       *chime_event_to_json         (ChimeEvent *event);
/* The event as it travels between processes (the `jetstream` plugin's
 * messages, read back by `chime consume`): every fact an accessor returns,
 * its run's ancestors, kind and start time, its error's domain and code,
 * its sequence, and its wall-clock time as "real_time" (µs since the
 * epoch). A new reference. docs/events.md has the form. */
CHIME_API json_t       *chime_event_to_transport    (ChimeEvent *event);
/* Appends chime_event_to_transport()'s object to @out as compact JSON
 * text, without building it for a token (its run is written once per
 * run and kept): what a program sending every token to another process
 * writes. */
CHIME_API void          chime_event_append_transport (ChimeEvent *event,
                                                      GString    *out);
/* The event chime_event_to_transport() made @transport of, a new reference
 * whose accessors return what the original's did (its monotonic time is
 * this machine's clock at the original's real time); NULL with @error set
 * when @transport is not that form. */
CHIME_API ChimeEvent   *chime_event_from_transport  (json_t      *transport,
                                                     GError     **error);

/**
 * ChimeTransportReader: reads transport forms as text, one after another
 * (the lines of a `jetstream` message). It keeps the last run it read: a
 * token that chime_event_append_transport() wrote, of that run, is read
 * without a JSON tree and shares that run with the events before it.
 */
typedef struct _ChimeTransportReader ChimeTransportReader;

/* A reader that knows no run yet. */
CHIME_API ChimeTransportReader *chime_transport_reader_new  (void);
/* Frees @reader and drops its run; the events it made keep theirs. */
CHIME_API void                  chime_transport_reader_free (ChimeTransportReader *reader);
/* The event whose transport form is the @length bytes at @text (compact
 * or not), a new reference, as chime_event_from_transport() would make
 * it; NULL with @error set when the text is not JSON or not that form. */
CHIME_API ChimeEvent           *chime_transport_reader_read (ChimeTransportReader *reader,
                                                             const char           *text,
                                                             gsize                 length,
                                                             GError              **error);
/* An error as events carry it in JSON, {"message", "domain", "code"}, or
 * null for NULL. New reference. */
CHIME_API json_t       *chime_error_to_json         (const GError *error);

/* The run's id. Facts of a run are shared by all events of that run. */
CHIME_API const ChimeRunId   *chime_run_info_get_id         (const ChimeRunInfo *info);
/* The parent run's id; NULL for a root run. */
CHIME_API const ChimeRunId   *chime_run_info_get_parent_id  (const ChimeRunInfo *info);
/* The parent run's facts, or NULL for a root run. */
CHIME_API const ChimeRunInfo *chime_run_info_get_parent     (const ChimeRunInfo *info);
/* Which run manager the run belongs to. */
CHIME_API ChimeRunKind        chime_run_info_get_kind       (const ChimeRunInfo *info);
/* "chain", "prompt", "parser", "llm", "chat_model", "tool", "retriever" */
CHIME_API const char         *chime_run_info_get_run_type   (const ChimeRunInfo *info);
/* The run's name ("RunnableSequence", "ChatOpenAI", ...). */
CHIME_API const char         *chime_run_info_get_name       (const ChimeRunInfo *info);
/* The run's tags, NULL-terminated; never NULL. */
CHIME_API const char * const *chime_run_info_get_tags       (const ChimeRunInfo *info);
/* The run's metadata, a JSON object; never NULL. */
CHIME_API json_t             *chime_run_info_get_metadata   (const ChimeRunInfo *info);
/* g_get_monotonic_time() at the run's start event. */
CHIME_API gint64              chime_run_info_get_start_time (const ChimeRunInfo *info);

/* Writes @id as "xxxxxxxx-xxxx-7xxx-xxxx-xxxxxxxxxxxx". */
CHIME_API void     chime_run_id_to_string (const ChimeRunId *id,
                                           char              out[CHIME_RUN_ID_STRING_LEN]);
/* Whether two run ids are the same. */
CHIME_API gboolean chime_run_id_equal     (const ChimeRunId *a,
                                           const ChimeRunId *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeTransportReader, chime_transport_reader_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeEvent, chime_event_unref)

/* g_autoptr (json_t) for jansson values; define CHIME_NO_JSON_AUTOPTR
 * if your code defines it already. */
#ifndef CHIME_NO_JSON_AUTOPTR
G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)
#endif

G_END_DECLS
