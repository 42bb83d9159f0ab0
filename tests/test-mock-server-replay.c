/* What the mock LLM server streams: the recorded streams and replies
 * (tests/fixtures) byte for byte, with the providers' headers, and each
 * scenario that changes how a stream is sent or ends (slow, delay,
 * stall, disconnect, no-terminator, error-event, huge), and the fixture
 * each turn of an agent gets (turns). */
#include "mock-client.h"

#include "providers/sse-parser.h"

#include <string.h>

/* The first @n events of an LF-only stream, as bytes. */
static char *
first_events (const char *text,
              guint       n)
{
  const char *end = text;

  for (guint i = 0; i < n; i++)
    {
      const char *blank = strstr (end, "\n\n");

      assert_non_null (blank);
      end = blank + 2;
    }
  return g_strndup (text, end - text);
}

/* The stream without the event that holds @line. */
static char *
without_event (const char *text,
               const char *line)
{
  g_autofree char *needle = g_strdup_printf ("%s\n", line);
  const char *start = strstr (text, needle);
  const char *end;

  assert_non_null (start);
  end = strstr (start, "\n\n");
  assert_non_null (end);
  /* Back to the start of the event. */
  while (start > text && !(start[-1] == '\n' && start - 1 > text && start[-2] == '\n'))
    start--;
  {
    g_autofree char *head = g_strndup (text, start - text);

    return g_strconcat (head, end + 2, NULL);
  }
}

static void
collect_event (const ChimeSseEvent *event,
               gpointer             user_data)
{
  GPtrArray *events = user_data;

  g_ptr_array_add (events, g_strdup_printf ("%s\t%s", event->event, event->data));
}

/* "type\tdata" for each event of the reply body. */
static GPtrArray *
reply_events (Reply *reply)
{
  GPtrArray *events = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (ChimeSseParser) parser = chime_sse_parser_new (collect_event, events);

  chime_sse_parser_feed (parser, reply->body->str, reply->body->len);
  chime_sse_parser_finish (parser);
  assert_false (chime_sse_parser_has_partial (parser));
  return events;
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

static void
test_openai_stream_bytes (void **state)
{
  g_autoptr (Reply) reply = post (OPENAI_PATH, OPENAI_BODY, NULL);

  assert_body_is_fixture (reply, "openai-stream.sse");
  assert_true (g_str_has_prefix (reply_header (reply, "content-type"), "text/event-stream"));
  assert_string_equal (reply_header (reply, "transfer-encoding"), "chunked");
  assert_true (g_str_has_prefix (reply_header (reply, "x-request-id"), "req_mock_"));
}

static void
test_anthropic_stream_bytes (void **state)
{
  g_autoptr (Reply) reply = post (ANTHROPIC_PATH, ANTHROPIC_BODY, NULL);

  assert_body_is_fixture (reply, "anthropic-stream.sse");
  assert_true (g_str_has_prefix (reply_header (reply, "content-type"), "text/event-stream"));
  assert_true (g_str_has_prefix (reply_header (reply, "request-id"), "req_mock_"));
}

static void
test_non_streaming (void **state)
{
  g_autoptr (Reply) openai = post (OPENAI_PATH, "{\"model\":\"gpt-4o-mini\",\"messages\":[]}", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH,
                                      "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":16,\"messages\":[],"
                                      "\"stream\":false}", NULL);
  g_autoptr (json_t) completion = NULL;
  g_autofree char *length = NULL;

  assert_body_is_fixture (openai, "openai-completion.json");
  assert_string_equal (reply_header (openai, "content-type"), "application/json");
  length = g_strdup_printf ("%" G_GSIZE_FORMAT, openai->body->len);
  assert_string_equal (reply_header (openai, "content-length"), length);
  completion = reply_json (openai);
  assert_string_equal (json_string_value (json_object_get (completion, "object")), "chat.completion");

  assert_body_is_fixture (anthropic, "anthropic-message.json");
  assert_string_equal (reply_header (anthropic, "content-type"), "application/json");
}

static void
test_fixture_choice (void **state)
{
  g_autoptr (Reply) tool = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Fixture: openai-tool-stream.sse", NULL);
  g_autoptr (Reply) escape = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Fixture: ../../configure.ac", NULL);
  g_autoptr (Reply) missing = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Fixture: nope.sse", NULL);
  g_autoptr (json_t) escape_json = NULL;
  g_autoptr (json_t) missing_json = NULL;

  assert_body_is_fixture (tool, "openai-tool-stream.sse");
  /* Mistakes in driving the mock are not provider errors. */
  assert_int_equal (escape->status, 400);
  escape_json = reply_json (escape);
  assert_non_null (json_object_get (escape_json, "mock_error"));
  assert_int_equal (missing->status, 400);
  missing_json = reply_json (missing);
  assert_non_null (json_object_get (missing_json, "mock_error"));
}

static void
test_slow_and_delay (void **state)
{
  g_autoptr (Reply) slow = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: slow", "X-Mock-Arg: 30", NULL);
  g_autoptr (Reply) delay = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: delay", "X-Mock-Arg: 200", NULL);

  /* Nine events, eight pauses. */
  assert_body_is_fixture (slow, "anthropic-stream.sse");
  assert_true (slow->elapsed_ms >= 8 * 30);
  assert_body_is_fixture (delay, "openai-stream.sse");
  assert_true (delay->elapsed_ms >= 200);
}

static void
test_stall (void **state)
{
  g_autofree char *fixture = read_fixture ("openai-stream.sse");
  g_autofree char *expected = first_events (fixture, 2);
  g_autoptr (Reply) reply = post_raw (OPENAI_PATH, OPENAI_BODY, 800, "Authorization: Bearer sk-mock",
                                      "X-Mock-Scenario: stall", "X-Mock-Arg: 2", NULL);

  /* Headers and two events, then silence on an open connection. */
  assert_int_equal (reply->code, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal (reply->status, 200);
  assert_string_equal (reply->body->str, expected);
}

static void
test_disconnect (void **state)
{
  g_autofree char *openai_fixture = read_fixture ("openai-stream.sse");
  g_autofree char *anthropic_fixture = read_fixture ("anthropic-stream.sse");
  g_autofree char *openai_expected = first_events (openai_fixture, 3);
  g_autofree char *anthropic_expected = first_events (anthropic_fixture, 1);
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: disconnect", "X-Mock-Arg: 3", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: disconnect", NULL);

  /* The chunked body never ends properly: a transfer error, not EOF. */
  assert_int_equal (openai->code, CURLE_PARTIAL_FILE);
  assert_int_equal (openai->status, 200);
  assert_string_equal (openai->body->str, openai_expected);
  /* One event by default. */
  assert_int_equal (anthropic->code, CURLE_PARTIAL_FILE);
  assert_string_equal (anthropic->body->str, anthropic_expected);
}

static void
test_no_terminator (void **state)
{
  g_autofree char *openai_fixture = read_fixture ("openai-stream.sse");
  g_autofree char *anthropic_fixture = read_fixture ("anthropic-stream.sse");
  g_autofree char *openai_expected = without_event (openai_fixture, "data: [DONE]");
  g_autofree char *anthropic_expected = without_event (anthropic_fixture, "event: message_stop");
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: no-terminator", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: no-terminator", NULL);

  /* A clean end at the HTTP level: only the stream itself is short. */
  assert_int_equal (openai->code, CURLE_OK);
  assert_string_equal (openai->body->str, openai_expected);
  assert_null (strstr (openai->body->str, "[DONE]"));
  assert_true (g_str_has_suffix (openai->body->str, "\"reasoning_tokens\":0}}}\n\n"));
  assert_int_equal (anthropic->code, CURLE_OK);
  assert_string_equal (anthropic->body->str, anthropic_expected);
  assert_null (strstr (anthropic->body->str, "message_stop"));
  assert_true (g_str_has_suffix (anthropic->body->str, "\"usage\":{\"output_tokens\":6}}\n\n"));
}

static void
test_error_event (void **state)
{
  g_autofree char *anthropic_fixture = read_fixture ("anthropic-stream.sse");
  g_autofree char *anthropic_error = read_fixture ("anthropic-error-event.sse");
  g_autofree char *anthropic_head = first_events (anthropic_fixture, 4);
  g_autofree char *anthropic_expected = g_strconcat (anthropic_head, anthropic_error, NULL);
  g_autofree char *openai_fixture = read_fixture ("openai-stream.sse");
  g_autofree char *openai_error = read_fixture ("openai-error-event.sse");
  g_autofree char *openai_head = first_events (openai_fixture, 2);
  g_autofree char *openai_expected = g_strconcat (openai_head, openai_error, NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: error-event",
                                      "X-Mock-Arg: 4", NULL);
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: error-event",
                                   "X-Mock-Arg: 2", NULL);
  g_autoptr (GPtrArray) anthropic_events = NULL;
  g_autoptr (GPtrArray) openai_events = NULL;

  /* Still a 200: the error is in the stream. */
  assert_int_equal (anthropic->code, CURLE_OK);
  assert_int_equal (anthropic->status, 200);
  assert_string_equal (anthropic->body->str, anthropic_expected);
  anthropic_events = reply_events (anthropic);
  assert_int_equal (anthropic_events->len, 5);
  assert_string_equal (g_ptr_array_index (anthropic_events, 4),
                       "error\t{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", "
                       "\"message\": \"Overloaded\"}}");

  assert_int_equal (openai->code, CURLE_OK);
  assert_int_equal (openai->status, 200);
  assert_string_equal (openai->body->str, openai_expected);
  openai_events = reply_events (openai);
  assert_int_equal (openai_events->len, 3);
  assert_true (g_str_has_prefix (g_ptr_array_index (openai_events, 2), "message\t{\"error\":{"));
}

static void
test_huge (void **state)
{
  const guint n = 2000;
  g_autoptr (Reply) openai = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: huge", "X-Mock-Arg: 2000", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, ANTHROPIC_BODY, "X-Mock-Scenario: huge",
                                      "X-Mock-Arg: 2000", NULL);
  g_autoptr (GPtrArray) openai_events = NULL;
  g_autoptr (GPtrArray) anthropic_events = NULL;
  guint tokens = 0;

  assert_int_equal (openai->code, CURLE_OK);
  openai_events = reply_events (openai);
  /* Role chunk, n tokens, finish chunk, usage chunk, [DONE]. */
  assert_int_equal (openai_events->len, n + 4);
  for (guint i = 0; i + 1 < openai_events->len; i++)
    {
      const char *event = g_ptr_array_index (openai_events, i);
      g_autoptr (json_t) chunk = json_loads (strchr (event, '\t') + 1, 0, NULL);
      json_t *choice = json_array_get (json_object_get (chunk, "choices"), 0);
      const char *content = json_string_value (json_object_get (json_object_get (choice, "delta"), "content"));

      assert_non_null (chunk);
      if (content != NULL && g_str_equal (content, " tok"))
        tokens++;
    }
  assert_int_equal (tokens, n);
  assert_string_equal (g_ptr_array_index (openai_events, openai_events->len - 1), "message\t[DONE]");

  assert_int_equal (anthropic->code, CURLE_OK);
  anthropic_events = reply_events (anthropic);
  /* message_start, content_block_start, n deltas, content_block_stop,
   * message_delta, message_stop. */
  assert_int_equal (anthropic_events->len, n + 5);
  for (guint i = 2; i < n + 2; i++)
    assert_string_equal (g_ptr_array_index (anthropic_events, i),
                         "content_block_delta\t{\"type\":\"content_block_delta\",\"index\":0,"
                         "\"delta\":{\"type\":\"text_delta\",\"text\":\" tok\"}}");
  assert_true (g_str_has_prefix (g_ptr_array_index (anthropic_events, n + 3), "message_delta\t"));
  assert_non_null (strstr (g_ptr_array_index (anthropic_events, n + 3), "\"output_tokens\":2000"));
  assert_true (g_str_has_prefix (g_ptr_array_index (anthropic_events, n + 4), "message_stop\t"));
}

/* turns: the fixture of the request's turn, 1 plus the assistant
 * messages it carries, in both APIs; a turn past the list, or no list,
 * is a mistake in driving the mock. */
static void
test_turns (void **state)
{
  static const char *const arg = "X-Mock-Arg: openai-agent-tool-call.sse, openai-agent-answer.sse";
  static const char *const second_turn =
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},{\"role\":\"tool\",\"content\":\"x\","
    "\"tool_call_id\":\"c\"}]}";
  static const char *const third_turn =
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"},"
    "{\"role\":\"assistant\",\"content\":\"b\"}]}";
  static const char *const anthropic_second =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":9,\"stream\":true,\"messages\":["
    "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":[]},"
    "{\"role\":\"user\",\"content\":[]}]}";
  g_autoptr (Reply) first = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: turns", arg, NULL);
  g_autoptr (Reply) second = post (OPENAI_PATH, second_turn, "X-Mock-Scenario: turns", arg, NULL);
  g_autoptr (Reply) past = post (OPENAI_PATH, third_turn, "X-Mock-Scenario: turns", arg, NULL);
  g_autoptr (Reply) unlisted = post (OPENAI_PATH, OPENAI_BODY, "X-Mock-Scenario: turns", NULL);
  g_autoptr (Reply) anthropic = post (ANTHROPIC_PATH, anthropic_second, "X-Mock-Scenario: turns",
                                      "X-Mock-Arg: anthropic-agent-tool-call.sse,anthropic-agent-answer.sse",
                                      NULL);
  g_autoptr (json_t) past_json = NULL;
  g_autoptr (json_t) unlisted_json = NULL;

  assert_body_is_fixture (first, "openai-agent-tool-call.sse");
  assert_body_is_fixture (second, "openai-agent-answer.sse");
  assert_body_is_fixture (anthropic, "anthropic-agent-answer.sse");
  assert_int_equal (past->status, 400);
  past_json = reply_json (past);
  assert_string_equal (json_string_value (json_object_get (past_json, "mock_error")),
                       "the request is turn 3, but X-Mock-Arg 'openai-agent-tool-call.sse, "
                       "openai-agent-answer.sse' names fixtures for 2");
  assert_int_equal (unlisted->status, 400);
  unlisted_json = reply_json (unlisted);
  assert_string_equal (json_string_value (json_object_get (unlisted_json, "mock_error")),
                       "turns needs X-Mock-Arg: the fixtures of the turns, comma-separated");
  (void) state;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_openai_stream_bytes),
    cmocka_unit_test (test_anthropic_stream_bytes),
    cmocka_unit_test (test_non_streaming),
    cmocka_unit_test (test_fixture_choice),
    cmocka_unit_test (test_slow_and_delay),
    cmocka_unit_test (test_stall),
    cmocka_unit_test (test_disconnect),
    cmocka_unit_test (test_no_terminator),
    cmocka_unit_test (test_error_event),
    cmocka_unit_test (test_huge),
    cmocka_unit_test (test_turns),
  };

  return mock_client_run_tests (tests, G_N_ELEMENTS (tests));
}
