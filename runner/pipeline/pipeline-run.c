/* Running a pipeline: a state machine on the main loop.
 *
 * Each step emits its event without blocking (chime_run_emit_nowait) and
 * continues when the delivery mode allows: at once for tokens (fenced,
 * background), once the handlers are done for starts and ends (fenced) or
 * everything (awaited). While handlers hold a run up, the model's stream
 * is paused, so tokens are never buffered without bound. Runs nest as
 * LangChain's RunnableSequence: a root chain run, and children for the
 * prompt (seq:step:1), the chat model (seq:step:2) and the parser
 * (seq:step:3). */
#include "config.h"

#include "pipeline-private.h"
#include "pipeline-error.h"
#include "prompt.h"

typedef struct _PipelineRun PipelineRun;
typedef void (*Step) (PipelineRun *run);
typedef void (*Resume) (PipelineRun *run, const GError *failure);

struct _PipelineRun {
  ChimePipeline    *pipeline;
  ChimeRuntime     *runtime;
  GTask            *task;
  GHashTable       *variables;
  GCancellable     *cancellable;
  gulong            cancel_handler;
  gboolean          cancelled;

  ChimeCallbackManager *root_manager;
  ChimeRun         *root;
  ChimeRun         *step;       /* the prompt or parser run */
  ChimeRun         *llm;
  gboolean          root_open, step_open, llm_open;
  ChimeModelStream *stream;

  json_t           *inputs;
  json_t           *messages;
  GString          *text;
  json_t           *llm_result;
  json_t           *output;
  GError           *failure;
  gboolean          failing;

  /* retry events that found the ring full, oldest first. The model's run
   * has more to say after a retry (a token, llm_end or llm_error), and
   * that emission sends these first: none is lost and the order holds. */
  GQueue            held_retries;

  /* The emission in progress. */
  ChimeRun         *emit_run;
  ChimeEvent       *emit_event;  /* not yet taken by the runtime */
  gboolean          emit_is_error;
  Step              next;

  /* The one chime_run_when_ready() wait in progress, and what it goes on
   * with. There is never more than one: a failure (a signal's
   * cancellation, say) that starts while the run waits for room or for
   * its handlers does not wait a second time, it changes what the wait
   * goes on with. The wait holds a reference to the task, so the run
   * outlives every callback the runtime still owes it. */
  gboolean          waiting;
  Resume            resume;
};

static void fail (PipelineRun *run, GError *error);
static void fail_next (PipelineRun *run);

static void
pipeline_run_free (PipelineRun *run)
{
  if (run->cancel_handler != 0)
    g_cancellable_disconnect (run->cancellable, run->cancel_handler);
  g_clear_object (&run->cancellable);
  g_hash_table_unref (run->variables);
  g_clear_pointer (&run->root_manager, chime_callback_manager_unref);
  g_clear_pointer (&run->root, chime_run_unref);
  g_clear_pointer (&run->step, chime_run_unref);
  g_clear_pointer (&run->llm, chime_run_unref);
  g_clear_pointer (&run->inputs, json_decref);
  g_clear_pointer (&run->messages, json_decref);
  g_string_free (run->text, TRUE);
  g_clear_pointer (&run->llm_result, json_decref);
  g_clear_pointer (&run->output, json_decref);
  g_clear_error (&run->failure);
  g_clear_pointer (&run->emit_event, chime_event_unref);
  g_queue_clear_full (&run->held_retries, (GDestroyNotify) chime_event_unref);
  g_free (run);
}

/* Goes on with @run->next, unless the run was cancelled meanwhile. */
static void
proceed (PipelineRun *run)
{
  if (run->cancelled && !run->failing)
    {
      fail (run, g_error_new_literal (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED,
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
  GTask *task = run->task;
  Resume resume = run->resume;

  run->waiting = FALSE;
  run->resume = NULL;
  resume (run, failure);
  g_object_unref (task);
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
  g_object_ref (run->task);
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
        fail (run, g_steal_pointer (&error));
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
    fail (run, g_error_copy (failure));
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

/* Emits @event (taking it) on @target's handlers, then runs @next. */
static void
emit (PipelineRun *run,
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

static void start_prompt (PipelineRun *run);
static void render_prompt (PipelineRun *run);
static void start_model (PipelineRun *run);
static void stream_model (PipelineRun *run);
static void start_parser (PipelineRun *run);
static void parse_output (PipelineRun *run);
static void end_root (PipelineRun *run);
static void complete (PipelineRun *run);

static void
start_root (PipelineRun *run)
{
  ChimePipelineConfig *config = run->pipeline->config;
  ChimeEvent *event;

  run->root_manager = chime_runtime_new_callback_manager (run->runtime);
  chime_callback_manager_add_tags (run->root_manager, (const char * const *) config->tags, TRUE);
  chime_callback_manager_add_metadata (run->root_manager, config->metadata, TRUE);
  run->root = chime_callback_manager_prepare_chain_start (run->root_manager, NULL, run->inputs,
                                                          config->name, NULL, &event);
  run->root_open = TRUE;
  emit (run, run->root, event, start_prompt);
}

/* The callback manager of step @tag. LangChain configures each step with
 * the sequence's config, whose tags it adds again to the child manager:
 * adding moves a tag to the end, so the step tag comes first
 * (["seq:step:1", "jokes"]). */
static ChimeCallbackManager *
step_manager (PipelineRun *run,
              const char  *tag)
{
  ChimeCallbackManager *child = chime_run_get_child (run->root, tag);

  chime_callback_manager_add_tags (child, (const char * const *) run->pipeline->config->tags, TRUE);
  return child;
}

/* Opens a child chain run (prompt or parser) of the root. */
static void
start_step (PipelineRun *run,
            const char  *tag,
            const char  *name,
            const char  *run_type,
            json_t      *inputs,
            Step         next)
{
  g_autoptr (ChimeCallbackManager) child = step_manager (run, tag);
  ChimeEvent *event;

  g_clear_pointer (&run->step, chime_run_unref);
  run->step = chime_callback_manager_prepare_chain_start (child, NULL, inputs, name, run_type, &event);
  run->step_open = TRUE;
  emit (run, run->step, event, next);
}

/* Closes the open child chain run with @outputs. */
static void
end_step (PipelineRun *run,
          json_t      *outputs,
          Step         next)
{
  run->step_open = FALSE;
  emit (run, run->step, chime_run_prepare_chain_end (run->step, outputs), next);
}

static void
start_prompt (PipelineRun *run)
{
  start_step (run, "seq:step:1", "ChatPromptTemplate", "prompt", run->inputs, render_prompt);
}

static json_t *
message (const char *type,
         const char *content)
{
  return json_pack ("{s:s, s:s}", "type", type, "content", content);
}

static void
render_prompt (PipelineRun *run)
{
  ChimePipelineConfig *config = run->pipeline->config;
  g_autofree char *human = NULL;
  g_autoptr (json_t) outputs = NULL;
  GError *error = NULL;

  run->messages = json_array ();
  if (config->system != NULL)
    {
      g_autofree char *system = chime_prompt_render (config->system, run->variables, &error);
      if (system == NULL)
        {
          fail (run, error);
          return;
        }
      json_array_append_new (run->messages, message ("system", system));
    }
  human = chime_prompt_render (config->prompt, run->variables, &error);
  if (human == NULL)
    {
      fail (run, error);
      return;
    }
  json_array_append_new (run->messages, message ("human", human));
  outputs = json_pack ("{s:O}", "messages", run->messages);
  end_step (run, outputs, start_model);
}

static void
start_model (PipelineRun *run)
{
  ChimeModel *model = run->pipeline->config->model;
  g_autoptr (ChimeCallbackManager) child = step_manager (run, "seq:step:2");
  g_autoptr (json_t) serialized = NULL;
  g_autoptr (json_t) kwargs = NULL;
  g_autoptr (json_t) ls_params = chime_model_ls_params (model);
  ChimeEvent *event;

  /* The model's run only, as LangChain's chat models add them. */
  chime_callback_manager_add_metadata (child, ls_params, FALSE);

  serialized = json_pack ("{s:i, s:s, s:[s,s,s], s:s}", "lc", 1, "type", "not_implemented",
                          "id", "chime", "chat_models", model->provider->class_name,
                          "name", model->provider->class_name);
  kwargs = json_pack ("{s:o, s:{s:n}, s:n, s:i}",
                      "invocation_params", model->provider->invocation_params (model),
                      "options", "stop",
                      "name",
                      "batch_size", 1);
  run->llm = chime_callback_manager_prepare_chat_model_start (child, serialized, run->messages,
                                                              model->provider->class_name, kwargs,
                                                              &event);
  run->llm_open = TRUE;
  emit (run, run->llm, event, stream_model);
}

static void resume_token_delivered (PipelineRun *run, const GError *failure);
static void resume_token_room      (PipelineRun *run, const GError *failure);

/* A token taken by the runtime, or queued until there is room; FALSE
 * pauses the model until then. */
static gboolean
offer_token (PipelineRun *run)
{
  g_autoptr (GError) error = NULL;
  guint64 ticket;

  if (!emit_held_retries (run, &ticket))
    {
      wait_ready (run, run->llm, ticket, resume_token_room);
      return FALSE;
    }
  switch (chime_run_emit_nowait (run->llm, run->emit_event, &ticket, &error))
    {
    case CHIME_EMIT_WOULD_BLOCK:
      wait_ready (run, run->llm, ticket, resume_token_room);
      return FALSE;
    case CHIME_EMIT_FAILED:
      run->emit_event = NULL;
      fail (run, g_steal_pointer (&error));
      return FALSE;
    case CHIME_EMIT_PENDING:
      run->emit_event = NULL;
      wait_ready (run, run->llm, ticket, resume_token_delivered);
      return FALSE;
    case CHIME_EMIT_DONE:
    default:
      run->emit_event = NULL;
      return TRUE;
    }
}

/* Lets the model stream again, unless a raise_error handler failed the
 * run while it was paused, or it is being stopped (its on_done follows). */
static void
resume_model (PipelineRun  *run,
              const GError *failure)
{
  if (failure != NULL)
    fail (run, g_error_copy (failure));
  else if (run->stream != NULL && !run->failing && !run->cancelled)
    chime_model_stream_resume (run->pipeline->config->model, run->stream);
}

static void
resume_token_delivered (PipelineRun  *run,
                        const GError *failure)
{
  resume_model (run, failure);
}

static void
resume_token_room (PipelineRun  *run,
                   const GError *failure)
{
  if (offer_token (run))
    resume_model (run, failure);
}

static gboolean
on_chunk (const char *text,
          json_t     *chunk,
          gpointer    data)
{
  PipelineRun *run = data;

  g_string_append (run->text, text);
  if (run->failing || run->cancelled)
    return TRUE;   /* the stream is being cancelled */
  run->emit_event = chime_run_prepare_llm_new_token (run->llm, text, chunk);
  return offer_token (run);
}

static void
on_model_done (const ChimeModelResult *result,
               const GError           *error,
               gpointer                data)
{
  PipelineRun *run = data;

  run->stream = NULL;
  run->llm_result = chime_llm_result_new (run->llm, run->text->str, result->response_metadata,
                                          result->usage_metadata, result->generation_info);
  if (run->failing)
    {
      /* fail() cancelled the stream; go on reporting the failure. */
      fail_next (run);
      return;
    }
  if (error != NULL)
    {
      fail (run, g_error_copy (error));
      return;
    }
  run->llm_open = FALSE;
  emit (run, run->llm, chime_run_prepare_llm_end (run->llm, run->llm_result), start_parser);
}

static void
on_model_retry (json_t  *retry_state,
                gpointer data)
{
  PipelineRun *run = data;
  ChimeEvent *event = chime_run_prepare_retry (run->llm, retry_state);
  g_autoptr (GError) error = NULL;
  guint64 ticket;

  /* A retry event never holds the stream up; without room it waits for
   * the run's next event (see held_retries). */
  if (!g_queue_is_empty (&run->held_retries) ||
      chime_run_emit_nowait (run->llm, event, &ticket, &error) == CHIME_EMIT_WOULD_BLOCK)
    g_queue_push_tail (&run->held_retries, event);
}

static const ChimeModelCallbacks model_callbacks = {
  .on_chunk = on_chunk,
  .on_done = on_model_done,
  .on_retry = on_model_retry,
};

static void
stream_model (PipelineRun *run)
{
  run->stream = chime_model_stream (run->pipeline->config->model, run->messages, &model_callbacks,
                                    run, chime_runtime_get_main_context (run->runtime));
}

/* The AIMessage inside an LLMResult (borrowed): the parser's input. */
static json_t *
llm_result_message (json_t *result)
{
  json_t *generations = json_object_get (result, "generations");

  return json_object_get (json_array_get (json_array_get (generations, 0), 0), "message");
}

static void
start_parser (PipelineRun *run)
{
  ChimeOutputParserKind kind = run->pipeline->config->parser;

  start_step (run, "seq:step:3", chime_output_parser_name (kind), "parser",
              llm_result_message (run->llm_result), parse_output);
}

static void
parse_output (PipelineRun *run)
{
  GError *error = NULL;

  run->output = chime_output_parser_parse (run->pipeline->config->parser, run->text->str, &error);
  if (run->output == NULL)
    {
      fail (run, error);
      return;
    }
  end_step (run, run->output, end_root);
}

static void
end_root (PipelineRun *run)
{
  run->root_open = FALSE;
  emit (run, run->root, chime_run_prepare_chain_end (run->root, run->output), complete);
}

static void
complete (PipelineRun *run)
{
  GTask *task = run->task;
  char run_id[CHIME_RUN_ID_STRING_LEN];
  json_t *result;

  chime_run_id_to_string (chime_run_info_get_id (chime_run_get_info (run->root)), run_id);
  result = json_pack ("{s:s, s:O, s:O}",
                      "run_id", run_id,
                      "output", run->output,
                      "llm_result", run->llm_result);

  g_task_return_pointer (task, result, (GDestroyNotify) json_decref);
  g_object_unref (task);
}

/* ------------------------------------------------------------------
 * Failure: report it to every open run, innermost first
 * ---------------------------------------------------------------- */

static void
fail_next (PipelineRun *run)
{
  GTask *task = run->task;

  if (run->stream != NULL)
    {
      /* on_model_done comes back here once the stream has stopped. */
      chime_model_stream_cancel (run->pipeline->config->model, run->stream);
      return;
    }
  if (run->emit_event != NULL)
    {
      /* A token still waiting for room when the stream stopped: it is part
       * of the partial answer llm_error carries, so it goes first. */
      emit (run, run->llm, g_steal_pointer (&run->emit_event), fail_next);
      return;
    }
  if (run->llm_open)
    {
      run->llm_open = FALSE;
      emit (run, run->llm, chime_run_prepare_llm_error (run->llm, run->failure, run->llm_result),
            fail_next);
      return;
    }
  if (run->step_open)
    {
      run->step_open = FALSE;
      emit (run, run->step, chime_run_prepare_chain_error (run->step, run->failure), fail_next);
      return;
    }
  if (run->root_open)
    {
      run->root_open = FALSE;
      emit (run, run->root, chime_run_prepare_chain_error (run->root, run->failure), fail_next);
      return;
    }
  g_task_return_error (task, g_error_copy (run->failure));
  g_object_unref (task);
}

static void
fail (PipelineRun *run,
      GError      *error)
{
  if (run->failing)
    {
      g_error_free (error);
      return;
    }
  run->failing = TRUE;
  run->failure = error;
  fail_next (run);
}

static void
on_cancelled (GCancellable *cancellable,
              gpointer      data)
{
  PipelineRun *run = data;

  run->cancelled = TRUE;
  if (run->stream != NULL && !run->failing)
    chime_model_stream_cancel (run->pipeline->config->model, run->stream);
}

static json_t *
variables_to_json (GHashTable *variables)
{
  json_t *object = json_object ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, variables);
  while (g_hash_table_iter_next (&iter, &key, &value))
    json_object_set_new (object, key, json_string (value));
  return object;
}

void
chime_pipeline_run_async (ChimePipeline      *pipeline,
                          GHashTable         *variables,
                          GCancellable       *cancellable,
                          GAsyncReadyCallback callback,
                          gpointer            user_data)
{
  PipelineRun *run = g_new0 (PipelineRun, 1);

  run->pipeline = pipeline;
  run->runtime = pipeline->runtime;
  run->variables = g_hash_table_ref (variables);
  run->inputs = variables_to_json (variables);
  run->text = g_string_new (NULL);
  run->task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (run->task, chime_pipeline_run_async);
  g_task_set_task_data (run->task, run, (GDestroyNotify) pipeline_run_free);
  g_task_set_check_cancellable (run->task, FALSE);
  if (cancellable != NULL)
    {
      run->cancellable = g_object_ref (cancellable);
      run->cancel_handler = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled), run, NULL);
    }
  start_root (run);
}

json_t *
chime_pipeline_run_finish (ChimePipeline *pipeline,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
