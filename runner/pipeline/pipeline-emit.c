/* Offering a pipeline run's events to the runtime without blocking
 * (chime_run_emit_nowait), and going on when the delivery mode allows: at
 * once for tokens (fenced, background), once the handlers are done for
 * starts and ends (fenced) or everything (awaited). While the handlers
 * hold a run up, the model's stream is paused, so chunks are never
 * buffered without bound. */
#include "config.h"

#include "pipeline-run-private.h"
#include "pipeline-error.h"

static void
proceed (PipelineRun *run)
{
  if (run->cancelled && !run->failing)
    {
      chime_pipeline_run_fail (run, g_error_new_literal (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED,
                                      "the run was cancelled"));
      return;
    }
  run->next (run);
}

static void
on_ready (const GError *failure,
          gpointer      data)
{
  PipelineRun *run = data;
  Resume resume = run->resume;

  run->waiting = FALSE;
  run->resume = NULL;
  resume (run, failure);
  chime_pipeline_run_unref (run);
}

/* Goes on with @resume once @ticket of @target is ready. */
static void
wait_ready (PipelineRun *run,
            ChimeRun    *target,
            guint64      ticket,
            Resume       resume)
{
  g_return_if_fail (!run->waiting);
  run->waiting = TRUE;
  run->resume = resume;
  chime_pipeline_run_ref (run);
  chime_run_when_ready (target, ticket, on_ready, run);
}

static void resume_emit      (PipelineRun *run, const GError *failure);
static void resume_delivered (PipelineRun *run, const GError *failure);

/* Emits the held retry events; FALSE while the ring is still full. A
 * retry is informational: a raise_error failure it causes is found at the
 * next check of the run's trace. */
static gboolean
emit_held_retries (PipelineRun *run,
                   guint64     *ticket)
{
  ChimeEvent *event;

  while ((event = g_queue_peek_head (&run->held_retries)) != NULL)
    {
      if (chime_run_emit_nowait (run->llm, event, ticket, NULL) == CHIME_EMIT_WOULD_BLOCK)
        return FALSE;
      g_queue_pop_head (&run->held_retries);   /* the runtime took it */
    }
  return TRUE;
}

/* Offers the pending event to the runtime and continues as it says. */
static void
emit_pending (PipelineRun *run)
{
  g_autoptr (GError) error = NULL;
  guint64 ticket;

  if (run->waiting)
    {
      /* A failure began during a wait: this emission is what comes next. */
      run->resume = resume_emit;
      return;
    }
  if (!emit_held_retries (run, &ticket))
    {
      wait_ready (run, run->llm, ticket, resume_emit);
      return;
    }
  switch (chime_run_emit_nowait (run->emit_run, run->emit_event, &ticket, &error))
    {
    case CHIME_EMIT_WOULD_BLOCK:
      wait_ready (run, run->emit_run, ticket, resume_emit);
      return;
    case CHIME_EMIT_FAILED:
      run->emit_event = NULL;
      /* Reporting a failure already (the held token of fail_next): go on
       * with that report; error events themselves are never refused. */
      if (run->failing)
        proceed (run);
      else
        chime_pipeline_run_fail (run, g_steal_pointer (&error));
      return;
    case CHIME_EMIT_PENDING:
      run->emit_event = NULL;
      wait_ready (run, run->emit_run, ticket, resume_delivered);
      return;
    case CHIME_EMIT_DONE:
    default:
      run->emit_event = NULL;
      proceed (run);
      return;
    }
}

/* There is room: offer the event again. (A raise_error failure meanwhile
 * comes back as that offer's FAILED.) */
static void
resume_emit (PipelineRun  *run,
             const GError *failure)
{
  emit_pending (run);
}

/* The handlers are done with the event: a raise_error handler may have
 * failed the run meanwhile (which matters unless this was the report of a
 * failure already). */
static void
resume_delivered (PipelineRun  *run,
                  const GError *failure)
{
  if (failure != NULL && !run->emit_is_error)
    chime_pipeline_run_fail (run, g_error_copy (failure));
  else
    proceed (run);
}

static gboolean
is_error_event (ChimeEvent *event)
{
  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_LLM_ERROR:
    case CHIME_EVENT_CHAIN_ERROR:
    case CHIME_EVENT_TOOL_ERROR:
    case CHIME_EVENT_RETRIEVER_ERROR:
      return TRUE;
    default:
      return FALSE;
    }
}

void
chime_pipeline_run_emit (PipelineRun *run,
      ChimeRun    *target,
      ChimeEvent  *event,
      Step         next)
{
  run->emit_run = target;
  run->emit_event = event;
  run->emit_is_error = is_error_event (event);
  run->next = next;
  emit_pending (run);
}

/* ------------------------------------------------------------------
 * The steps
 * ---------------------------------------------------------------- */

/* ------------------------------------------------------------------
 * The events of one chunk of the model's stream
 * ---------------------------------------------------------------- */

void
chime_pipeline_run_queue_chunk_event (PipelineRun *run,
                                      ChimeRun    *target,
                                      ChimeEvent  *event)
{
  PipelineChunkEvent *pending;

  /* Only ever filled while empty (the model is paused otherwise). */
  if (run->n_chunk_events == 0)
    run->first_chunk_event = 0;
  g_assert (run->first_chunk_event + run->n_chunk_events < PIPELINE_CHUNK_EVENTS);
  pending = &run->chunk_events[run->first_chunk_event + run->n_chunk_events++];
  pending->target = target;
  pending->event = event;
}

static PipelineChunkEvent *
peek_chunk_event (PipelineRun *run)
{
  return run->n_chunk_events > 0 ? &run->chunk_events[run->first_chunk_event] : NULL;
}

/* The chunk's first event, taken off the queue (the runtime has it, or
 * the caller emits it). */
static ChimeEvent *
pop_chunk_event (PipelineRun *run)
{
  ChimeEvent *event = run->chunk_events[run->first_chunk_event].event;

  run->first_chunk_event++;
  run->n_chunk_events--;
  return event;
}

void
chime_pipeline_run_clear_chunk_events (PipelineRun *run)
{
  while (run->n_chunk_events > 0)
    chime_event_unref (pop_chunk_event (run));
}

/* Lets the model stream again, unless a raise_error handler failed the
 * run while it was paused, or it is being stopped (its on_done follows). */
static void
resume_model (PipelineRun  *run,
              const GError *failure)
{
  if (failure != NULL)
    chime_pipeline_run_fail (run, g_error_copy (failure));
  else if (run->stream != NULL && !run->failing && !run->cancelled)
    chime_model_stream_resume (run->pipeline->config->model, run->stream);
}

static void
resume_chunk_delivered (PipelineRun  *run,
                        const GError *failure)
{
  if (failure != NULL)
    resume_model (run, failure);
  else if (chime_pipeline_run_offer_chunk_events (run))
    resume_model (run, NULL);
}

static void
resume_chunk_room (PipelineRun  *run,
                   const GError *failure)
{
  if (chime_pipeline_run_offer_chunk_events (run))
    resume_model (run, failure);
}

/* Goes on as the runtime answered the offer of a chunk's event on
 * @target (taken unless WOULD_BLOCK; @error, taken, with FAILED): TRUE
 * when the next may be offered at once. */
static gboolean
answer_chunk_offer (PipelineRun    *run,
                    ChimeRun       *target,
                    ChimeEmitStatus status,
                    guint64         ticket,
                    GError         *error)
{
  switch (status)
    {
    case CHIME_EMIT_WOULD_BLOCK:
      wait_ready (run, target, ticket, resume_chunk_room);
      return FALSE;
    case CHIME_EMIT_FAILED:
      chime_pipeline_run_fail (run, error);
      return FALSE;
    case CHIME_EMIT_PENDING:
      wait_ready (run, target, ticket, resume_chunk_delivered);
      return FALSE;
    case CHIME_EMIT_DONE:
    default:
      return TRUE;
    }
}

gboolean
chime_pipeline_run_offer_chunk_events (PipelineRun *run)
{
  PipelineChunkEvent *pending;
  guint64 ticket;

  if (!emit_held_retries (run, &ticket))
    {
      wait_ready (run, run->llm, ticket, resume_chunk_room);
      return FALSE;
    }
  while ((pending = peek_chunk_event (run)) != NULL)
    {
      GError *error = NULL;
      ChimeRun *target = pending->target;
      ChimeEmitStatus status = chime_run_emit_nowait (target, pending->event, &ticket, &error);

      if (status != CHIME_EMIT_WOULD_BLOCK)
        pop_chunk_event (run);   /* the runtime took the event */
      if (!answer_chunk_offer (run, target, status, ticket, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
chime_pipeline_run_offer_token (PipelineRun *run,
                                const char  *text,
                                json_t      *chunk)
{
  GError *error = NULL;
  ChimeEmitStatus status;
  ChimeEvent *held;
  guint64 ticket;

  /* Behind events still waiting for room, or held retries: in order. */
  if (G_UNLIKELY (run->n_chunk_events > 0 || run->held_retries.length > 0))
    {
      chime_pipeline_run_queue_chunk_event (run, run->llm,
                                            chime_run_prepare_llm_new_token (run->llm, text, chunk));
      return chime_pipeline_run_offer_chunk_events (run);
    }
  status = chime_run_emit_token_nowait (run->llm, text, chunk, &held, &ticket, &error);
  if (G_LIKELY (status == CHIME_EMIT_DONE))
    return TRUE;
  if (status == CHIME_EMIT_WOULD_BLOCK)
    chime_pipeline_run_queue_chunk_event (run, run->llm, held);   /* to offer again */
  return answer_chunk_offer (run, run->llm, status, ticket, error);
}

/* While a failure is reported: the chunk's events still waiting for room
 * when the stream stopped go first (the token is part of the partial
 * answer llm_error carries). FALSE when there are none. */
gboolean
chime_pipeline_run_emit_held_chunk_event (PipelineRun *run,
                                          Step         next)
{
  ChimeRun *target;

  if (run->n_chunk_events == 0)
    return FALSE;
  target = peek_chunk_event (run)->target;
  chime_pipeline_run_emit (run, target, pop_chunk_event (run), next);
  return TRUE;
}

void
chime_pipeline_run_emit_retry (PipelineRun *run,
                               json_t      *retry_state)
{
  ChimeEvent *event = chime_run_prepare_retry (run->llm, retry_state);
  g_autoptr (GError) error = NULL;
  guint64 ticket;

  /* A retry event never holds the stream up; without room it waits for
   * the run's next event (see held_retries). */
  if (!g_queue_is_empty (&run->held_retries) ||
      chime_run_emit_nowait (run->llm, event, &ticket, &error) == CHIME_EMIT_WOULD_BLOCK)
    g_queue_push_tail (&run->held_retries, event);
}
