/* chime — runs and run managers: the embedding API for emitting events.
 *
 * Mirrors LangChain's CallbackManager API:
 *
 *   ChimeCallbackManager *cm = chime_runtime_new_callback_manager (rt);
 *   ChimeRun *chain = chime_callback_manager_on_chain_start (cm, NULL, inputs,
 *                                                            "MyChain", NULL, &error);
 *   ChimeCallbackManager *child = chime_run_get_child (chain, "seq:step:1");
 *   ChimeRun *llm = chime_callback_manager_on_chat_model_start (child, NULL,
 *                                                               messages, "FakeChat",
 *                                                               NULL, &error);
 *   chime_run_on_llm_new_token (llm, "Hi", NULL, &error);
 *   chime_run_on_llm_end (llm, llm_result, &error);
 *   chime_run_on_chain_end (chain, outputs, &error);
 *
 * A callback manager holds the handlers, tags and metadata a new run gets;
 * each is either inheritable (passed to child runs by chime_run_get_child)
 * or local (this level only). A run (a run manager) emits the events of one
 * run. JSON arguments are borrowed: the event takes its own reference, and
 * the caller must not modify them afterwards (events are immutable).
 *
 * Emitting functions return FALSE with @error set when a handler with
 * raise_error failed on this run (or its trace), so the caller can fail the
 * run, as LangChain re-raises into the model or chain. Whether they wait for
 * handlers depends on the runtime's delivery mode. When they wait on the
 * thread that owns the runtime's main context they iterate it, so async
 * handlers make progress. An emitter on the main loop that must not block
 * uses chime/emit.h instead.
 *
 * Managers and runs hold a reference to their runtime.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/macros.h>
#include <chime/event.h>
#include <chime/runtime.h>

G_BEGIN_DECLS

typedef struct _ChimeCallbackManager ChimeCallbackManager;
typedef struct _ChimeRun ChimeRun;

/* A manager with every configured handler, each inheritable or local as its
 * `inheritable` key says, no tags, no metadata and no parent. */
CHIME_API ChimeCallbackManager *chime_runtime_new_callback_manager (ChimeRuntime *runtime);

/* Takes a reference. */
CHIME_API ChimeCallbackManager *chime_callback_manager_ref   (ChimeCallbackManager *manager);
/* Drops a reference. */
CHIME_API void                  chime_callback_manager_unref (ChimeCallbackManager *manager);
/* A new manager with the same handlers, tags, metadata and parent. */
CHIME_API ChimeCallbackManager *chime_callback_manager_copy  (ChimeCallbackManager *manager);

/* Adds tags (inheritable by child runs when @inherit), moving a tag already
 * present to the end (LangChain's add_tags). */
CHIME_API void     chime_callback_manager_add_tags         (ChimeCallbackManager *manager,
                                                            const char * const   *tags,
                                                            gboolean              inherit);
/* Removes tags, local and inheritable. */
CHIME_API void     chime_callback_manager_remove_tags      (ChimeCallbackManager *manager,
                                                            const char * const   *tags);
/* Merges a JSON object into the metadata; the last writer wins. */
CHIME_API void     chime_callback_manager_add_metadata     (ChimeCallbackManager *manager,
                                                            json_t               *metadata,
                                                            gboolean              inherit);
/* Adds a configured handler by its `[handler NAME]` name. FALSE when no
 * handler has that name. */
CHIME_API gboolean chime_callback_manager_add_handler      (ChimeCallbackManager *manager,
                                                            const char           *name,
                                                            gboolean              inherit);
/* Removes a handler by name. FALSE when no handler has that name. */
CHIME_API gboolean chime_callback_manager_remove_handler   (ChimeCallbackManager *manager,
                                                            const char           *name);
/* The parent run id new runs get (NULL for none). */
CHIME_API void     chime_callback_manager_set_parent_run_id (ChimeCallbackManager *manager,
                                                             const ChimeRunId     *parent_run_id);
/* How many handlers new runs get. */
CHIME_API guint    chime_callback_manager_get_n_handlers   (ChimeCallbackManager *manager);

/* Start events. Each creates a run and emits its start event, and returns
 * the run (free it with chime_run_unref), or NULL with @error set when a
 * raise_error handler refused the start. The run id is a fresh UUIDv7. */
CHIME_API ChimeRun *chime_callback_manager_on_chain_start      (ChimeCallbackManager *manager,
                                                                json_t               *serialized,
                                                                json_t               *inputs,
                                                                const char           *name,
                                                                const char           *run_type,
                                                                GError              **error);
/* An llm run with one @prompt. */
CHIME_API ChimeRun *chime_callback_manager_on_llm_start        (ChimeCallbackManager *manager,
                                                                json_t               *serialized,
                                                                const char           *prompt,
                                                                const char           *name,
                                                                json_t               *kwargs,
                                                                GError              **error);
/* A chat model run; @messages is an array of messages, each
 * {"type": "human"|"ai"|"system"|"tool"|"function"|"chat",
 *  "content": "...", ["role": "..."]}. */
CHIME_API ChimeRun *chime_callback_manager_on_chat_model_start (ChimeCallbackManager *manager,
                                                                json_t               *serialized,
                                                                json_t               *messages,
                                                                const char           *name,
                                                                json_t               *kwargs,
                                                                GError              **error);
/* A tool run with its input as a string and, optionally, as JSON. */
CHIME_API ChimeRun *chime_callback_manager_on_tool_start       (ChimeCallbackManager *manager,
                                                                json_t               *serialized,
                                                                const char           *input_str,
                                                                json_t               *inputs,
                                                                const char           *name,
                                                                GError              **error);
/* A retriever run for @query. */
CHIME_API ChimeRun *chime_callback_manager_on_retriever_start  (ChimeCallbackManager *manager,
                                                                json_t               *serialized,
                                                                const char           *query,
                                                                const char           *name,
                                                                GError              **error);
/* A custom event outside any run manager (LangChain's dispatch_custom_event
 * with a run_id): @run_id is required. */
CHIME_API gboolean  chime_callback_manager_on_custom_event     (ChimeCallbackManager *manager,
                                                                const char           *name,
                                                                json_t               *data,
                                                                const ChimeRunId     *run_id,
                                                                GError              **error);

/* Takes a reference. */
CHIME_API ChimeRun           *chime_run_ref      (ChimeRun *run);
/* Drops a reference. */
CHIME_API void                chime_run_unref    (ChimeRun *run);
/* The run's facts (id, parent, type, name, tags, metadata). */
CHIME_API const ChimeRunInfo *chime_run_get_info (ChimeRun *run);
/* The runtime the run emits through. */
CHIME_API ChimeRuntime       *chime_run_get_runtime (ChimeRun *run);
/* A manager for child runs: inheritable handlers, tags and metadata only,
 * parent = this run, plus @tag (may be NULL) as a local tag. */
CHIME_API ChimeCallbackManager *chime_run_get_child (ChimeRun   *run,
                                                     const char *tag);

/* The events of a run. Each returns FALSE with @error when a raise_error
 * handler failed on this run tree. */

/* llm and chat model runs: a streamed token and its chunk (may be NULL: a
 * ChatGenerationChunk is built on first use). */
CHIME_API gboolean chime_run_on_llm_new_token   (ChimeRun *run, const char *token, json_t *chunk, GError **error);
/* llm and chat model runs: the end, with the LLMResult (chime_llm_result_new()). */
CHIME_API gboolean chime_run_on_llm_end         (ChimeRun *run, json_t *response, GError **error);
/* llm and chat model runs: the failure, with the partial LLMResult if any. */
CHIME_API gboolean chime_run_on_llm_error       (ChimeRun *run, const GError *failure, json_t *partial_response, GError **error);
/* Chain runs: the end, with the outputs. */
CHIME_API gboolean chime_run_on_chain_end       (ChimeRun *run, json_t *outputs, GError **error);
/* Chain runs: the failure. */
CHIME_API gboolean chime_run_on_chain_error     (ChimeRun *run, const GError *failure, GError **error);
/* Chain runs: an agent's action. */
CHIME_API gboolean chime_run_on_agent_action    (ChimeRun *run, json_t *action, GError **error);
/* Chain runs: an agent's final answer. */
CHIME_API gboolean chime_run_on_agent_finish    (ChimeRun *run, json_t *finish, GError **error);
/* Tool runs: the end, with the output. */
CHIME_API gboolean chime_run_on_tool_end        (ChimeRun *run, json_t *output, GError **error);
/* Tool runs: the failure. */
CHIME_API gboolean chime_run_on_tool_error      (ChimeRun *run, const GError *failure, GError **error);
/* Retriever runs: the end, with the documents. */
CHIME_API gboolean chime_run_on_retriever_end   (ChimeRun *run, json_t *documents, GError **error);
/* Retriever runs: the failure. */
CHIME_API gboolean chime_run_on_retriever_error (ChimeRun *run, const GError *failure, GError **error);
/* Any run: a text. */
CHIME_API gboolean chime_run_on_text            (ChimeRun *run, const char *text, GError **error);
/* Any run: a retry of a failed attempt, with its state. */
CHIME_API gboolean chime_run_on_retry           (ChimeRun *run, json_t *retry_state, GError **error);
/* Any run: a custom event (LangChain's dispatch_custom_event). */
CHIME_API gboolean chime_run_on_custom_event    (ChimeRun *run, const char *name, json_t *data, GError **error);
/* LangChain's dispatch_custom_event (@name, @data) inside @run, for code
 * a run calls (a tool plugin, with chime_tool_call_get_run()): the same
 * event as chime_run_on_custom_event(), reaching handlers as
 * on_custom_event with @run's id, tags and metadata, but names starting
 * with "chime." (chime's own, CHIME_STREAM_EVENT) are refused with
 * CHIME_HANDLER_ERROR_FAILED, so that user code cannot forge a stream.
 * Callable from any thread; waits for handlers as the delivery mode says. */
CHIME_API gboolean chime_run_dispatch_custom_event (ChimeRun   *run,
                                                    const char *name,
                                                    json_t     *data,
                                                    GError    **error);

/* The LLMResult a streamed chat model run ends with, as LangChain builds
 * it: one ChatGenerationChunk with the whole @text, its AIMessageChunk
 * carrying the id "run-<run id>" (the id of the run's token chunks),
 * @response_metadata and @usage_metadata ({"input_tokens",
 * "output_tokens", "total_tokens", ...}), and @generation_info; any of
 * them may be NULL. New reference. */
CHIME_API json_t *chime_llm_result_new (ChimeRun   *run,
                                        const char *text,
                                        json_t     *response_metadata,
                                        json_t     *usage_metadata,
                                        json_t     *generation_info);

/* The ChatGenerationChunk of one streamed piece of @run's output, as
 * LangChain streams it: its AIMessageChunk has @text as content, the id
 * "run-<run id>", and the members of @message (may be NULL) set over the
 * defaults, e.g. {"tool_call_chunks": [{"name", "args", "id", "index",
 * "type": "tool_call_chunk"}]} for a piece of a tool call. Pass it to
 * chime_run_on_llm_new_token() when the token carries more than text.
 * New reference. */
CHIME_API json_t *chime_llm_chunk_new (ChimeRun   *run,
                                       const char *text,
                                       json_t     *message);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeCallbackManager, chime_callback_manager_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeRun, chime_run_unref)

G_END_DECLS
