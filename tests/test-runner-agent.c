/* The agent example (examples/agent.ini) through the installed chime:
 * the fake model calls a command tool and a plugin's tool (which
 * dispatches a custom event); what the handlers, `--events` and
 * `chime check` see. Then the same agent on OpenAI and Anthropic
 * (examples/openai-agent.ini, anthropic-agent.ini) against the mock LLM
 * server: what goes over the wire on each turn. */
#include "runner-helpers.h"

#include <string.h>

/* examples/agent.ini and its shout.sh copied into @dir, with a jsonl
 * handler writing trace.jsonl added; its path. */
static char *
copy_agent_example (const char *dir)
{
  g_autofree char *text = read_source_file ("examples/agent.ini");
  g_autofree char *script = read_source_file ("examples/shout.sh");
  g_autofree char *with_trace = g_strconcat (text, "\n[handler trace]\nplugin = jsonl\npath = trace.jsonl\n", NULL);

  g_free (write_in (dir, "shout.sh", script));
  return write_in (dir, "agent.ini", with_trace);
}

static json_t *
event_named (json_t     *events,
             const char *type,
             const char *name)
{
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    if (g_strcmp0 (json_string_value (json_object_get (event, "event")), type) == 0 &&
        g_strcmp0 (json_string_value (json_object_get (event, "name")), name) == 0)
      return event;
  fail_msg ("no %s event named %s", type, name);
  return NULL;
}

static const char *
member (json_t     *object,
        const char *key)
{
  return json_string_value (json_object_get (object, key));
}

/* The events of an AgentExecutor in order, its run tree, the tools'
 * payloads, the plugin tool's custom event on its run, and the stdout
 * handler's lines. */
static void
test_agent_example (void **state)
{
  g_autofree char *dir = fresh_dir ("agent");
  g_autofree char *config = copy_agent_example (dir);
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (json_t) events = NULL;
  g_autoptr (json_t) output = NULL;
  g_autofree char *names = NULL;
  json_t *executor, *shout, *count, *custom;

  assert_status (result, 0);
  output = find_result (result->out);
  assert_string_equal (member (output, "output"), "HELLO AGENTS has 2 words.");
  events = read_json_lines (trace);
  names = event_names (events);
  assert_string_contains (names,
    "chain_start chain_start chain_start chain_end chat_model_start chain_start "
    "llm_new_token llm_new_token llm_new_token llm_new_token llm_end chain_end chain_end "
    "agent_action tool_start agent_action tool_start custom_event tool_end tool_end "
    "chain_start");
  assert_true (g_str_has_suffix (names, "llm_end chain_end chain_end agent_finish chain_end"));
  assert_int_equal (count_events (events, "chat_model_start"), 2);

  executor = event_named (events, "chain_start", "AgentExecutor");
  shout = event_named (events, "tool_start", "shout");
  count = event_named (events, "tool_start", "word_count");
  custom = event_named (events, "custom_event", "word_count");
  assert_string_equal (member (output, "run_id"), member (executor, "run_id"));
  assert_string_equal (member (shout, "parent_run_id"), member (executor, "run_id"));
  assert_string_equal (member (count, "parent_run_id"), member (executor, "run_id"));
  assert_string_equal (member (custom, "run_id"), member (count, "run_id"));
  assert_string_equal (member (custom, "event_name"), "words_counted");
  assert_int_equal (json_integer_value (json_object_get (json_object_get (custom, "data"), "words")), 2);
  assert_string_equal (member (json_object_get (count, "serialized"), "description"),
                       "Counts the words of a text");
  assert_string_equal (member (event_named (events, "tool_end", "shout"), "outputs"), "HELLO AGENTS");
  assert_string_equal (member (event_named (events, "tool_end", "word_count"), "outputs"), "2");
  assert_string_equal (member (json_object_get (event_named (events, "agent_finish", "AgentExecutor"),
                                                "data"), "log"), "HELLO AGENTS has 2 words.");

  /* stdout, as LangChain's StdOutCallbackHandler. */
  assert_string_contains (result->out, "\n\n> Entering new AgentExecutor chain...\n");
  assert_string_contains (result->out, "\nInvoking: `shout` with `{\"text\":\"hello agents\"}`\n");
  assert_string_contains (result->out, "HELLO AGENTS");
  (void) state;
}

/* With colour, stdout paints as LangChain's AgentExecutor asks: the
 * agent's logs green, each tool's output in its own colour. */
static void
test_agent_example_colours (void **state)
{
  g_autofree char *dir = fresh_dir ("agent-colour");
  g_autofree char *config = copy_agent_example (dir);
  const char *args[] = { "run", config, NULL };
  const char *env[] = { "CHIME_COLOR=always", NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 0);
  assert_string_contains (result->out, "\033[32;1m\033[1;3m\nInvoking: `shout` with `{\"text\":\"hello agents\"}`\n");
  assert_string_contains (result->out, "\033[36;1m\033[1;3mHELLO AGENTS\033[0m");
  assert_string_contains (result->out, "\033[33;1m\033[1;3m2\033[0m");
  assert_string_contains (result->out, "\033[32;1m\033[1;3mHELLO AGENTS has 2 words.\033[0m\n");
  (void) state;
}

/* --events: LangChain's v2 shapes for tools and custom events. */
static void
test_agent_example_events (void **state)
{
  g_autofree char *dir = fresh_dir ("agent-events");
  g_autofree char *config = copy_agent_example (dir);
  g_autofree char *stream = g_build_filename (dir, "events.jsonl", NULL);
  const char *args[] = { "run", "--events", stream, config, NULL };
  RunOptions options = { .cwd = dir };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (json_t) events = NULL;
  json_t *start, *end, *custom;

  assert_status (result, 0);
  events = read_json_lines (stream);
  start = event_named (events, "on_tool_start", "shout");
  end = event_named (events, "on_tool_end", "shout");
  custom = event_named (events, "on_custom_event", "words_counted");
  assert_string_equal (member (json_object_get (json_object_get (start, "data"), "input"), "text"),
                       "hello agents");
  assert_string_equal (member (json_object_get (end, "data"), "output"), "HELLO AGENTS");
  assert_string_equal (member (json_object_get (json_object_get (end, "data"), "input"), "text"),
                       "hello agents");
  assert_int_equal (json_integer_value (json_object_get (json_object_get (custom, "data"), "words")), 2);
  assert_string_equal (member (custom, "run_id"),
                       member (event_named (events, "on_tool_start", "word_count"), "run_id"));
  (void) state;
}

/* A tool command that does not exist: `chime check` says so, naming the
 * file, the section and the key, before anything runs. */
static void
test_check_finds_a_missing_tool_command (void **state)
{
  g_autofree char *dir = fresh_dir ("agent-check");
  g_autofree char *text = read_source_file ("examples/agent.ini");
  g_autofree char *broken = NULL;
  g_autofree char *config = NULL;
  const char *args[] = { "check", NULL, NULL };
  RunOptions options = { .cwd = dir };
  g_autoptr (RunResult) result = NULL;
  char *at = strstr (text, "command = sh shout.sh");

  assert_non_null (at);
  broken = g_strdup_printf ("%.*scommand = chime-no-such-tool shout.sh%s", (int) (at - text), text,
                            at + strlen ("command = sh shout.sh"));
  config = write_in (dir, "agent.ini", broken);
  args[1] = config;
  result = run_chime_argv (&options, args);
  assert_true (result->status != 0);
  assert_string_contains (result->err, "cannot run 'command' in [tool shout] of agent.ini (line ");
  assert_string_contains (result->err, "no program 'chime-no-such-tool' found in PATH");
  (void) state;
}

/* `chime plugins` shows a tool plugin's tools. */
static void
test_plugins_lists_tools (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "plugins", NULL);

  assert_status (result, 0);
  assert_string_contains (result->out, "word_tools (sync) — the word_count tool (the agent example's tool plugin)\n");
  assert_string_contains (result->out, "    tool word_count (sync): Counts the words of a text\n");
  (void) state;
}

/* ------------------------------------------------------------------
 * The same agent on the HTTP providers, on the mock LLM server
 * ---------------------------------------------------------------- */

typedef struct
{
  const char *example;
  const char *provider;
  /* The second request's messages from the model's reply on: the ai
   * message with its tool call and the tool's result, in the API's shape. */
  const char *tool_turn_messages;
  /* Where they start in that request (OpenAI sends the system prompt as a
   * message, Anthropic beside the messages). */
  gsize       tool_turn_at;
  const char *call_id;
} WireAgent;

static const WireAgent wire_agents[] = {
  { "openai-agent.ini", "openai",
    "[{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_shout_1\", "
    "\"type\": \"function\", \"function\": {\"name\": \"shout\", "
    "\"arguments\": \"{\\\"text\\\":\\\"hello agents\\\"}\"}}]},"
    " {\"role\": \"tool\", \"content\": \"HELLO AGENTS\", \"tool_call_id\": \"call_shout_1\"}]",
    2, "call_shout_1" },
  { "anthropic-agent.ini", "anthropic",
    "[{\"role\": \"assistant\", \"content\": [{\"type\": \"tool_use\", \"id\": \"toolu_01Shout\", "
    "\"name\": \"shout\", \"input\": {\"text\": \"hello agents\"}}]},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"tool_result\", \"tool_use_id\": \"toolu_01Shout\", "
    "\"content\": \"HELLO AGENTS\"}]}]",
    1, "toolu_01Shout" },
};

/* The position of the first event @type at or after @from; fails when
 * there is none. */
static gsize
event_index (json_t     *events,
             const char *type,
             gsize       from)
{
  for (gsize i = from; i < json_array_size (events); i++)
    if (g_strcmp0 (member (json_array_get (events, i), "event"), type) == 0)
      return i;
  fail_msg ("no %s event after event %" G_GSIZE_FORMAT, type, from);
  return 0;
}

/* The JSON body of a request the mock server logged. */
static json_t *
request_body (json_t *request)
{
  json_t *body = json_loads (member (request, "body"), 0, NULL);

  assert_non_null (body);
  return body;
}

/* @example in @dir, its base_url on the mock server, which answers the
 * first turn with a call of shout and the second (the one that carries
 * the tool's result) with text; a jsonl handler writes trace.jsonl.
 * @command (NULL: the example's) replaces the tool's command line. */
static char *
copy_wire_agent (const char      *dir,
                 const WireAgent *agent,
                 const char      *mock_key,
                 const char      *command)
{
  g_autofree char *relative = g_build_filename ("examples", agent->example, NULL);
  g_autofree char *text = read_source_file (relative);
  g_autofree char *headers = g_strdup_printf ("X-Mock-Key: %s; X-Mock-Scenario: turns; "
                                              "X-Mock-Arg: %s-agent-tool-call.sse,%s-agent-answer.sse",
                                              mock_key, agent->provider, agent->provider);
  g_autofree char *on_mock = example_on_mock (text, agent->example, headers);
  g_autofree char *commanded = command != NULL ? replace_all (on_mock, "command = sh shout.sh", command)
                                               : g_strdup (on_mock);
  g_autofree char *with_trace = g_strconcat (commanded, "\n[handler trace]\nplugin = jsonl\npath = trace.jsonl\n",
                                             NULL);
  g_autofree char *script = read_source_file ("examples/shout.sh");

  g_free (write_in (dir, "shout.sh", script));
  return write_in (dir, agent->example, with_trace);
}

/* The API keys of both examples, set to the test's key. */
static const char *const wire_env[] = {
  "OPENAI_API_KEY=" MOCK_API_KEY, "ANTHROPIC_API_KEY=" MOCK_API_KEY, NULL
};

/* Runs @agent's example copied into @dir (see copy_wire_agent) and
 * returns what chime did; @events gets the trace's events. */
static RunResult *
run_wire_agent (const char      *dir,
                const WireAgent *agent,
                const char      *mock_key,
                const char      *command,
                json_t         **events)
{
  g_autofree char *config = copy_wire_agent (dir, agent, mock_key, command);
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = wire_env };
  RunResult *result = run_chime_argv (&options, args);

  if (result->status != 0)
    fail_msg ("%s exited with %d\nstdout:\n%s\nstderr:\n%s", agent->example, result->status,
              result->out, result->err);
  *events = read_json_lines (trace);
  return result;
}

/* Two requests: the first offers shout and holds no reply of the model;
 * the second carries the model's tool call and the tool's output, in the
 * API's own shape, and still offers the tool. */
static void
assert_wire_requests (const WireAgent *agent,
                      const char      *mock_key)
{
  g_autoptr (json_t) requests = mock_requests (mock_key);
  g_autoptr (json_t) first = NULL;
  g_autoptr (json_t) second = NULL;
  g_autoptr (json_t) expected = json_loads (agent->tool_turn_messages, 0, NULL);
  g_autoptr (json_t) sent = json_array ();
  json_t *messages;

  assert_non_null (expected);
  assert_int_equal (json_array_size (requests), 2);
  first = request_body (json_array_get (requests, 0));
  second = request_body (json_array_get (requests, 1));
  assert_int_equal (json_array_size (json_object_get (first, "messages")), agent->tool_turn_at);
  assert_int_equal (json_array_size (json_object_get (first, "tools")), 1);
  assert_true (json_equal (json_object_get (first, "tools"), json_object_get (second, "tools")));

  messages = json_object_get (second, "messages");
  assert_true (json_equal (json_array_get (messages, 0), json_array_get (json_object_get (first, "messages"), 0)));
  for (gsize i = agent->tool_turn_at; i < json_array_size (messages); i++)
    json_array_append (sent, json_array_get (messages, i));
  if (!json_equal (sent, expected))
    {
      g_autofree char *text = json_dumps (sent, JSON_SORT_KEYS);

      fail_msg ("%s: the second request's messages after the prompt are %s", agent->example, text);
    }
}

/* The agent of agent.ini on each HTTP provider: turn 1 streams a call of
 * shout, the command runs, turn 2 sends its output back and streams the
 * answer. Events in LangChain's order, the requests in each API's shape. */
static void
test_agent_on_http_providers (void **state)
{
  for (gsize a = 0; a < G_N_ELEMENTS (wire_agents); a++)
    {
      const WireAgent *agent = &wire_agents[a];
      g_autofree char *mock_key = g_strdup_printf ("agent-%s", agent->provider);
      g_autofree char *dir = fresh_dir (mock_key);
      g_autoptr (json_t) events = NULL;
      g_autoptr (RunResult) result = run_wire_agent (dir, agent, mock_key, NULL, &events);
      g_autoptr (json_t) output = find_result (result->out);
      json_t *action;
      gsize at;

      assert_string_equal (member (output, "output"), "It says HELLO AGENTS.");
      assert_int_equal (count_events (events, "chat_model_start"), 2);
      assert_int_equal (count_events (events, "agent_action"), 1);
      assert_int_equal (count_events (events, "tool_start"), 1);
      assert_int_equal (count_events (events, "tool_error"), 0);

      /* agent_action, tool_start, tool_end, the second model turn, agent_finish. */
      at = event_index (events, "agent_action", 0);
      action = json_object_get (json_array_get (events, at), "data");
      assert_string_equal (member (action, "tool"), "shout");
      assert_string_equal (member (action, "tool_call_id"), agent->call_id);
      assert_string_equal (member (json_object_get (action, "tool_input"), "text"), "hello agents");
      at = event_index (events, "tool_start", at);
      at = event_index (events, "tool_end", at);
      assert_string_equal (member (json_array_get (events, at), "outputs"), "HELLO AGENTS");
      at = event_index (events, "chat_model_start", at);
      at = event_index (events, "agent_finish", at);
      assert_string_equal (member (json_object_get (json_object_get (json_array_get (events, at), "data"),
                                                    "return_values"), "output"), "It says HELLO AGENTS.");
      assert_int_equal (event_index (events, "chain_end", at), json_array_size (events) - 1);

      assert_wire_requests (agent, mock_key);
      assert_string_contains (result->out, "\nInvoking: `shout` with `{\"text\":\"hello agents\"}`\n");
      assert_string_contains (result->out, "It says HELLO AGENTS.\n");
      assert_no_secret ("stdout", result->out);
      assert_no_secret ("stderr", result->err);
    }
  (void) state;
}

/* A tool that fails, on each wire: the model reads "Error: ..." as the
 * call's result, and Anthropic's tool_result says is_error, as
 * langchain-anthropic sends a ToolMessage with status "error". */
static void
test_agent_failed_tool_on_http_providers (void **state)
{
  static const char *const error_text =
    "Error: tool 'shout' failed: `sh fail.sh` exited with status 3: no voice left";

  for (gsize a = 0; a < G_N_ELEMENTS (wire_agents); a++)
    {
      const WireAgent *agent = &wire_agents[a];
      g_autofree char *mock_key = g_strdup_printf ("agent-fail-%s", agent->provider);
      g_autofree char *dir = fresh_dir (mock_key);
      g_autofree char *script = write_in (dir, "fail.sh", "echo 'no voice left' >&2\nexit 3\n");
      g_autoptr (json_t) events = NULL;
      g_autoptr (RunResult) result = run_wire_agent (dir, agent, mock_key, "command = sh fail.sh", &events);
      g_autoptr (json_t) requests = NULL;
      g_autoptr (json_t) second = NULL;
      g_autoptr (json_t) expected = NULL;
      json_t *messages, *answer;

      assert_int_equal (count_events (events, "tool_error"), 1);
      assert_int_equal (count_events (events, "tool_end"), 0);
      assert_int_equal (count_events (events, "agent_finish"), 1);
      requests = mock_requests (mock_key);
      assert_int_equal (json_array_size (requests), 2);
      second = request_body (json_array_get (requests, 1));
      messages = json_object_get (second, "messages");
      answer = json_array_get (messages, json_array_size (messages) - 1);
      if (g_str_equal (agent->provider, "anthropic"))
        expected = json_pack ("{s:s, s:[{s:s, s:s, s:s, s:b}]}", "role", "user", "content", "type", "tool_result",
                              "tool_use_id", agent->call_id, "content", error_text, "is_error", TRUE);
      else
        expected = json_pack ("{s:s, s:s, s:s}", "role", "tool", "content", error_text,
                              "tool_call_id", agent->call_id);
      if (!json_equal (answer, expected))
        {
          g_autofree char *text = json_dumps (answer, JSON_SORT_KEYS);

          fail_msg ("%s: the tool's failure went back as %s", agent->example, text);
        }
    }
  (void) state;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_agent_example),
    cmocka_unit_test (test_agent_example_events),
    cmocka_unit_test (test_agent_example_colours),
    cmocka_unit_test (test_check_finds_a_missing_tool_command),
    cmocka_unit_test (test_plugins_lists_tools),
    cmocka_unit_test (test_agent_on_http_providers),
    cmocka_unit_test (test_agent_failed_tool_on_http_providers),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
