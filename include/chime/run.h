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
 * handlers make progress.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/event.h>
#include <chime/runtime.h>

G_BEGIN_DECLS

typedef struct _ChimeCallbackManager ChimeCallbackManager;
typedef struct _ChimeRun ChimeRun;

/* A manager with every configured handler, each inheritable or local as its
 * `inheritable` key says, no tags, no metadata and no parent. */
ChimeCallbackManager *chime_runtime_new_callback_manager (ChimeRuntime *runtime);

ChimeCallbackManager *chime_callback_manager_ref   (ChimeCallbackManager *manager);
void                  chime_callback_manager_unref (ChimeCallbackManager *manager);
ChimeCallbackManager *chime_callback_manager_copy  (ChimeCallbackManager *manager);

/* Adds tags, moving an existing tag to the end (LangChain's add_tags). */
void chime_callback_manager_add_tags      (ChimeCallbackManager *manager,
                                           const char * const   *tags,
                                           gboolean              inherit);
void chime_callback_manager_remove_tags   (ChimeCallbackManager *manager,
                                           const char * const   *tags);
/* Merges a JSON object into the metadata; the last writer wins. */
void chime_callback_manager_add_metadata  (ChimeCallbackManager *manager,
                                           json_t               *metadata,
                                           gboolean              inherit);
/* Adds or removes a configured handler by its `[handler NAME]` name.
 * Returns FALSE when no handler has that name. */
gboolean chime_callback_manager_add_handler    (ChimeCallbackManager *manager,
                                                const char           *name,
                                                gboolean              inherit);
gboolean chime_callback_manager_remove_handler (ChimeCallbackManager *manager,
                                                const char           *name);
/* The parent run id new runs get (NULL for none). */
void chime_callback_manager_set_parent_run_id (ChimeCallbackManager *manager,
                                               const ChimeRunId     *parent_run_id);
guint chime_callback_manager_get_n_handlers   (ChimeCallbackManager *manager);

/* Start events. Each returns a new run (free it with chime_run_unref), or
 * NULL with @error set when a raise_error handler refused the start. The
 * run id is a fresh UUIDv7 unless @run_id is given. */
ChimeRun *chime_callback_manager_on_chain_start      (ChimeCallbackManager *manager,
                                                      json_t               *serialized,
                                                      json_t               *inputs,
                                                      const char           *name,
                                                      const char           *run_type,
                                                      GError              **error);
ChimeRun *chime_callback_manager_on_llm_start        (ChimeCallbackManager *manager,
                                                      json_t               *serialized,
                                                      const char           *prompt,
                                                      const char           *name,
                                                      json_t               *kwargs,
                                                      GError              **error);
/* @messages: an array of messages, each {"type": "human"|"ai"|"system"|
 * "tool"|"function"|"chat", "content": "...", ["role": "..."]}. */
ChimeRun *chime_callback_manager_on_chat_model_start (ChimeCallbackManager *manager,
                                                      json_t               *serialized,
                                                      json_t               *messages,
                                                      const char           *name,
                                                      json_t               *kwargs,
                                                      GError              **error);
ChimeRun *chime_callback_manager_on_tool_start       (ChimeCallbackManager *manager,
                                                      json_t               *serialized,
                                                      const char           *input_str,
                                                      json_t               *inputs,
                                                      const char           *name,
                                                      GError              **error);
ChimeRun *chime_callback_manager_on_retriever_start  (ChimeCallbackManager *manager,
                                                      json_t               *serialized,
                                                      const char           *query,
                                                      const char           *name,
                                                      GError              **error);
/* A custom event outside any run (LangChain's dispatch_custom_event with a
 * run_id): @run_id is required. */
gboolean  chime_callback_manager_on_custom_event     (ChimeCallbackManager *manager,
                                                      const char           *name,
                                                      json_t               *data,
                                                      const ChimeRunId     *run_id,
                                                      GError              **error);

ChimeRun           *chime_run_ref      (ChimeRun *run);
void                chime_run_unref    (ChimeRun *run);
const ChimeRunInfo *chime_run_get_info (ChimeRun *run);
/* A manager for child runs: inheritable handlers, tags and metadata only,
 * parent = this run, plus @tag (may be NULL) as a local tag. */
ChimeCallbackManager *chime_run_get_child (ChimeRun   *run,
                                           const char *tag);

/* LLM runs (llm_start or chat_model_start). */
gboolean chime_run_on_llm_new_token (ChimeRun *run, const char *token, json_t *chunk, GError **error);
gboolean chime_run_on_llm_end       (ChimeRun *run, json_t *response, GError **error);
gboolean chime_run_on_llm_error     (ChimeRun *run, const GError *failure, json_t *partial_response, GError **error);
/* Chain runs. */
gboolean chime_run_on_chain_end     (ChimeRun *run, json_t *outputs, GError **error);
gboolean chime_run_on_chain_error   (ChimeRun *run, const GError *failure, GError **error);
gboolean chime_run_on_agent_action  (ChimeRun *run, json_t *action, GError **error);
gboolean chime_run_on_agent_finish  (ChimeRun *run, json_t *finish, GError **error);
/* Tool runs. */
gboolean chime_run_on_tool_end      (ChimeRun *run, json_t *output, GError **error);
gboolean chime_run_on_tool_error    (ChimeRun *run, const GError *failure, GError **error);
/* Retriever runs. */
gboolean chime_run_on_retriever_end   (ChimeRun *run, json_t *documents, GError **error);
gboolean chime_run_on_retriever_error (ChimeRun *run, const GError *failure, GError **error);
/* Any run. */
gboolean chime_run_on_text          (ChimeRun *run, const char *text, GError **error);
gboolean chime_run_on_retry         (ChimeRun *run, json_t *retry_state, GError **error);
gboolean chime_run_on_custom_event  (ChimeRun *run, const char *name, json_t *data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeCallbackManager, chime_callback_manager_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeRun, chime_run_unref)

G_END_DECLS
