/* Running a pipeline: a state machine on the main loop, which streams
 * through the sequence as LangChain's RunnableSequence.stream() does.
 *
 * Runs nest as LangChain's: a root chain run, and children for the prompt
 * (seq:step:1), the chat model (seq:step:2) and the parser (seq:step:3);
 * with a retriever, it is step 1 and the others follow (retriever-step.c).
 * The parser starts before the model's first chunk and transforms each
 * chunk as it comes; what it yields is the sequence's stream. With a
 * stream handler (astream_events), each step's output chunks are tapped
 * as chime.stream custom events on its run, in LangChain's order: the
 * model's token, the parser's chunk, the sequence's chunk. Emitting and
 * waiting is pipeline-emit.c. With [agent], the sequence is one turn of
 * an agent's executor, run again after each turn that calls tools
 * (pipeline-agent.c). */
#include "config.h"

#include "pipeline-run-private.h"
#include "pipeline-error.h"
#include "prompt.h"
#include "string-append.h"

void
chime_pipeline_run_free (PipelineRun *run)
{
  if (run->cancel_handler != 0)
    g_cancellable_disconnect (run->cancellable, run->cancel_handler);
  g_clear_object (&run->cancellable);
  g_hash_table_unref (run->variables);
  g_clear_pointer (&run->root_manager, chime_callback_manager_unref);
  g_clear_pointer (&run->root, chime_run_unref);
  g_clear_pointer (&run->step, chime_run_unref);
  g_clear_pointer (&run->llm, chime_run_unref);
  g_clear_pointer (&run->retriever, chime_run_unref);
  g_clear_pointer (&run->inputs, json_decref);
  g_clear_pointer (&run->messages, json_decref);
  g_string_free (run->text, TRUE);
  g_clear_pointer (&run->llm_result, json_decref);
  g_clear_pointer (&run->tool_calls, json_decref);
  g_clear_pointer (&run->invalid_tool_calls, json_decref);
  g_clear_pointer (&run->output, json_decref);
  g_clear_error (&run->failure);
  chime_pipeline_agent_free (run->agent);
  g_clear_pointer (&run->emit_event, chime_event_unref);
  g_queue_clear_full (&run->held_retries, (GDestroyNotify) chime_event_unref);
  chime_pipeline_run_clear_chunk_events (run);
  chime_parser_stream_free (run->parser);
  g_main_context_unref (run->context);
  g_free (run);
}

static void start_first_step (PipelineRun *run);
static void start_sequence (PipelineRun *run);
static void start_prompt (PipelineRun *run);
static void render_prompt (PipelineRun *run);
static void start_model (PipelineRun *run);
static void stream_model (PipelineRun *run);
static void start_parser (PipelineRun *run);
static void end_root (PipelineRun *run);

static void
start_root (PipelineRun *run)
{
  ChimePipelineConfig *config = run->pipeline->config;

  run->root_manager = chime_runtime_new_callback_manager (run->runtime);
  chime_callback_manager_add_tags (run->root_manager, (const char * const *) config->tags, TRUE);
  chime_callback_manager_add_metadata (run->root_manager, config->metadata, TRUE);
  if (config->agent != NULL)
    {
      run->agent = chime_pipeline_agent_new (config->agent);
      chime_pipeline_agent_start (run, start_sequence);
    }
  else
    start_sequence (run);
}

/* The sequence's run: the root, or a turn of the agent's executor. */
static void
start_sequence (PipelineRun *run)
{
  ChimePipelineConfig *config = run->pipeline->config;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) inputs = NULL;
  ChimeEvent *event;

  if (run->agent != NULL)
    {
      manager = chime_pipeline_agent_sequence_manager (run->agent);
      inputs = chime_pipeline_agent_sequence_inputs (run);
    }
  else
    {
      manager = chime_callback_manager_ref (run->root_manager);
      inputs = json_incref (run->inputs);
    }
  run->root = chime_callback_manager_prepare_chain_start (manager, NULL, inputs, config->name,
                                                          NULL, &event);
  run->root_open = TRUE;
  chime_pipeline_run_emit (run, run->root, event, start_first_step);
}

static void
start_first_step (PipelineRun *run)
{
  if (run->pipeline->config->retriever != NULL)
    chime_pipeline_run_retrieve (run, start_prompt);
  else
    start_prompt (run);
}

/* "seq:step:N" of the @n-th step after the retriever, which is step 1
 * when there is one. */
static char *
step_tag (PipelineRun *run,
          guint        n)
{
  return g_strdup_printf ("seq:step:%u", n + (run->pipeline->config->retriever != NULL ? 1 : 0));
}

void
chime_pipeline_run_next_turn (PipelineRun *run)
{
  g_clear_pointer (&run->root, chime_run_unref);
  g_clear_pointer (&run->step, chime_run_unref);
  g_clear_pointer (&run->llm, chime_run_unref);
  g_clear_pointer (&run->messages, json_decref);
  g_string_truncate (run->text, 0);
  g_clear_pointer (&run->llm_result, json_decref);
  g_clear_pointer (&run->tool_calls, json_decref);
  g_clear_pointer (&run->invalid_tool_calls, json_decref);
  g_clear_pointer (&run->output, json_decref);
  g_clear_pointer (&run->parser, chime_parser_stream_free);
  start_sequence (run);
}

/* The callback manager of step @tag. LangChain configures each step with
 * the sequence's config, whose tags it adds again to the child manager:
 * adding moves a tag to the end, so the step tag comes first
 * (["seq:step:1", "jokes"]). */
ChimeCallbackManager *
chime_pipeline_run_step_manager (PipelineRun *run,
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
  g_autoptr (ChimeCallbackManager) child = chime_pipeline_run_step_manager (run, tag);
  ChimeEvent *event;

  g_clear_pointer (&run->step, chime_run_unref);
  run->step = chime_callback_manager_prepare_chain_start (child, NULL, inputs, name, run_type, &event);
  run->step_open = TRUE;
  chime_pipeline_run_emit (run, run->step, event, next);
}

/* Closes the open child chain run with @outputs. */
static void
end_step (PipelineRun *run,
          json_t      *outputs,
          Step         next)
{
  run->step_open = FALSE;
  chime_pipeline_run_emit (run, run->step, chime_run_prepare_chain_end (run->step, outputs),
                           next);
}

static void
start_prompt (PipelineRun *run)
{
  g_autofree char *tag = step_tag (run, 1);

  start_step (run, tag, "ChatPromptTemplate", "prompt", run->inputs, render_prompt);
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
          chime_pipeline_run_fail (run, error);
          return;
        }
      json_array_append_new (run->messages, message ("system", system));
    }
  human = chime_prompt_render (config->prompt, run->variables, &error);
  if (human == NULL)
    {
      chime_pipeline_run_fail (run, error);
      return;
    }
  json_array_append_new (run->messages, message ("human", human));
  if (run->agent != NULL)
    chime_pipeline_agent_add_scratchpad (run->agent, run->messages);
  outputs = json_pack ("{s:O}", "messages", run->messages);
  end_step (run, outputs, start_model);
}

static void
start_model (PipelineRun *run)
{
  ChimeModel *model = run->pipeline->config->model;
  g_autofree char *tag = step_tag (run, 2);
  g_autoptr (ChimeCallbackManager) child = chime_pipeline_run_step_manager (run, tag);
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
  chime_pipeline_run_emit (run, run->llm, event, start_parser);
}

/* The sequence's stream: what the parser yields for a chunk. */
static void
stream_output_chunk (PipelineRun *run,
                     json_t      *chunk)
{
  ChimePipeline *pipeline = run->pipeline;
  g_autoptr (json_t) data = NULL;

  if (pipeline->on_chunk != NULL)
    pipeline->on_chunk (chunk, pipeline->on_chunk_data);
  if (!pipeline->tap_streams)
    return;
  /* LangChain's order: the parser's chunk, then the sequence's. Both
   * events share the data (events are immutable). */
  data = json_pack ("{s:O}", "chunk", chunk);
  chime_pipeline_run_queue_chunk_event (run, run->step,
                                        chime_run_prepare_custom_event (run->step, CHIME_STREAM_EVENT, data));
  chime_pipeline_run_queue_chunk_event (run, run->root,
                                        chime_run_prepare_custom_event (run->root, CHIME_STREAM_EVENT, data));
}

/* A chunk that carries more than text (a piece of a tool call) is built
 * now; a text chunk is built only if a handler reads it. */
static ChimeEvent *
new_token_event (PipelineRun *run,
                 const char  *text,
                 json_t      *chunk)
{
  g_autoptr (json_t) full = NULL;

  if (G_LIKELY (chunk == NULL))
    return chime_run_prepare_llm_new_token (run->llm, text, NULL);
  full = chime_llm_chunk_new (run->llm, text, chunk);
  return chime_run_prepare_llm_new_token (run->llm, text, full);
}

/* A chunk whose parser's stream handlers tap: the token, then what the
 * parser yields for it, as events in that order. */
static gboolean
offer_watched_chunk (PipelineRun *run,
                     const char  *text,
                     ChimeEvent  *token)
{
  g_autoptr (json_t) parsed = NULL;

  chime_pipeline_run_queue_chunk_event (run, run->llm, token);
  parsed = chime_parser_stream_feed (run->parser, text);
  if (parsed != NULL)
    stream_output_chunk (run, parsed);
  return chime_pipeline_run_offer_chunk_events (run);
}

static gboolean
on_chunk (const char *text,
          gsize       length,
          json_t     *chunk,
          gpointer    data)
{
  PipelineRun *run = data;
  g_autoptr (json_t) full = NULL;
  gboolean go_on;

  chime_string_append_bytes (run->text, text, length);
  if (run->failing || run->cancelled)
    return TRUE;   /* the stream is being cancelled */
  /* The parser's stream matters only to whoever watches it; its output
   * is the whole text parsed at the end either way. Handlers that tap
   * the steps' streams get its chunks as events, behind the token. */
  if (G_UNLIKELY (run->pipeline->tap_streams))
    return offer_watched_chunk (run, text, new_token_event (run, text, chunk));
  /* A chunk that carries more than text (a piece of a tool call) is
   * built now; a text chunk is built only if a handler reads it. */
  if (G_UNLIKELY (chunk != NULL))
    full = chime_llm_chunk_new (run->llm, text, chunk);
  go_on = chime_pipeline_run_offer_token (run, text, full);
  /* A watcher of the parser's stream alone (`chime run` printing it)
   * gets its chunks here; no event follows the token, so it still goes
   * without a prepared event. */
  if (G_UNLIKELY (run->pipeline->on_chunk != NULL))
    {
      g_autoptr (json_t) parsed = chime_parser_stream_feed (run->parser, text);

      if (parsed != NULL)
        stream_output_chunk (run, parsed);
    }
  return go_on;
}

static void end_parser (PipelineRun *run);

/* The calls the model asked for go on the message of its LLMResult, as
 * LangChain's AIMessageChunk carries them. */
static void
set_tool_calls (json_t                 *llm_result,
                const ChimeModelResult *result)
{
  json_t *generation = json_array_get (json_array_get (json_object_get (llm_result, "generations"), 0), 0);
  json_t *message = json_object_get (generation, "message");

  if (result->tool_calls != NULL)
    json_object_set (message, "tool_calls", result->tool_calls);
  if (result->invalid_tool_calls != NULL)
    json_object_set (message, "invalid_tool_calls", result->invalid_tool_calls);
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
  set_tool_calls (run->llm_result, result);
  run->tool_calls = result->tool_calls != NULL ? json_incref (result->tool_calls) : NULL;
  run->invalid_tool_calls = result->invalid_tool_calls != NULL
                              ? json_incref (result->invalid_tool_calls) : NULL;
  if (run->failing)
    {
      /* fail() cancelled the stream; go on reporting the failure. */
      chime_pipeline_run_fail_next (run);
      return;
    }
  if (error != NULL)
    {
      chime_pipeline_run_fail (run, g_error_copy (error));
      return;
    }
  run->llm_open = FALSE;
  chime_pipeline_run_emit (run, run->llm, chime_run_prepare_llm_end (run->llm, run->llm_result),
                           end_parser);
}

static void
on_model_retry (json_t  *retry_state,
                gpointer data)
{
  chime_pipeline_run_emit_retry (data, retry_state);
}

static const ChimeModelCallbacks model_callbacks = {
  .on_chunk = on_chunk,
  .on_done = on_model_done,
  .on_retry = on_model_retry,
};

static void
stream_model (PipelineRun *run)
{
  json_t *tools = run->agent != NULL ? chime_pipeline_agent_get_tools (run->agent) : NULL;

  run->stream = chime_model_stream (run->pipeline->config->model, run->messages, tools, &model_callbacks,
                                    run, chime_runtime_get_main_context (run->runtime));
}

/* The parser starts before the model's first chunk: its input streams in,
 * so it starts with LangChain's placeholder {"input": ""} and ends with
 * the whole message as its input. */
static void
start_parser (PipelineRun *run)
{
  ChimeOutputParserKind kind = run->pipeline->config->parser;
  g_autoptr (json_t) placeholder = json_pack ("{s:s}", "input", "");
  g_autofree char *tag = step_tag (run, 3);

  run->parser = chime_parser_stream_new (kind);
  start_step (run, tag, chime_output_parser_name (kind), "parser", placeholder,
              stream_model);
}

/* The AIMessage inside an LLMResult (borrowed): the parser's input. */
static json_t *
llm_result_message (json_t *result)
{
  json_t *generations = json_object_get (result, "generations");

  return json_object_get (json_array_get (json_array_get (generations, 0), 0), "message");
}

static void
end_parser (PipelineRun *run)
{
  GError *error = NULL;
  json_t *content = json_object_get (llm_result_message (run->llm_result), "content");

  /* The str parser's output is the model's text, which the LLM result
   * holds as a JSON string already: shared rather than checked and
   * copied once more (it is the whole response, 400 kB in bench row h1). */
  if (run->pipeline->config->parser == CHIME_OUTPUT_PARSER_STR && json_is_string (content))
    run->output = json_incref (content);
  else
    run->output = chime_output_parser_parse (run->pipeline->config->parser, run->text->str, &error);
  if (run->output == NULL)
    {
      chime_pipeline_run_fail (run, error);
      return;
    }
  run->step_open = FALSE;
  chime_pipeline_run_emit (run, run->step,
        chime_run_prepare_chain_end_with_inputs (run->step, run->output,
                                                 llm_result_message (run->llm_result)),
        end_root);
}

static void
end_root (PipelineRun *run)
{
  run->root_open = FALSE;
  chime_pipeline_run_emit (run, run->root, chime_run_prepare_chain_end (run->root, run->output),
                           run->agent != NULL ? chime_pipeline_agent_after_turn
                                              : chime_pipeline_run_complete);
}

void
chime_pipeline_run_complete (PipelineRun *run)
{
  ChimeRun *root = run->agent != NULL ? chime_pipeline_agent_get_executor (run->agent) : run->root;
  char run_id[CHIME_RUN_ID_STRING_LEN];
  json_t *result;

  chime_run_id_to_string (chime_run_info_get_id (chime_run_get_info (root)), run_id);
  result = json_pack ("{s:s, s:O, s:O}",
                      "run_id", run_id,
                      "output", run->output,
                      "llm_result", run->llm_result);

  chime_pipeline_run_answer (run, result, NULL);
}

/* ------------------------------------------------------------------
 * Failure: report it to every open run, innermost first
 * ---------------------------------------------------------------- */

void
chime_pipeline_run_fail_next (PipelineRun *run)
{
  Step next = chime_pipeline_run_fail_next;

  if (run->stream != NULL)
    {
      /* on_model_done comes back here once the stream has stopped. */
      chime_model_stream_cancel (run->pipeline->config->model, run->stream);
      return;
    }
  if (chime_pipeline_run_emit_held_chunk_event (run, next))
    return;
  if (run->llm_open)
    {
      run->llm_open = FALSE;
      chime_pipeline_run_emit (run, run->llm,
                               chime_run_prepare_llm_error (run->llm, run->failure, run->llm_result),
                               next);
      return;
    }
  if (run->retriever_open)
    {
      run->retriever_open = FALSE;
      chime_pipeline_run_emit (run, run->retriever,
                               chime_run_prepare_retriever_error (run->retriever, run->failure), next);
      return;
    }
  if (run->step_open)
    {
      run->step_open = FALSE;
      chime_pipeline_run_emit (run, run->step, chime_run_prepare_chain_error (run->step, run->failure),
                               next);
      return;
    }
  if (run->root_open)
    {
      run->root_open = FALSE;
      chime_pipeline_run_emit (run, run->root, chime_run_prepare_chain_error (run->root, run->failure),
                               next);
      return;
    }
  if (run->agent != NULL && chime_pipeline_agent_fail_next (run, next))
    return;
  chime_pipeline_run_answer (run, NULL, g_error_copy (run->failure));
}

void
chime_pipeline_run_fail (PipelineRun *run,
                         GError      *error)
{
  if (run->failing)
    {
      g_error_free (error);
      return;
    }
  run->failing = TRUE;
  run->failure = error;
  chime_pipeline_run_fail_next (run);
}

static void
on_cancelled (GCancellable *cancellable,
              gpointer      data)
{
  PipelineRun *run = data;

  run->cancelled = TRUE;
  if (run->stream != NULL && !run->failing)
    chime_model_stream_cancel (run->pipeline->config->model, run->stream);
  if (run->agent != NULL)
    chime_pipeline_agent_cancel (run->agent);
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
chime_pipeline_run_async (ChimePipeline        *pipeline,
                          GHashTable           *variables,
                          GCancellable         *cancellable,
                          ChimePipelineDoneFunc done,
                          gpointer              user_data)
{
  PipelineRun *run = g_new0 (PipelineRun, 1);

  run->pipeline = pipeline;
  run->runtime = pipeline->runtime;
  run->variables = g_hash_table_ref (variables);
  run->inputs = variables_to_json (variables);
  run->text = g_string_new (NULL);
  run->ref_count = 1;
  run->done = done;
  run->done_data = user_data;
  run->context = g_main_context_ref_thread_default ();
  if (cancellable != NULL)
    {
      run->cancellable = g_object_ref (cancellable);
      run->cancel_handler = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled), run, NULL);
    }
  run->started = g_get_monotonic_time ();
  start_root (run);
}
