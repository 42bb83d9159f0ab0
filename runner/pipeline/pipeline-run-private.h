/* One run of a pipeline: the state machine of pipeline-run.c (the steps
 * and the failure report) and pipeline-emit.c (offering events to the
 * runtime, waiting for room or for the handlers). */
#pragma once

#include "pipeline-private.h"
#include "parser-stream.h"

typedef struct _PipelineRun PipelineRun;
typedef struct _PipelineAgent PipelineAgent;

/* At most three events per chunk: the token, the parser's, the root's. */
#define PIPELINE_CHUNK_EVENTS 3

typedef struct {
  ChimeRun   *target;   /* borrowed: one of the run's own */
  ChimeEvent *event;
} PipelineChunkEvent;

typedef void (*Step) (PipelineRun *run);
typedef void (*Resume) (PipelineRun *run, const GError *failure);

struct _PipelineRun {
  ChimePipeline    *pipeline;
  ChimeRuntime     *runtime;
  /* pipeline-answer.c: the references (the run's own, dropped when it
   * answers, one per wait and per running tool), whom to answer, and the
   * answer while it waits for an idle. */
  guint             ref_count;
  ChimePipelineDoneFunc done;
  gpointer          done_data;
  GMainContext     *context;
  gint64            started;    /* monotonic µs, as a source's time */
  json_t           *answer_result;
  GError           *answer_error;
  GHashTable       *variables;
  GCancellable     *cancellable;
  gulong            cancel_handler;
  gboolean          cancelled;

  ChimeCallbackManager *root_manager;
  /* An agent's executor and its turns (pipeline-agent.c), or NULL. */
  PipelineAgent    *agent;
  ChimeRun         *root;       /* the sequence (of this turn) */
  ChimeRun         *step;       /* the prompt or parser run */
  ChimeRun         *llm;
  ChimeRun         *retriever;
  gboolean          root_open, step_open, llm_open, retriever_open;
  Step              after_retrieval;
  ChimeModelStream *stream;
  /* The parser transforms the model's stream as it comes. */
  ChimeParserStream *parser;

  json_t           *inputs;
  json_t           *messages;
  GString          *text;
  json_t           *llm_result;
  json_t           *tool_calls, *invalid_tool_calls;   /* the model's, or NULL */
  json_t           *output;
  GError           *failure;
  gboolean          failing;

  /* retry events that found the ring full, oldest first. The model's run
   * has more to say after a retry (a token, llm_end or llm_error), and
   * that emission sends these first: none is lost and the order holds. */
  GQueue            held_retries;

  /* The events of the model's current chunk not yet taken by the runtime,
   * in order, from chunk_events[first_chunk_event] on: the token, then
   * what the parser and the sequence stream for it. The model stays
   * paused until all are taken. A fixed array: no allocation per token. */
  PipelineChunkEvent chunk_events[PIPELINE_CHUNK_EVENTS];
  guint             first_chunk_event, n_chunk_events;

  /* The emission in progress. */
  ChimeRun         *emit_run;
  ChimeEvent       *emit_event;  /* not yet taken by the runtime */
  gboolean          emit_is_error;
  Step              next;

  /* The one chime_run_when_ready() wait in progress, and what it goes on
   * with. There is never more than one: a failure (a signal's
   * cancellation, say) that starts while the run waits for room or for
   * its handlers does not wait a second time, it changes what the wait
   * goes on with. The wait holds a reference to the run, so the run
   * outlives every callback the runtime still owes it. */
  gboolean          waiting;
  Resume            resume;
};

/* pipeline-run.c */
void     chime_pipeline_run_free       (PipelineRun *run);
void     chime_pipeline_run_fail       (PipelineRun *run,
                                        GError      *error);
void     chime_pipeline_run_fail_next  (PipelineRun *run);
/* Runs the sequence again (an agent's next turn). */
void     chime_pipeline_run_next_turn  (PipelineRun *run);
/* Returns the run's result: the last step. */
void     chime_pipeline_run_complete   (PipelineRun *run);

/* pipeline-answer.c */
void     chime_pipeline_run_ref        (PipelineRun *run);
void     chime_pipeline_run_unref      (PipelineRun *run);
/* Answers the caller with @result or @error (both taken), once, and
 * drops the run's own reference. */
void     chime_pipeline_run_answer     (PipelineRun *run,
                                        json_t      *result,
                                        GError      *error);

/* pipeline-agent.c */
PipelineAgent        *chime_pipeline_agent_new  (ChimeAgentConfig *config);
void                  chime_pipeline_agent_free (PipelineAgent *agent);
/* Opens the executor's chain run, then runs @next. */
void                  chime_pipeline_agent_start (PipelineRun *run,
                                                  Step         next);
ChimeRun             *chime_pipeline_agent_get_executor (PipelineAgent *agent);
/* The manager of a turn's sequence run: a child of the executor. */
ChimeCallbackManager *chime_pipeline_agent_sequence_manager (PipelineAgent *agent);
/* A turn's sequence inputs: the run's, with "intermediate_steps". New. */
json_t               *chime_pipeline_agent_sequence_inputs (PipelineRun *run);
/* Appends the conversation's ai and tool messages so far to @messages. */
void                  chime_pipeline_agent_add_scratchpad (PipelineAgent *agent,
                                                           json_t        *messages);
/* The tools offered to the model (borrowed). */
json_t               *chime_pipeline_agent_get_tools (PipelineAgent *agent);
/* The sequence has ended: run the tools it asked for, or finish. */
void                  chime_pipeline_agent_after_turn (PipelineRun *run);
void                  chime_pipeline_agent_cancel (PipelineAgent *agent);
/* The failure report of the tool runs and the executor: emits the next
 * error event and returns TRUE, FALSE when none is left. */
gboolean              chime_pipeline_agent_fail_next (PipelineRun *run,
                                                      Step         next);

/* The callback manager of the sequence's step @tag ("seq:step:1"). */
ChimeCallbackManager *chime_pipeline_run_step_manager (PipelineRun *run,
                                                       const char  *tag);

/* retriever-step.c */
/* Runs the retriever on the query, fills {context}, then runs @next. */
void     chime_pipeline_run_retrieve   (PipelineRun *run,
                                        Step         next);

/* pipeline-emit.c */
/* Emits @event (taking it) on @target's handlers, then runs @next. */
void     chime_pipeline_run_emit       (PipelineRun *run,
                                        ChimeRun    *target,
                                        ChimeEvent  *event,
                                        Step         next);
/* Adds @event (taken) on @target to the current chunk's events. */
void     chime_pipeline_run_queue_chunk_event (PipelineRun *run,
                                               ChimeRun    *target,
                                               ChimeEvent  *event);
/* Offers the chunk's events; TRUE when the runtime took them all, FALSE
 * when the model must pause (it is resumed once they are taken). */
gboolean chime_pipeline_run_offer_chunk_events (PipelineRun *run);
/* The same for a chunk whose one event is the token @text (with @chunk,
 * may be NULL, borrowed) on the model's run: offered at once, without the
 * queue and without making an event beforehand
 * (chime_run_emit_token_nowait), when nothing is waiting before it (every
 * chunk of a stream nobody taps). */
gboolean chime_pipeline_run_offer_token (PipelineRun *run,
                                         const char  *text,
                                         json_t      *chunk);
void     chime_pipeline_run_clear_chunk_events (PipelineRun *run);
/* A retry of the model: emitted without holding the stream up. */
void     chime_pipeline_run_emit_retry (PipelineRun *run,
                                        json_t      *retry_state);
/* Emits the first of the chunk's events still held, then runs @next;
 * FALSE when none is held. */
gboolean chime_pipeline_run_emit_held_chunk_event (PipelineRun *run,
                                                   Step         next);
