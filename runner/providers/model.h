/* Chat models: a `[model NAME]` section, and the streaming calls made to it.
 *
 * A model streams on the runtime's main context and reports through
 * ChimeModelCallbacks. The consumer of a stream can pause it (return FALSE
 * from on_chunk) and resume it later: that is how handlers that hold up a
 * run (awaited/fenced delivery, a full queue) put back-pressure on the
 * model instead of buffering tokens without bound.
 *
 * Messages are LangChain's, as JSON: {"type": "system" | "human" |
 * "ai" | "tool", "content": TEXT}; an "ai" message that called tools
 * adds "tool_calls": [{"name", "args": OBJECT, "id", "type":
 * "tool_call"}], and a "tool" message (a tool's result) adds
 * "tool_call_id" and "name". Tools offered to the model are
 * [{"name", "description", "parameters": JSON Schema object}]. */
#pragma once

#include <gio/gio.h>
#include <jansson.h>

#include <chime/chime.h>

typedef struct _ChimeModel ChimeModel;
typedef struct _ChimeModelStream ChimeModelStream;

/* What a finished stream reports, besides its chunks. */
typedef struct {
  json_t *response_metadata;  /* {"model_name", "finish_reason"/"stop_reason", "id", ...} */
  json_t *usage_metadata;     /* {"input_tokens", "output_tokens", "total_tokens", ...} or NULL */
  json_t *generation_info;    /* {"finish_reason", ...} or NULL */
  /* The tool calls the model asked for, assembled from its stream:
   * [{"name", "args": OBJECT, "id", "type": "tool_call"}], or NULL. */
  json_t *tool_calls;
  /* Calls whose arguments did not parse as a JSON object: [{"name",
   * "args": TEXT, "id", "error", "type": "invalid_tool_call"}], or NULL. */
  json_t *invalid_tool_calls;
} ChimeModelResult;

typedef struct {
  /* One chunk of output (@text: its text, may be "", @length bytes long:
   * every provider knows it, and the consumer copies the text once per
   * token). @chunk is NULL, or
   * the AIMessageChunk members the chunk carries besides its text, for
   * chime_llm_chunk_new(): {"tool_call_chunks": [{"name", "args": TEXT,
   * "id", "index", "type": "tool_call_chunk"}]} for a piece of a tool
   * call (name and id on a call's first piece, null after; args the
   * fragment of the arguments' JSON text this piece adds, not the text
   * so far: LangChain's chunks carry each delta, and adding the chunks
   * up joins them).
   * Return FALSE to pause: no callback comes until resume. */
  gboolean (*on_chunk) (const char *text,
                        gsize       length,
                        json_t     *chunk,
                        gpointer    user_data);
  /* The stream is over: @error is NULL on success. Called exactly once; the
   * stream is freed right after it returns. */
  void     (*on_done)  (const ChimeModelResult *result,
                        const GError           *error,
                        gpointer                user_data);
  /* A failed attempt is about to be retried (may be NULL). */
  void     (*on_retry) (json_t  *retry_state,
                        gpointer user_data);
} ChimeModelCallbacks;

typedef struct {
  const char *provider;
  /* The run name, by one rule: the name of the LangChain chat model class
   * that does what the provider does ("ChatOpenAI", "ChatAnthropic", and
   * "FakeStreamingChatModel", LangChain's fake that streams the chunks it
   * is given, for the fake provider), as LangChain names a model's run
   * after its class. */
  const char *class_name;
  /* Keys of a `[model NAME]` section for this provider, besides provider. */
  const char *const *keys;
  /* Reads the section; problems go to @problems. NULL when unusable. */
  ChimeModel       *(*configure)         (ChimeConfig      *config,
                                          const char    *section);
  /* @tools: the tools the model may call (NULL: none). */
  ChimeModelStream *(*stream)            (ChimeModel                *model,
                                          json_t                    *messages,
                                          json_t                    *tools,
                                          const ChimeModelCallbacks *callbacks,
                                          gpointer                   user_data,
                                          GMainContext              *context);
  void              (*resume)            (ChimeModelStream *stream);
  /* Ends the stream soon with a CANCELLED error through on_done. */
  void              (*cancel)            (ChimeModelStream *stream);
  /* The invocation parameters LangChain passes with chat_model_start
   * (secrets redacted). New reference. */
  json_t           *(*invocation_params) (ChimeModel *model);
  void              (*free)              (ChimeModel *model);
} ChimeModelProvider;

struct _ChimeModel {
  const ChimeModelProvider *provider;
  char                     *name;        /* the NAME of [model NAME] */
  char                     *model_name;  /* the `model` key */
};

/* Reads `[model NAME]` (@name) with the provider its `provider` key names.
 * NULL when the section is missing or unusable (problems reported). */
ChimeModel *chime_model_new   (ChimeConfig *config,
                               const char  *name);
void        chime_model_free  (ChimeModel    *model);

ChimeModelStream *chime_model_stream (ChimeModel                *model,
                                      json_t                    *messages,
                                      json_t                    *tools,
                                      const ChimeModelCallbacks *callbacks,
                                      gpointer                   user_data,
                                      GMainContext              *context);
void              chime_model_stream_resume (ChimeModel       *model,
                                             ChimeModelStream *stream);
void              chime_model_stream_cancel (ChimeModel       *model,
                                             ChimeModelStream *stream);

/* The ls_* metadata of a chat model run: {"ls_provider" (the provider
 * key), "ls_model_name" (the model key), "ls_model_type": "chat", and
 * "ls_temperature", "ls_max_tokens", "ls_stop" when set}. New reference. */
json_t *chime_model_ls_params (ChimeModel *model);

/* The providers chime knows, NULL-terminated. */
extern const ChimeModelProvider *const chime_model_providers[];

extern const ChimeModelProvider chime_fake_model_provider;

/* A LangChain-shaped usage block {"input_tokens", "output_tokens",
 * "total_tokens"}. New reference. */
json_t *chime_usage_metadata_new (gint64 input_tokens,
                                  gint64 output_tokens);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeModel, chime_model_free)
