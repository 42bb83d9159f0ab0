/* The agent example (examples/agent.ini) through the installed chime:
 * the fake model calls a command tool and a plugin's tool (which
 * dispatches a custom event); what the handlers, `--events` and
 * `chime check` see. */
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

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_agent_example),
    cmocka_unit_test (test_agent_example_events),
    cmocka_unit_test (test_agent_example_colours),
    cmocka_unit_test (test_check_finds_a_missing_tool_command),
    cmocka_unit_test (test_plugins_lists_tools),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
