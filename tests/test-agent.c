/* Agents run in-process: `[agent]` over the fake model's scripted tool
 * calls and `[tool NAME]` commands run as real processes, with the
 * shipped jsonl handler writing every event. They read as the
 * specification of the agent loop: LangChain's AgentExecutor events and
 * run tree, tools in parallel with results in call order, what a failing,
 * hanging or malformed tool call becomes, and max_iterations. */
#include "test-helpers.h"
#include "pipeline-helpers.h"

#include "pipeline/pipeline.h"
#include "pipeline/pipeline-error.h"

#include <glib/gstdio.h>
#include <string.h>

/* The INI of an agent whose fake model makes the calls of @script
 * (tool_calls) and then answers "Done.", with @tools (INI text) and the
 * jsonl handler writing to trace.jsonl. */
static char *
agent_ini (const char *script,
           const char *agent_keys,
           const char *tools)
{
  return g_strdup_printf ("[pipeline]\nprompt = Count the words of {text}\nmodel = m\n"
                          "tags = counting\nmetadata = {\"user\": \"ada\"}\n"
                          "[agent]\n%s\n"
                          "[model m]\nprovider = fake\nresponse = Done.\ntool_calls = %s\n"
                          "%s\n"
                          "[handler trace]\nplugin = jsonl\npath = trace.jsonl\n",
                          agent_keys, script, tools);
}

/* Runs @ini with text = "one two three"; the result, or NULL with
 * @error. */
static json_t *
run_agent (const char *ini,
           GError    **error)
{
  g_autoptr (GHashTable) variables = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (ChimePipeline) pipeline = NULL;

  g_hash_table_insert (variables, "text", "one two three");
  pipeline = chime_pipeline_new_from_data (ini, "agent.ini", test_tmpdir (), NULL, variables, error);
  if (pipeline == NULL)
    return NULL;
  return test_pipeline_run (pipeline, variables, error);
}

/* The events jsonl wrote (the pipeline is freed, so all are there). */
static json_t *
read_trace (void)
{
  g_autofree char *path = test_path ("trace.jsonl");
  g_auto (GStrv) lines = test_read_lines (path);
  json_t *events = json_array ();

  for (guint i = 0; lines != NULL && lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      json_array_append_new (events, json_loads (lines[i], 0, NULL));
  return events;
}

/* "event name" of every event but tokens, one per line. */
static char *
event_order (json_t *events)
{
  GString *order = g_string_new (NULL);
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    {
      const char *type = json_string_value (json_object_get (event, "event"));

      if (g_strcmp0 (type, "llm_new_token") != 0)
        g_string_append_printf (order, "%s %s\n", type,
                                json_string_value (json_object_get (event, "name")));
    }
  return g_string_free (order, FALSE);
}

/* The @n-th (from 0) event of type @type named @name (NULL: any). */
static json_t *
find_event (json_t     *events,
            const char *type,
            const char *name,
            guint       n)
{
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    if (g_strcmp0 (json_string_value (json_object_get (event, "event")), type) == 0 &&
        (name == NULL || g_strcmp0 (json_string_value (json_object_get (event, "name")), name) == 0) &&
        n-- == 0)
      return event;
  fail_msg ("no %s event %s #%u", type, name != NULL ? name : "", n);
  return NULL;
}

static const char *
str (json_t     *object,
     const char *key)
{
  return json_string_value (json_object_get (object, key));
}

#define TWO_CALLS                                                                       \
  "[[{\"name\": \"slow\", \"args\": {\"text\": \"one two three\"}, \"id\": \"call_a\"}, " \
  "{\"name\": \"fast\", \"args\": {\"text\": \"hi\"}, \"id\": \"call_b\"}]]"
/* slow answers only once fast has run: run one after the other, slow
 * would time out. */
#define TWO_TOOLS                                                                       \
  "[tool slow]\ndescription = waits for fast\ntimeout_ms = 10000\n"                      \
  "command = sh -c 'while [ ! -e fast.done ]; do sleep 0.01; done; echo slow'\n"          \
  "[tool fast]\ndescription = answers at once\ncommand = sh -c 'touch fast.done; echo fast'\n"

/* The AgentExecutor's events in LangChain's order, the tools' ends in
 * call order, and the run tree: the executor is the root, each turn's
 * sequence and each tool run are its children, the model a child of the
 * sequence; the pipeline's tags and metadata reach every run. */
static void
test_events_and_run_tree (void **state)
{
  g_autofree char *ini = agent_ini (TWO_CALLS, "tools = slow fast", TWO_TOOLS);
  g_autofree char *done_file = test_path ("fast.done");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = NULL;
  g_autoptr (json_t) events = NULL;
  g_autofree char *order = NULL;
  json_t *executor, *tool_a, *tool_b, *turn_2, *model_2;
  const char *executor_id;
  gsize i;
  json_t *event;

  g_unlink (done_file);
  result = run_agent (ini, &error);
  events = read_trace ();
  order = event_order (events);
  assert_null (error);
  assert_non_null (result);
  assert_string_equal (str (result, "output"), "Done.");
  assert_string_equal (order,
    "chain_start AgentExecutor\n"
    "chain_start RunnableSequence\n"
    "chain_start ChatPromptTemplate\nchain_end ChatPromptTemplate\n"
    "chat_model_start FakeStreamingChatModel\nchain_start StrOutputParser\n"
    "llm_end FakeStreamingChatModel\nchain_end StrOutputParser\n"
    "chain_end RunnableSequence\n"
    "agent_action AgentExecutor\ntool_start slow\n"
    "agent_action AgentExecutor\ntool_start fast\n"
    "tool_end slow\ntool_end fast\n"
    "chain_start RunnableSequence\n"
    "chain_start ChatPromptTemplate\nchain_end ChatPromptTemplate\n"
    "chat_model_start FakeStreamingChatModel\nchain_start StrOutputParser\n"
    "llm_end FakeStreamingChatModel\nchain_end StrOutputParser\n"
    "chain_end RunnableSequence\n"
    "agent_finish AgentExecutor\nchain_end AgentExecutor\n");

  executor = find_event (events, "chain_start", "AgentExecutor", 0);
  executor_id = str (executor, "run_id");
  assert_true (json_is_null (json_object_get (executor, "parent_run_id")));
  assert_string_equal (str (result, "run_id"), executor_id);
  tool_a = find_event (events, "tool_start", "slow", 0);
  tool_b = find_event (events, "tool_start", "fast", 0);
  assert_string_equal (str (tool_a, "parent_run_id"), executor_id);
  assert_string_equal (str (tool_b, "parent_run_id"), executor_id);
  assert_string_equal (str (find_event (events, "chain_start", "RunnableSequence", 1), "parent_run_id"),
                       executor_id);
  assert_string_equal (str (find_event (events, "tool_end", "slow", 0), "outputs"), "slow");
  assert_string_equal (str (find_event (events, "tool_end", "fast", 0), "outputs"), "fast");
  assert_string_equal (str (json_object_get (tool_a, "inputs"), "text"), "one two three");
  assert_string_equal (str (tool_a, "text"), "{\"text\":\"one two three\"}");
  assert_string_equal (str (json_object_get (tool_a, "serialized"), "description"), "waits for fast");
  json_array_foreach (events, i, event)
    {
      json_t *tags = json_object_get (event, "tags");
      gboolean tagged = FALSE;
      gsize t;
      json_t *tag;

      json_array_foreach (tags, t, tag)
        tagged |= g_strcmp0 (json_string_value (tag), "counting") == 0;
      assert_true (tagged);
      assert_string_equal (str (json_object_get (event, "metadata"), "user"), "ada");
    }

  /* The action, as LangChain's tool-calling agent logs it. */
  event = json_object_get (find_event (events, "agent_action", NULL, 1), "data");
  assert_string_equal (str (event, "tool"), "fast");
  assert_string_equal (str (event, "tool_call_id"), "call_b");
  assert_string_equal (str (event, "log"), "\nInvoking: `fast` with `{\"text\":\"hi\"}`\n\n\n");
  event = json_object_get (find_event (events, "agent_finish", NULL, 0), "data");
  assert_string_equal (str (json_object_get (event, "return_values"), "output"), "Done.");
  assert_string_equal (str (json_object_get (find_event (events, "chain_end", "AgentExecutor", 0),
                                             "outputs"), "output"), "Done.");

  /* The second turn's model sees the ai message and one tool message per
   * call, in call order. */
  turn_2 = find_event (events, "chat_model_start", NULL, 1);
  model_2 = json_array_get (json_object_get (turn_2, "messages"), 0);
  assert_int_equal (json_array_size (model_2), 4);
  assert_string_equal (str (json_array_get (model_2, 1), "type"), "ai");
  event = json_array_get (json_object_get (json_array_get (model_2, 1), "tool_calls"), 1);
  assert_string_equal (str (event, "name"), "fast");
  assert_string_equal (str (json_array_get (model_2, 2), "type"), "tool");
  assert_string_equal (str (json_array_get (model_2, 2), "tool_call_id"), "call_a");
  assert_string_equal (str (json_array_get (model_2, 2), "content"), "slow");
  assert_string_equal (str (json_array_get (model_2, 3), "tool_call_id"), "call_b");
  assert_string_equal (str (json_array_get (model_2, 3), "content"), "fast");
  (void) state;
}

/* The error a call's tool_error carries, and what the model reads back:
 * "Error: MESSAGE" as the tool's answer. */
static void
assert_tool_error (json_t     *events,
                   const char *tool,
                   const char *needle)
{
  json_t *event = find_event (events, "tool_error", tool, 0);
  const char *message = str (json_object_get (event, "error"), "message");
  json_t *messages = json_array_get (json_object_get (find_event (events, "chat_model_start", NULL, 1),
                                                      "messages"), 0);
  const char *answer = str (json_array_get (messages, json_array_size (messages) - 1), "content");

  if (strstr (message, needle) == NULL)
    fail_msg ("tool_error of %s is \"%s\", without \"%s\"", tool, message, needle);
  assert_true (g_str_has_prefix (answer, "Error: "));
  assert_string_equal (answer + strlen ("Error: "), message);
  /* The agent goes on: the model answers. */
  assert_non_null (find_event (events, "agent_finish", NULL, 0));
}

#define ONE_CALL(NAME, ARGS) "[[{\"name\": \"" NAME "\", \"args\": " ARGS "}]]"

/* A tool that hangs is killed at its timeout_ms; the run goes on. */
static void
test_hanging_tool_is_cut_by_its_timeout (void **state)
{
  g_autofree char *ini = agent_ini (ONE_CALL ("hang", "{}"), "tools = hang",
                                    "[tool hang]\ndescription = never answers\n"
                                    "command = sh -c 'echo started >&2; exec sleep 30'\ntimeout_ms = 200\n");
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = read_trace ();

  assert_null (error);
  assert_true (g_get_monotonic_time () - start < 10 * G_USEC_PER_SEC);
  assert_tool_error (events, "hang", "tool 'hang' timed out after 200 ms (timeout_ms in [tool hang]); "
                     "`sh -c 'echo started >&2; exec sleep 30'` was killed: started");
  (void) state;
}

/* A non-zero exit is a tool_error with the command's stderr. */
static void
test_failing_tool_reports_its_stderr (void **state)
{
  g_autofree char *ini = agent_ini (ONE_CALL ("fails", "{}"), "tools = fails",
                                    "[tool fails]\ndescription = fails\n"
                                    "command = sh -c 'echo no such word >&2; exit 3'\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = read_trace ();

  assert_null (error);
  assert_tool_error (events, "fails", "tool 'fails' failed: `sh -c 'echo no such word >&2; exit 3'` "
                     "exited with status 3: no such word");
  (void) state;
}

/* Arguments the model wrote that are not a JSON object: the call is not
 * run, its tool run fails, the model hears why. */
static void
test_malformed_arguments_are_a_tool_error (void **state)
{
  g_autofree char *ini = agent_ini (ONE_CALL ("echo", "\"{\\\"text\\\": \""), "tools = echo",
                                    "[tool echo]\ndescription = echoes\ncommand = cat\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = read_trace ();
  json_t *llm_end = find_event (events, "llm_end", NULL, 0);
  json_t *message = json_object_get (json_array_get (json_array_get (json_object_get (
                      json_object_get (llm_end, "response"), "generations"), 0), 0), "message");

  assert_null (error);
  assert_int_equal (json_array_size (json_object_get (message, "invalid_tool_calls")), 1);
  assert_tool_error (events, "echo", "the model called tool 'echo' with malformed arguments");
  assert_non_null (strstr (str (json_object_get (find_event (events, "tool_error", "echo", 0), "error"),
                                "message"), "{\"text\": "));
  (void) state;
}

/* A call to a tool the agent does not have: LangChain's InvalidTool
 * answer, as a tool_error. */
static void
test_unknown_tool_is_a_tool_error (void **state)
{
  g_autofree char *ini = agent_ini (ONE_CALL ("search", "{}"), "tools = echo",
                                    "[tool echo]\ndescription = echoes\ncommand = cat\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = read_trace ();

  assert_null (error);
  assert_tool_error (events, "search", "search is not a valid tool, try one of [echo].");
  (void) state;
}

/* The arguments are the command's stdin; it gets only the environment
 * `env` lists. */
static void
test_arguments_on_stdin_and_only_listed_environment (void **state)
{
  g_autofree char *ini = agent_ini (
    "[[{\"name\": \"echo\", \"args\": {\"text\": \"hi\"}}, {\"name\": \"env\", \"args\": {}}]]",
    "tools = echo env",
    "[tool echo]\ndescription = echoes\ncommand = cat\n"
    "[tool env]\ndescription = shows the environment\nenv = CHIME_TEST_SHOWN\n"
    "command = sh -c 'echo \"${CHIME_TEST_HIDDEN:-hidden} ${CHIME_TEST_SHOWN}\"'\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = NULL;
  g_autoptr (json_t) events = NULL;

  g_setenv ("CHIME_TEST_HIDDEN", "leaked", TRUE);
  g_setenv ("CHIME_TEST_SHOWN", "shown", TRUE);
  result = run_agent (ini, &error);
  events = read_trace ();
  assert_null (error);
  assert_string_equal (str (find_event (events, "tool_end", "echo", 0), "outputs"), "{\"text\":\"hi\"}");
  assert_string_equal (str (find_event (events, "tool_end", "env", 0), "outputs"), "hidden shown");
  (void) state;
}

/* A model that keeps calling tools is stopped after max_iterations turns:
 * the executor ends with chain_error, the run with that error. */
static void
test_max_iterations (void **state)
{
  g_autofree char *ini = agent_ini ("[[{\"name\": \"echo\"}], [{\"name\": \"echo\"}], [{\"name\": \"echo\"}]]",
                                    "tools = echo\nmax_iterations = 2",
                                    "[tool echo]\ndescription = echoes\ncommand = cat\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = read_trace ();
  json_t *last = json_array_get (events, json_array_size (events) - 1);

  assert_null (result);
  assert_true (g_error_matches (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_AGENT));
  assert_string_equal (error->message, "agent stopped after max_iterations = 2 turns, the model still "
                       "calling tools; raise max_iterations in [agent] if it needs more");
  assert_string_equal (str (last, "event"), "chain_error");
  assert_string_equal (str (last, "name"), "AgentExecutor");
  assert_non_null (find_event (events, "tool_end", "echo", 1));
  (void) state;
}

/* The fake model streams a call as tool_call_chunks: name and id on the
 * first piece, the arguments split across two; its text first. */
static void
test_fake_model_streams_tool_call_chunks (void **state)
{
  g_autofree char *ini = agent_ini ("[{\"text\": \"Let me see.\", \"calls\": [{\"name\": \"echo\", "
                                    "\"args\": {\"text\": \"hi\"}, \"id\": \"c1\"}]}]",
                                    "tools = echo", "[tool echo]\ndescription = echoes\ncommand = cat\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = read_trace ();
  json_t *text = find_event (events, "llm_new_token", NULL, 0);
  json_t *first = json_array_get (json_object_get (json_object_get (json_object_get (
                    find_event (events, "llm_new_token", NULL, 1), "chunk"), "message"), "tool_call_chunks"), 0);
  json_t *second = json_array_get (json_object_get (json_object_get (json_object_get (
                     find_event (events, "llm_new_token", NULL, 2), "chunk"), "message"), "tool_call_chunks"), 0);
  g_autofree char *args = NULL;

  assert_null (error);
  assert_string_equal (str (text, "token"), "Let me see.");
  assert_string_equal (str (first, "name"), "echo");
  assert_string_equal (str (first, "id"), "c1");
  assert_int_equal (json_integer_value (json_object_get (first, "index")), 0);
  assert_true (json_is_null (json_object_get (second, "name")));
  args = g_strconcat (str (first, "args"), str (second, "args"), NULL);
  assert_string_equal (args, "{\"text\":\"hi\"}");
  /* The model's words besides its calls are the executor's text. */
  assert_string_equal (str (find_event (events, "text", "AgentExecutor", 0), "text"), "Let me see.");
  (void) state;
}

/* Mistakes in [agent] and [tool NAME] are reported at once, each naming
 * the file, the section and the key, before anything runs. */
static void
test_configuration_problems (void **state)
{
  g_autofree char *ini = agent_ini (ONE_CALL ("echo", "{}"), "tools = echo missing",
                                    "[tool echo]\ndescription = echoes\ncommand = no-such-program-xyz --x\n"
                                    "[tool spare]\ncommand = ./no/such/file\nparameters = {\"type\": \"array\"}\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);

  assert_null (result);
  assert_non_null (error);
  assert_non_null (strstr (error->message, "cannot run 'command' in [tool echo] of agent.ini (line "));
  assert_non_null (strstr (error->message, "no program 'no-such-program-xyz' found in PATH; install it "
                                           "or fix the path"));
  assert_non_null (strstr (error->message, "no [tool missing] section for 'tools' in [agent] of agent.ini"));
  assert_non_null (strstr (error->message, "missing required key 'description' in [tool spare]"));
  assert_non_null (strstr (error->message, "no executable file './no/such/file' found"));
  assert_non_null (strstr (error->message, "its schema's \"type\" must be \"object\""));
  (void) state;
}

#define PLUGIN_TOOLS \
  "[tool count_words]\nplugin = test_tools\n"                              \
  "[tool wait]\nplugin = test_tools\nplugin_tool = later\n"                 \
  "[tool broken]\nplugin = test_tools\ndescription = fails, said the INI\n"

/* A plugin's tools: a sync one on a worker thread that dispatches a
 * custom event through its run (reaching handlers as custom_event, a
 * child of nothing but on the tool run's id), an async one on the main
 * loop, and one that fails. Description and schema are the descriptor's
 * unless the INI says otherwise. */
static void
test_plugin_tools_and_custom_events (void **state)
{
  g_autofree char *ini = agent_ini (
    "[[{\"name\": \"count_words\", \"args\": {\"text\": \"a b c d\"}}, "
    "{\"name\": \"wait\", \"args\": {\"ms\": 50}}, {\"name\": \"broken\"}]]",
    "tools = count_words wait broken", PLUGIN_TOOLS);
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = run_agent (ini, &error);
  g_autoptr (json_t) events = NULL;
  g_autofree char *order = NULL;
  json_t *tool, *custom;

  if (error != NULL)
    fail_msg ("%s", error->message);
  events = read_trace ();
  order = event_order (events);
  tool = find_event (events, "tool_start", "count_words", 0);
  custom = find_event (events, "custom_event", NULL, 0);
  assert_non_null (strstr (order, "tool_start count_words\nagent_action AgentExecutor\ntool_start wait\n"
                                  "agent_action AgentExecutor\ntool_start broken\n"
                                  "custom_event count_words\n"
                                  "tool_end count_words\ntool_end wait\ntool_error broken\n"));
  assert_string_equal (str (custom, "run_id"), str (tool, "run_id"));
  assert_string_equal (str (custom, "event_name"), "words_counted");
  assert_int_equal (json_integer_value (json_object_get (json_object_get (custom, "data"), "words")), 4);
  /* A sync tool runs on a worker thread, not the main loop. */
  assert_true (json_is_false (json_object_get (json_object_get (custom, "data"), "on_main_thread")));
  assert_string_equal (str (find_event (events, "tool_end", "count_words", 0), "outputs"), "4");
  assert_string_equal (str (find_event (events, "tool_end", "wait", 0), "outputs"), "waited");
  assert_string_equal (str (json_object_get (tool, "serialized"), "description"), "Counts the words of a text");
  assert_string_equal (str (json_object_get (find_event (events, "tool_start", "broken", 0), "serialized"),
                            "description"), "fails, said the INI");
  assert_tool_error (events, "broken", "broken on purpose");
  (void) state;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_events_and_run_tree),
    cmocka_unit_test (test_hanging_tool_is_cut_by_its_timeout),
    cmocka_unit_test (test_failing_tool_reports_its_stderr),
    cmocka_unit_test (test_malformed_arguments_are_a_tool_error),
    cmocka_unit_test (test_unknown_tool_is_a_tool_error),
    cmocka_unit_test (test_arguments_on_stdin_and_only_listed_environment),
    cmocka_unit_test (test_max_iterations),
    cmocka_unit_test (test_fake_model_streams_tool_call_chunks),
    cmocka_unit_test (test_configuration_problems),
    cmocka_unit_test (test_plugin_tools_and_custom_events),
  };

  test_set_plugin_path (SHIPPED_PLUGIN_DIR);
  return test_run_group (tests, G_N_ELEMENTS (tests));
}
