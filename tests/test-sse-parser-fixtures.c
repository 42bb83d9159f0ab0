/* The Server-Sent Events parser on the recorded provider streams
 * (tests/fixtures): the events an independent reading of the files
 * finds, whole, byte by byte and cut in two at every position, and with
 * every kind of line end. */
#include "sse-helpers.h"

#include <string.h>

/* Replaces every LF of @text with @line_end. */
static char *
with_line_ends (const char *text,
                const char *line_end)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  return g_strjoinv (line_end, lines);
}

/* A simple oracle for the fixtures, which are all LF-only and one field
 * per line: the blocks between blank lines, their `event:` and `data:`
 * lines. */
static GPtrArray *
events_by_oracle (const char *text)
{
  GPtrArray *events = new_event_list ();
  g_auto (GStrv) blocks = g_strsplit (text, "\n\n", -1);

  /* The part after the last blank line is not an event. */
  for (guint b = 0; blocks[b] != NULL && blocks[b + 1] != NULL; b++)
    {
      g_auto (GStrv) lines = g_strsplit (blocks[b], "\n", -1);
      g_autoptr (GString) data = NULL;
      Recorded *recorded = g_new0 (Recorded, 1);

      recorded->event = g_strdup ("message");
      recorded->id = g_strdup ("");
      recorded->retry = -1;
      for (guint l = 0; lines[l] != NULL; l++)
        if (g_str_has_prefix (lines[l], "data: "))
          {
            if (data == NULL)
              data = g_string_new (lines[l] + 6);
            else
              g_string_append_printf (data, "\n%s", lines[l] + 6);
          }
        else if (g_str_has_prefix (lines[l], "event: "))
          {
            g_free (recorded->event);
            recorded->event = g_strdup (lines[l] + 7);
          }
      assert_non_null (data);
      recorded->data_len = data->len;
      recorded->data = g_string_free (g_steal_pointer (&data), FALSE);
      g_ptr_array_add (events, recorded);
    }
  return events;
}

static const char *const stream_fixtures[] = {
  "openai-stream.sse",
  "openai-tool-stream.sse",
  "openai-error-event.sse",
  "anthropic-stream.sse",
  "anthropic-tool-stream-tail.sse",
  "anthropic-error-event.sse",
};

/* ------------------------------------------------------------------ */

static void
test_openai_fixture (void **state)
{
  gsize length;
  g_autofree char *text = read_fixture ("openai-stream.sse", &length);
  g_autoptr (GPtrArray) events = parse_in_pieces (text, length, 0);
  g_autoptr (GPtrArray) oracle = events_by_oracle (text);
  Recorded *first, *last;

  assert_int_equal (events->len, 8);
  assert_same_events (oracle, events, "openai-stream.sse");
  for (guint i = 0; i < events->len; i++)
    {
      Recorded *recorded = g_ptr_array_index (events, i);

      /* OpenAI sends neither event types nor ids. */
      assert_string_equal (recorded->event, "message");
      assert_string_equal (recorded->id, "");
      assert_int_equal (recorded->retry, -1);
    }
  first = g_ptr_array_index (events, 0);
  assert_string_equal (first->data,
                       "{\"id\":\"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL\",\"object\":\"chat.completion.chunk\","
                       "\"created\":1727346168,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":"
                       "\"fp_5050236cbd\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                       "\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}");
  last = g_ptr_array_index (events, events->len - 1);
  assert_string_equal (last->data, "[DONE]");
}

static void
test_anthropic_fixture (void **state)
{
  static const char *const types[] = {
    "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_stop", "message_delta", "message_stop",
  };
  gsize length;
  g_autofree char *text = read_fixture ("anthropic-stream.sse", &length);
  g_autoptr (GPtrArray) events = parse_in_pieces (text, length, 0);
  g_autoptr (GPtrArray) oracle = events_by_oracle (text);

  assert_int_equal (events->len, G_N_ELEMENTS (types));
  assert_same_events (oracle, events, "anthropic-stream.sse");
  for (guint i = 0; i < events->len; i++)
    assert_string_equal (((Recorded *) g_ptr_array_index (events, i))->event, types[i]);
  assert_string_equal (((Recorded *) g_ptr_array_index (events, 2))->data, "{\"type\": \"ping\"}");
  assert_string_equal (((Recorded *) g_ptr_array_index (events, 4))->data,
                       "{\"type\":\"content_block_delta\",\"index\":0,"
                       "\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}");
  assert_string_equal (((Recorded *) g_ptr_array_index (events, 8))->data, "{\"type\":\"message_stop\"}");
}

static void
test_error_event_fixtures (void **state)
{
  static const Expected anthropic[] = {
    { "error", "{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}",
      "", -1 },
  };
  static const Expected openai[] = {
    { "message", "{\"error\":{\"message\":\"The server had an error while processing your request. "
      "Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}", "", -1 },
  };
  gsize length;
  g_autofree char *anthropic_text = read_fixture ("anthropic-error-event.sse", &length);
  g_autofree char *openai_text = read_fixture ("openai-error-event.sse", &length);
  g_autoptr (GPtrArray) anthropic_events = parse_text (anthropic_text);
  g_autoptr (GPtrArray) openai_events = parse_text (openai_text);

  assert_events (anthropic_events, anthropic, G_N_ELEMENTS (anthropic));
  assert_events (openai_events, openai, G_N_ELEMENTS (openai));
}

static void
test_fixtures_any_split (void **state)
{
  for (gsize i = 0; i < G_N_ELEMENTS (stream_fixtures); i++)
    {
      gsize length;
      g_autofree char *text = read_fixture (stream_fixtures[i], &length);

      check_every_split (text, length, stream_fixtures[i]);
    }
}

static void
test_line_endings (void **state)
{
  static const char *const fixtures[] = { "openai-stream.sse", "anthropic-stream.sse" };
  static const Expected one[] = { { "message", "a\nb", "", -1 } };
  static const Expected mixed[] = {
    { "x", "1\n2\n3", "", -1 },
    { "message", "4", "", -1 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (fixtures); i++)
    {
      g_autofree char *lf = read_fixture (fixtures[i], NULL);
      g_autofree char *crlf = with_line_ends (lf, "\r\n");
      g_autofree char *cr = with_line_ends (lf, "\r");
      g_autoptr (GPtrArray) expected = parse_text (lf);
      g_autoptr (GPtrArray) crlf_events = parse_text (crlf);
      g_autoptr (GPtrArray) cr_events = parse_text (cr);

      assert_same_events (expected, crlf_events, "CRLF");
      assert_same_events (expected, cr_events, "CR");
      /* Includes every CR-at-the-end, LF-at-the-start cut. */
      check_every_split (crlf, strlen (crlf), "CRLF");
      check_every_split (cr, strlen (cr), "CR");
    }

  /* A CR ending one piece and the LF starting the next are one line end:
   * were the LF a blank line, "a" would be dispatched on its own. */
  {
    g_autoptr (GPtrArray) events = new_event_list ();
    g_autoptr (ChimeSseParser) parser = new_parser (events);

    chime_sse_parser_feed (parser, "data: a\r", 8);
    chime_sse_parser_feed (parser, "\ndata: b\r\n", 10);
    assert_int_equal (events->len, 0);
    chime_sse_parser_feed (parser, "\r", 1);
    /* The blank line already dispatched; the LF after it is skipped. */
    assert_int_equal (events->len, 1);
    chime_sse_parser_feed (parser, "\n", 1);
    chime_sse_parser_finish (parser);
    assert_events (events, one, G_N_ELEMENTS (one));
    assert_false (chime_sse_parser_has_partial (parser));
  }

  /* All three in one stream. */
  {
    g_autoptr (GPtrArray) events = parse_text ("event: x\rdata: 1\r\ndata: 2\ndata: 3\r\r\ndata: 4\n\r");

    assert_events (events, mixed, G_N_ELEMENTS (mixed));
  }

  /* CR CR is two line ends: the second line is blank. */
  {
    g_autoptr (GPtrArray) events = parse_text ("data: a\r\rdata: b\n\n");

    assert_int_equal (events->len, 2);
  }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_openai_fixture),
    cmocka_unit_test (test_anthropic_fixture),
    cmocka_unit_test (test_error_event_fixtures),
    cmocka_unit_test (test_fixtures_any_split),
    cmocka_unit_test (test_line_endings),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
