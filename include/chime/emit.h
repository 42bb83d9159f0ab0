/* chime — emitting without blocking, for emitters on a main loop.
 *
 * The chime_run_on_*() functions wait for handlers as the delivery mode
 * says (iterating the main context if they must). An emitter that runs on
 * the main loop itself — a model streaming over HTTP, a pipeline moving
 * from step to step — must never block it. It prepares the event, offers it
 * with chime_run_emit_nowait(), and continues as the answer says:
 *
 *   CHIME_EMIT_DONE         taken, and nothing to wait for: go on.
 *   CHIME_EMIT_PENDING      taken; the delivery mode says to wait until it
 *                           is handled: go on when chime_run_when_ready()
 *                           calls back.
 *   CHIME_EMIT_WOULD_BLOCK  not taken (a handler's queue is full, so the
 *                           emitter feels back-pressure, e.g. by pausing its
 *                           HTTP stream): offer the same event again when
 *                           chime_run_when_ready() calls back.
 *   CHIME_EMIT_FAILED       a raise_error handler failed this run tree
 *                           (@error); the event was dropped.
 *
 * A stream's tokens need no prepared event: chime_run_emit_token_nowait()
 * offers a token's text and chunk with the same answers, and makes the
 * event only if it must hand it back (WOULD_BLOCK).
 *
 *   static void on_ready (const GError *failure, gpointer data)
 *   {
 *     Step *step = data;
 *     if (failure != NULL) fail (step, failure); else next (step);
 *   }
 *
 *   ChimeEvent *event = chime_run_prepare_llm_end (llm, result);
 *   guint64 ticket;
 *   switch (chime_run_emit_nowait (llm, event, &ticket, &error))
 *     {
 *     case CHIME_EMIT_DONE: next (step); break;
 *     case CHIME_EMIT_PENDING: chime_run_when_ready (llm, ticket, on_ready, step); break;
 *     case CHIME_EMIT_WOULD_BLOCK: keep (step, event); chime_run_when_ready (llm, ticket, retry, step); break;
 *     case CHIME_EMIT_FAILED: fail (step, error); break;
 *     }
 *
 * Prepared events are ordinary ChimeEvent objects not yet emitted: emit
 * each once, or drop it with chime_event_unref(). Their arguments are
 * borrowed as in chime/run.h.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/macros.h>
#include <chime/event.h>
#include <chime/run.h>

G_BEGIN_DECLS

/**
 * ChimeEmitStatus: how chime_run_emit_nowait() went (see above).
 */
typedef enum {
  CHIME_EMIT_DONE,
  CHIME_EMIT_PENDING,
  CHIME_EMIT_WOULD_BLOCK,
  CHIME_EMIT_FAILED,
} ChimeEmitStatus;

/* Called on the runtime's main context when what chime_run_emit_nowait()
 * asked to wait for has happened. @failure (borrowed, may be NULL) is the
 * error of a raise_error handler that failed the run tree meanwhile. */
typedef void (*ChimeEmitReadyFunc) (const GError *failure,
                                    gpointer      user_data);

/* Offers @event to the run's handlers without blocking: run_inline handlers
 * are called here, queued handlers get it through the ring. On every
 * status but CHIME_EMIT_WOULD_BLOCK the event is taken (the caller's
 * reference with it); on WOULD_BLOCK it stays the caller's, to offer again.
 * On PENDING and WOULD_BLOCK *@ticket says what to wait for. */
CHIME_API ChimeEmitStatus chime_run_emit_nowait (ChimeRun   *run,
                                                 ChimeEvent *event,
                                                 guint64    *ticket,
                                                 GError    **error);
/* A token of @run offered as chime_run_emit_nowait() offers
 * chime_run_prepare_llm_new_token (run, token, chunk), with the same
 * answers, but without making an event beforehand: when the token needs
 * nothing but the ring (no run_inline handler, nobody waits for it), it
 * is made in its ring slot, as chime_run_on_llm_new_token() makes it. The
 * token path of an emitter on the main loop. On CHIME_EMIT_WOULD_BLOCK
 * *@held is the token's event (a new reference; NULL on every other
 * answer), the caller's to offer again with chime_run_emit_nowait(). */
CHIME_API ChimeEmitStatus chime_run_emit_token_nowait (ChimeRun    *run,
                                                       const char  *token,
                                                       json_t      *chunk,
                                                       ChimeEvent **held,
                                                       guint64     *ticket,
                                                       GError     **error);
/* Calls @callback once @ticket's condition holds: the event was handled by
 * every handler that waits for it (PENDING), or there is room to offer
 * again (WOULD_BLOCK). The callback runs from the runtime's main context,
 * never inside this call. */
CHIME_API void            chime_run_when_ready  (ChimeRun          *run,
                                                 guint64            ticket,
                                                 ChimeEmitReadyFunc callback,
                                                 gpointer           user_data);

/* Start events, prepared: each creates the run (returned) and its start
 * event (in *@out_event, a new reference), with the arguments of the
 * matching chime_callback_manager_on_*() function. */
CHIME_API ChimeRun *chime_callback_manager_prepare_chain_start      (ChimeCallbackManager *manager,
                                                                     json_t               *serialized,
                                                                     json_t               *inputs,
                                                                     const char           *name,
                                                                     const char           *run_type,
                                                                     ChimeEvent          **out_event);
/* The llm_start of a new llm run. */
CHIME_API ChimeRun *chime_callback_manager_prepare_llm_start        (ChimeCallbackManager *manager,
                                                                     json_t               *serialized,
                                                                     const char           *prompt,
                                                                     const char           *name,
                                                                     json_t               *kwargs,
                                                                     ChimeEvent          **out_event);
/* The chat_model_start of a new chat model run. */
CHIME_API ChimeRun *chime_callback_manager_prepare_chat_model_start (ChimeCallbackManager *manager,
                                                                     json_t               *serialized,
                                                                     json_t               *messages,
                                                                     const char           *name,
                                                                     json_t               *kwargs,
                                                                     ChimeEvent          **out_event);
/* The tool_start of a new tool run. */
CHIME_API ChimeRun *chime_callback_manager_prepare_tool_start       (ChimeCallbackManager *manager,
                                                                     json_t               *serialized,
                                                                     const char           *input_str,
                                                                     json_t               *inputs,
                                                                     const char           *name,
                                                                     ChimeEvent          **out_event);
/* The retriever_start of a new retriever run. */
CHIME_API ChimeRun *chime_callback_manager_prepare_retriever_start  (ChimeCallbackManager *manager,
                                                                     json_t               *serialized,
                                                                     const char           *query,
                                                                     const char           *name,
                                                                     ChimeEvent          **out_event);

/* The other events of a run, prepared, with the arguments of the matching
 * chime_run_on_*() function. Each returns a new reference. */
CHIME_API ChimeEvent *chime_run_prepare_llm_new_token   (ChimeRun *run, const char *token, json_t *chunk);
/* llm_end with its LLMResult. */
CHIME_API ChimeEvent *chime_run_prepare_llm_end         (ChimeRun *run, json_t *response);
/* llm_error with the partial LLMResult (may be NULL). */
CHIME_API ChimeEvent *chime_run_prepare_llm_error       (ChimeRun *run, const GError *failure, json_t *partial_response);
/* chain_end with the outputs. */
CHIME_API ChimeEvent *chime_run_prepare_chain_end       (ChimeRun *run, json_t *outputs);
/* chain_end with the outputs and the run's final inputs (LangChain's
 * on_chain_end inputs=): for a run that streamed its input in and so
 * started with the placeholder {"input": ""}. */
CHIME_API ChimeEvent *chime_run_prepare_chain_end_with_inputs (ChimeRun *run, json_t *outputs,
                                                               json_t *inputs);
/* chain_error. */
CHIME_API ChimeEvent *chime_run_prepare_chain_error     (ChimeRun *run, const GError *failure);
/* agent_action. */
CHIME_API ChimeEvent *chime_run_prepare_agent_action    (ChimeRun *run, json_t *action);
/* agent_finish. */
CHIME_API ChimeEvent *chime_run_prepare_agent_finish    (ChimeRun *run, json_t *finish);
/* tool_end with the output. */
CHIME_API ChimeEvent *chime_run_prepare_tool_end        (ChimeRun *run, json_t *output);
/* tool_error. */
CHIME_API ChimeEvent *chime_run_prepare_tool_error      (ChimeRun *run, const GError *failure);
/* retriever_end with the documents. */
CHIME_API ChimeEvent *chime_run_prepare_retriever_end   (ChimeRun *run, json_t *documents);
/* retriever_error. */
CHIME_API ChimeEvent *chime_run_prepare_retriever_error (ChimeRun *run, const GError *failure);
/* text. */
CHIME_API ChimeEvent *chime_run_prepare_text            (ChimeRun *run, const char *text);
/* retry with the retry state. */
CHIME_API ChimeEvent *chime_run_prepare_retry           (ChimeRun *run, json_t *retry_state);
/* custom_event named @name with @data. */
CHIME_API ChimeEvent *chime_run_prepare_custom_event    (ChimeRun *run, const char *name, json_t *data);

G_END_DECLS
