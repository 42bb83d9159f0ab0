/* An agent run: LangChain's AgentExecutor over the pipeline's sequence.
 *
 * The executor is the root chain run. Each turn runs the sequence
 * (prompt | model | parser, a child chain run of the executor) on the
 * conversation so far; when the model asks for tools, the executor emits
 * on_text with the model's text (if any), then for each call in order
 * agent_action and the tool's tool_start (a child run of the executor),
 * runs the tools at once (in parallel), and emits their tool_end or
 * tool_error in call order. The ai message and one tool message per call
 * go into the next turn's prompt. A turn without tool calls ends the
 * executor with agent_finish and chain_end {"output"}. After
 * max_iterations turns that called tools the run fails, as LangChain's
 * executor stops there.
 *
 * A call the model made with malformed arguments, or to a tool it was not
 * offered, is not run: its tool run ends with tool_error, and the error
 * goes back to the model as the tool's answer so that it can correct
 * itself; so does a tool that fails (LangChain's handle_tool_error). */
#include "config.h"

#include "pipeline-run-private.h"
#include "pipeline-error.h"

typedef struct {
  PipelineRun *owner;
  ChimeTool   *tool;        /* borrowed; NULL: not run (error is set) */
  char        *name;
  char        *id;
  json_t      *args;        /* an object; {} for an invalid call */
  char        *input_str;   /* the arguments as the model wrote them */
  ChimeRun    *run;
  gboolean     open;
  char        *output;
  GError      *error;
} AgentCall;

struct _PipelineAgent {
  ChimeAgentConfig *config;
  ChimeRun         *executor;
  gboolean          executor_open;
  gint64            turns;          /* turns that called tools */
  json_t           *scratchpad;     /* the ai and tool messages so far */
  json_t           *steps;          /* [[action, observation], ...] */
  GPtrArray        *calls;          /* AgentCall *: this turn's */
  json_t           *ai_message;
  guint             next;           /* the call whose event comes next */
  guint             running;
  GCancellable     *cancellable;
};

static void
agent_call_free (AgentCall *call)
{
  g_free (call->name);
  g_free (call->id);
  json_decref (call->args);
  g_free (call->input_str);
  g_clear_pointer (&call->run, chime_run_unref);
  g_free (call->output);
  g_clear_error (&call->error);
  g_free (call);
}

PipelineAgent *
chime_pipeline_agent_new (ChimeAgentConfig *config)
{
  PipelineAgent *agent = g_new0 (PipelineAgent, 1);

  agent->config = config;
  agent->scratchpad = json_array ();
  agent->steps = json_array ();
  agent->calls = g_ptr_array_new_with_free_func ((GDestroyNotify) agent_call_free);
  agent->cancellable = g_cancellable_new ();
  return agent;
}

void
chime_pipeline_agent_free (PipelineAgent *agent)
{
  if (agent == NULL)
    return;
  g_clear_pointer (&agent->executor, chime_run_unref);
  json_decref (agent->scratchpad);
  json_decref (agent->steps);
  g_ptr_array_unref (agent->calls);
  g_clear_pointer (&agent->ai_message, json_decref);
  g_object_unref (agent->cancellable);
  g_free (agent);
}

void
chime_pipeline_agent_start (PipelineRun *run,
                            Step         next)
{
  PipelineAgent *agent = run->agent;
  ChimeEvent *event;

  agent->executor = chime_callback_manager_prepare_chain_start (run->root_manager, NULL, run->inputs,
                                                                agent->config->name, NULL, &event);
  agent->executor_open = TRUE;
  chime_pipeline_run_emit (run, agent->executor, event, next);
}

ChimeRun *
chime_pipeline_agent_get_executor (PipelineAgent *agent)
{
  return agent->executor;
}

ChimeCallbackManager *
chime_pipeline_agent_sequence_manager (PipelineAgent *agent)
{
  return chime_run_get_child (agent->executor, NULL);
}

json_t *
chime_pipeline_agent_sequence_inputs (PipelineRun *run)
{
  json_t *inputs = json_deep_copy (run->inputs);

  json_object_set (inputs, "intermediate_steps", run->agent->steps);
  return inputs;
}

void
chime_pipeline_agent_add_scratchpad (PipelineAgent *agent,
                                     json_t        *messages)
{
  json_array_extend (messages, agent->scratchpad);
}

json_t *
chime_pipeline_agent_get_tools (PipelineAgent *agent)
{
  return agent->config->tool_specs;
}

void
chime_pipeline_agent_cancel (PipelineAgent *agent)
{
  g_cancellable_cancel (agent->cancellable);
}

/* ------------------------------------------------------------------
 * The calls of a turn
 * ---------------------------------------------------------------- */

static AgentCall *
add_call (PipelineRun *run,
          json_t      *call_json)
{
  AgentCall *call = g_new0 (AgentCall, 1);
  json_t *args = json_object_get (call_json, "args");

  call->owner = run;
  call->name = g_strdup (json_string_value (json_object_get (call_json, "name")));
  call->id = g_strdup (json_string_value (json_object_get (call_json, "id")));
  call->args = json_is_object (args) ? json_incref (args) : json_object ();
  call->input_str = json_is_string (args) ? g_strdup (json_string_value (args))
                                          : json_dumps (call->args, JSON_COMPACT);
  if (call->name == NULL)
    call->name = g_strdup ("");
  g_ptr_array_add (run->agent->calls, call);
  return call;
}

/* The turn's calls: valid ones with their tool, then the malformed ones,
 * which fail without running. */
static void
collect_calls (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  gsize i;
  json_t *call_json;

  g_ptr_array_set_size (agent->calls, 0);
  json_array_foreach (run->tool_calls, i, call_json)
    {
      AgentCall *call = add_call (run, call_json);

      call->tool = chime_agent_config_find_tool (agent->config, call->name);
      if (call->tool == NULL)
        {
          g_autofree char *names = chime_agent_config_tool_names (agent->config);

          call->error = g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_TOOL,
                                     "%s is not a valid tool, try one of [%s].", call->name, names);
        }
    }
  json_array_foreach (run->invalid_tool_calls, i, call_json)
    {
      AgentCall *call = add_call (run, call_json);
      const char *reason = json_string_value (json_object_get (call_json, "error"));

      call->error = g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_TOOL,
                                 "the model called tool '%s' with malformed arguments (%s): %s",
                                 call->name, reason != NULL ? reason : "not a JSON object",
                                 call->input_str);
    }
}

static json_t *
ai_message (PipelineRun *run)
{
  json_t *message = json_pack ("{s:s, s:s, s:O}", "type", "ai", "content", run->text->str,
                               "tool_calls", run->tool_calls != NULL ? run->tool_calls : json_array ());

  if (run->invalid_tool_calls != NULL)
    json_object_set (message, "invalid_tool_calls", run->invalid_tool_calls);
  return message;
}

/* LangChain's ToolAgentAction, as its tool-calling agent logs it. */
static json_t *
agent_action (PipelineRun *run,
              AgentCall   *call)
{
  const char *content = run->text->str;
  g_autofree char *said = content[0] != '\0' ? g_strdup_printf ("responded: %s\n", content)
                                             : g_strdup ("\n");
  g_autofree char *log = g_strdup_printf ("\nInvoking: `%s` with `%s`\n%s\n", call->name,
                                          call->input_str, said);

  return json_pack ("{s:s, s:O, s:s, s:s, s:[O], s:s}", "tool", call->name,
                    "tool_input", call->args, "log", log, "type", "AgentActionMessageLog",
                    "message_log", run->agent->ai_message, "tool_call_id", call->id);
}

static void emit_next_action (PipelineRun *run);
static void emit_next_end (PipelineRun *run);

static void
start_tool (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  AgentCall *call = agent->calls->pdata[agent->next++];
  g_autoptr (ChimeCallbackManager) child = chime_run_get_child (agent->executor, NULL);
  g_autoptr (json_t) serialized = json_pack ("{s:s, s:s}", "name", call->name, "description",
                                             call->tool != NULL ? call->tool->description : "");
  ChimeEvent *event;

  call->run = chime_callback_manager_prepare_tool_start (child, serialized, call->input_str,
                                                         call->args, call->name, &event);
  call->open = TRUE;
  chime_pipeline_run_emit (run, call->run, event, emit_next_action);
}

/* One tool less running: after the last, the ends, in call order. */
static void
tool_finished (PipelineRun *run)
{
  if (--run->agent->running > 0)
    return;
  run->agent->next = 0;
  if (run->failing)
    chime_pipeline_run_fail_next (run);
  else
    emit_next_end (run);
}

static void
on_tool_done (char     *output,
              GError   *error,
              gpointer  data)
{
  AgentCall *call = data;
  PipelineRun *run = call->owner;

  call->output = output;
  call->error = error;
  tool_finished (run);
  chime_pipeline_run_unref (run);
}

/* Every call's start is out: run the tools, all at once. */
static void
run_tools (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  GMainContext *context = chime_runtime_get_main_context (run->runtime);

  agent->running = 1;   /* until every tool has started */
  for (guint i = 0; i < agent->calls->len; i++)
    {
      AgentCall *call = agent->calls->pdata[i];

      if (call->error != NULL)
        continue;
      agent->running++;
      chime_pipeline_run_ref (run);
      chime_tool_invoke (call->tool, call->args, call->run, agent->cancellable, context,
                         on_tool_done, call);
    }
  tool_finished (run);
}

static void
emit_next_action (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  g_autoptr (json_t) action = NULL;

  if (agent->next == agent->calls->len)
    {
      run_tools (run);
      return;
    }
  action = agent_action (run, agent->calls->pdata[agent->next]);
  chime_pipeline_run_emit (run, agent->executor, chime_run_prepare_agent_action (agent->executor, action),
                           start_tool);
}

/* What the model reads of a call: the tool's output or its error. */
static char *
observation (AgentCall *call)
{
  if (call->error != NULL)
    return g_strdup_printf ("Error: %s", call->error->message);
  return g_strdup (call->output);
}

static void
add_results (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;

  json_array_append (agent->scratchpad, agent->ai_message);
  for (guint i = 0; i < agent->calls->len; i++)
    {
      AgentCall *call = agent->calls->pdata[i];
      g_autofree char *seen = observation (call);
      json_t *message = json_pack ("{s:s, s:s, s:s, s:s}", "type", "tool", "content", seen,
                                   "tool_call_id", call->id, "name", call->name);

      /* LangChain's ToolMessage(status="error"), as a tool run with
       * handle_tool_error answers: Anthropic then gets the result with
       * is_error, so the model knows the "Error: ..." text is a failure
       * and not the tool's output. */
      if (call->error != NULL)
        json_object_set_new (message, "status", json_string ("error"));
      json_array_append_new (agent->scratchpad, message);
      json_array_append_new (agent->steps, json_pack ("[o, s]", agent_action (run, call), seen));
    }
}

static void
next_turn (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;

  add_results (run);
  if (agent->turns >= agent->config->max_iterations)
    {
      chime_pipeline_run_fail (run, g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_AGENT,
                                                 "agent stopped after max_iterations = %" G_GINT64_FORMAT
                                                 " turns, the model still calling tools; raise "
                                                 "max_iterations in [agent] if it needs more",
                                                 agent->config->max_iterations));
      return;
    }
  chime_pipeline_run_next_turn (run);
}

static void
emit_next_end (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  AgentCall *call;
  ChimeEvent *event;

  if (agent->next == agent->calls->len)
    {
      next_turn (run);
      return;
    }
  call = agent->calls->pdata[agent->next++];
  call->open = FALSE;
  if (call->error != NULL)
    event = chime_run_prepare_tool_error (call->run, call->error);
  else
    {
      g_autoptr (json_t) output = json_string (call->output);

      event = chime_run_prepare_tool_end (call->run, output);
    }
  chime_pipeline_run_emit (run, call->run, event, emit_next_end);
}

/* ------------------------------------------------------------------
 * After each turn
 * ---------------------------------------------------------------- */

static void
end_executor (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  g_autoptr (json_t) outputs = json_pack ("{s:O}", "output", run->output);

  agent->executor_open = FALSE;
  chime_pipeline_run_emit (run, agent->executor, chime_run_prepare_chain_end (agent->executor, outputs),
                           chime_pipeline_run_complete);
}

static void
finish (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;
  g_autoptr (json_t) finish = json_pack ("{s:{s:O}, s:s, s:s}", "return_values", "output", run->output,
                                         "log", run->text->str, "type", "AgentFinish");

  chime_pipeline_run_emit (run, agent->executor, chime_run_prepare_agent_finish (agent->executor, finish),
                           end_executor);
}

void
chime_pipeline_agent_after_turn (PipelineRun *run)
{
  PipelineAgent *agent = run->agent;

  if (json_array_size (run->tool_calls) + json_array_size (run->invalid_tool_calls) == 0)
    {
      finish (run);
      return;
    }
  agent->turns++;
  collect_calls (run);
  g_clear_pointer (&agent->ai_message, json_decref);
  agent->ai_message = ai_message (run);
  agent->next = 0;
  if (run->text->len == 0)
    {
      emit_next_action (run);
      return;
    }
  /* The model's words besides its calls: LangChain shows them as text. */
  chime_pipeline_run_emit (run, agent->executor, chime_run_prepare_text (agent->executor, run->text->str),
                           emit_next_action);
}

/* ------------------------------------------------------------------
 * Failure
 * ---------------------------------------------------------------- */

gboolean
chime_pipeline_agent_fail_next (PipelineRun *run,
                                Step         next)
{
  PipelineAgent *agent = run->agent;

  if (agent->running > 0)
    {
      /* on_tool_done comes back to the report once all have stopped. */
      g_cancellable_cancel (agent->cancellable);
      return TRUE;
    }
  for (guint i = 0; i < agent->calls->len; i++)
    {
      AgentCall *call = agent->calls->pdata[i];

      if (!call->open)
        continue;
      call->open = FALSE;
      chime_pipeline_run_emit (run, call->run,
                               chime_run_prepare_tool_error (call->run, call->error != NULL
                                                                          ? call->error : run->failure),
                               next);
      return TRUE;
    }
  if (agent->executor_open)
    {
      agent->executor_open = FALSE;
      chime_pipeline_run_emit (run, agent->executor,
                               chime_run_prepare_chain_error (agent->executor, run->failure), next);
      return TRUE;
    }
  return FALSE;
}
