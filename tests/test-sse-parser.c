/* The Server-Sent Events parser: recorded provider streams delivered in
 * every possible way, and the parsing rules of the WHATWG standard one
 * by one. */
#include "config.h"

#include "providers/sse-parser.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

typedef struct
{
  char  *event;
  char  *data;
  gsize  data_len;
  char  *id;
  gint64 retry;
} Recorded;

typedef struct
{
  const char *event;
  const char *data;
  const char *id;
  gint64      retry;
} Expected;

static void
recorded_free (Recorded *recorded)
{
  g_free (recorded->event);
  g_free (recorded->data);
  g_free (recorded->id);
  g_free (recorded);
}

static void
record_event (const ChimeSseEvent *event,
              gpointer             user_data)
{
  GPtrArray *events = user_data;
  Recorded *recorded = g_new0 (Recorded, 1);

  assert_non_null (event->event);
  assert_non_null (event->data);
  assert_non_null (event->id);
  /* The data is NUL-terminated whatever it holds. */
  assert_int_equal (event->data[event->data_len], '\0');

  recorded->event = g_strdup (event->event);
  recorded->data = g_memdup2 (event->data, event->data_len + 1);
  recorded->data_len = event->data_len;
  recorded->id = g_strdup (event->id);
  recorded->retry = event->retry;
  g_ptr_array_add (events, recorded);
}

static GPtrArray *
new_event_list (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) recorded_free);
}

static ChimeSseParser *
new_parser (GPtrArray *events)
{
  return chime_sse_parser_new (record_event, events);
}

/* Feeds @text in pieces of @piece_size bytes (all at once when 0) and
 * finishes the stream. */
static GPtrArray *
parse_in_pieces (const char *text,
                 gsize       length,
                 gsize       piece_size)
{
  GPtrArray *events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);

  if (piece_size == 0)
    piece_size = MAX (length, 1);
  for (gsize offset = 0; offset < length; offset += piece_size)
    chime_sse_parser_feed (parser, text + offset, MIN (piece_size, length - offset));
  chime_sse_parser_finish (parser);
  assert_null (chime_sse_parser_get_error (parser));
  return events;
}

static GPtrArray *
parse_text (const char *text)
{
  return parse_in_pieces (text, strlen (text), 0);
}

/* Feeds @text as two pieces cut at @split. */
static GPtrArray *
parse_split (const char *text,
             gsize       length,
             gsize       split)
{
  GPtrArray *events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);

  chime_sse_parser_feed (parser, text, split);
  chime_sse_parser_feed (parser, text + split, length - split);
  chime_sse_parser_finish (parser);
  assert_null (chime_sse_parser_get_error (parser));
  return events;
}

static void
assert_same_events (GPtrArray  *expected,
                    GPtrArray  *actual,
                    const char *how)
{
  if (expected->len != actual->len)
    fail_msg ("%s: %u events instead of %u", how, actual->len, expected->len);
  for (guint i = 0; i < expected->len; i++)
    {
      Recorded *e = g_ptr_array_index (expected, i);
      Recorded *a = g_ptr_array_index (actual, i);

      if (strcmp (e->event, a->event) != 0 || e->data_len != a->data_len ||
          memcmp (e->data, a->data, e->data_len) != 0 || strcmp (e->id, a->id) != 0 ||
          e->retry != a->retry)
        fail_msg ("%s: event %u differs: got (%s, \"%s\", %s, %" G_GINT64_FORMAT ") "
                  "instead of (%s, \"%s\", %s, %" G_GINT64_FORMAT ")", how, i,
                  a->event, a->data, a->id, a->retry, e->event, e->data, e->id, e->retry);
    }
}

static void
assert_events (GPtrArray      *actual,
               const Expected *expected,
               gsize           n_expected)
{
  if (actual->len != n_expected)
    fail_msg ("%u events instead of %" G_GSIZE_FORMAT, actual->len, n_expected);
  for (gsize i = 0; i < n_expected; i++)
    {
      Recorded *a = g_ptr_array_index (actual, i);

      assert_string_equal (a->event, expected[i].event);
      assert_int_equal (a->data_len, strlen (expected[i].data));
      assert_string_equal (a->data, expected[i].data);
      assert_string_equal (a->id, expected[i].id);
      assert_int_equal (a->retry, expected[i].retry);
    }
}

static void
assert_no_events (const char *text)
{
  g_autoptr (GPtrArray) events = parse_text (text);

  if (events->len != 0)
    fail_msg ("expected no event from \"%s\", got %u", text, events->len);
}

static char *
read_fixture (const char *name,
              gsize      *length)
{
  g_autofree char *path = g_build_filename (FIXTURE_DIR, name, NULL);
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, length, NULL))
    fail_msg ("cannot read fixture %s", path);
  return contents;
}

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

/* Whole, one byte at a time, and cut in two at every position: always the
 * same events. */
static void
check_every_split (const char *text,
                   gsize       length,
                   const char *name)
{
  g_autoptr (GPtrArray) whole = parse_in_pieces (text, length, 0);
  g_autoptr (GPtrArray) bytewise = parse_in_pieces (text, length, 1);

  assert_true (whole->len > 0);
  assert_same_events (whole, bytewise, name);
  for (gsize split = 0; split <= length; split++)
    {
      g_autoptr (GPtrArray) halves = parse_split (text, length, split);
      g_autofree char *how = g_strdup_printf ("%s split at %" G_GSIZE_FORMAT, name, split);

      assert_same_events (whole, halves, how);
    }
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

static void
test_multiline_data (void **state)
{
  /* The openai-python test case. */
  static const Expected sdk[] = { { "ping", "{\n\"foo\":\n\n\ntrue}", "", -1 } };
  static const Expected two_empty[] = { { "message", "\n", "", -1 } };
  static const Expected one_empty[] = { { "message", "", "", -1 } };
  static const Expected blank_lines[] = { { "message", "a", "", -1 }, { "message", "b", "", -1 } };
  g_autoptr (GPtrArray) sdk_events =
    parse_text ("event: ping\ndata: {\ndata: \"foo\":\ndata: \ndata:\ndata: true}\n\n");
  g_autoptr (GPtrArray) two_empty_events = parse_text ("data\ndata\n\n");
  g_autoptr (GPtrArray) one_empty_events = parse_text ("data:\n\n");
  /* Extra blank lines between events dispatch nothing. */
  g_autoptr (GPtrArray) blank_line_events = parse_text ("\n\ndata: a\n\n\n\ndata: b\n\n\n");

  assert_events (sdk_events, sdk, G_N_ELEMENTS (sdk));
  assert_events (two_empty_events, two_empty, G_N_ELEMENTS (two_empty));
  assert_events (one_empty_events, one_empty, G_N_ELEMENTS (one_empty));
  assert_events (blank_line_events, blank_lines, G_N_ELEMENTS (blank_lines));
}

static void
test_field_parsing (void **state)
{
  static const Expected expected[] = {
    { "message", "x", "", -1 },
    { "message", " x", "", -1 },
    { "message", "{\"a\":1}", "", -1 },
    { "message", "a:b: c", "", -1 },
    { "message", "y", "", -1 },
  };
  g_autoptr (GPtrArray) events =
    parse_text ("data:x\n\n"
                "data:  x\n\n"
                "data: {\"a\":1}\n\n"
                "data: a:b: c\n\n"
                /* Unknown fields and case variants are ignored. */
                "foo: bar\nDATA: no\nData: no\ndata : no\nEvent: no\ndata: y\n\n");
  g_autoptr (GPtrArray) with_nul = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (with_nul);
  Recorded *recorded;

  assert_events (events, expected, G_N_ELEMENTS (expected));

  /* Only unknown fields: no data, no event. */
  assert_no_events ("data : x\n\n");
  assert_no_events ("event: ping\n\n");
  assert_no_events ("foo\nbar: baz\n\n");

  /* A NUL in data is kept, and counted in data_len. */
  chime_sse_parser_feed (parser, "data: a\0b\n\n", 11);
  assert_int_equal (with_nul->len, 1);
  recorded = g_ptr_array_index (with_nul, 0);
  assert_int_equal (recorded->data_len, 3);
  assert_memory_equal (recorded->data, "a\0b", 4);
}

static void
test_comments (void **state)
{
  static const Expected expected[] = { { "message", "a\nb", "", -1 }, { "message", "c", "", -1 } };
  static const char text[] = ": keep-alive\n:\n:ping\ndata: a\n: between fields\ndata: b\n\n: x\r\ndata: c\r\n\r\n";
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);
  g_autoptr (GPtrArray) only = new_event_list ();
  g_autoptr (ChimeSseParser) only_parser = new_parser (only);

  /* Byte by byte, so each comment is also seen whole across pieces. */
  for (gsize i = 0; i < sizeof text - 1; i++)
    chime_sse_parser_feed (parser, text + i, 1);
  chime_sse_parser_finish (parser);
  assert_events (events, expected, G_N_ELEMENTS (expected));
  assert_int_equal (chime_sse_parser_get_n_comments (parser), 5);

  /* Keep-alives alone fire nothing and leave no incomplete event. */
  chime_sse_parser_feed (only_parser, ": ping\n\n: ping\n", 15);
  assert_false (chime_sse_parser_has_partial (only_parser));
  chime_sse_parser_finish (only_parser);
  assert_int_equal (only->len, 0);
  assert_int_equal (chime_sse_parser_get_n_comments (only_parser), 2);
  assert_false (chime_sse_parser_has_partial (only_parser));
}

static void
test_bom (void **state)
{
  static const Expected expected[] = { { "message", "a", "", -1 } };
  static const char text[] = "\xef\xbb\xbf" "data: a\n\n";
  g_autoptr (GPtrArray) events = parse_text (text);
  g_autoptr (GPtrArray) prefix_events = NULL;

  assert_events (events, expected, G_N_ELEMENTS (expected));
  /* The mark itself may be split. */
  check_every_split (text, sizeof text - 1, "BOM");

  /* Only one mark is stripped: a second one makes the field name
   * "\xef\xbb\xbf" "data", which is unknown. */
  assert_no_events ("\xef\xbb\xbf\xef\xbb\xbf" "data: a\n\n");
  /* Only at the start of the stream. */
  assert_no_events ("\n\xef\xbb\xbf" "data: a\n\n");

  /* Bytes that only begin like a mark are content, not dropped: here
   * they make an unknown field of their own. */
  prefix_events = parse_text ("\xef\xbb\n\ndata: a\n\n");
  assert_events (prefix_events, expected, G_N_ELEMENTS (expected));
  assert_no_events ("\xef\xbb" "data: a\n\n");
}

static void
test_retry (void **state)
{
  static const Expected expected[] = {
    { "message", "0", "", -1 },
    { "message", "1", "", 1500 },
    { "message", "2", "", 1500 },
    { "message", "3", "", 0 },
    { "message", "4", "", G_MAXINT64 },
  };
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);
  static const char text[] =
    "data: 0\n\n"
    "retry: 1500\ndata: 1\n\n"
    /* None of these is all digits: all ignored, the value sticks. */
    "retry: 10x\nretry: -1\nretry:\nretry\nretry: 1.5\nretry:  100\nretry: +7\nretry: one thousand\n"
    "data: 2\n\n"
    "retry: 0\ndata: 3\n\n"
    "retry: 99999999999999999999999\ndata: 4\n\n";

  assert_int_equal (chime_sse_parser_get_retry (parser), -1);
  chime_sse_parser_feed (parser, text, sizeof text - 1);
  assert_events (events, expected, G_N_ELEMENTS (expected));
  assert_int_equal (chime_sse_parser_get_retry (parser), G_MAXINT64);

  /* A retry applies at once, even in an event that never completes. */
  chime_sse_parser_feed (parser, "retry: 250\n", 11);
  assert_int_equal (chime_sse_parser_get_retry (parser), 250);
}

static void
test_id (void **state)
{
  static const Expected expected[] = {
    { "message", "a", "1", -1 },
    { "message", "b", "1", -1 },
    { "message", "c", "", -1 },
    { "message", "d", "7", -1 },
    { "message", "e", "7", -1 },
    { "message", "f", "x y", -1 },
  };
  static const char text[] =
    "id: 1\ndata: a\n\n"
    "data: b\n\n"
    /* An empty id resets it. */
    "id\ndata: c\n\n"
    /* Set by an event without data, which is not dispatched. */
    "id: 7\n\n"
    "data: d\n\n"
    /* An id holding NUL is ignored. */
    "id: 8\0" "9\ndata: e\n\n"
    "id:x y\ndata: f\n\n";
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);

  chime_sse_parser_feed (parser, text, sizeof text - 1);
  assert_events (events, expected, G_N_ELEMENTS (expected));
  assert_string_equal (chime_sse_parser_get_last_event_id (parser), "x y");

  /* The id of an event that is still incomplete is not the last event
   * id yet, and is forgotten if the stream ends first. */
  chime_sse_parser_feed (parser, "id: 9\ndata: g\n", 14);
  assert_string_equal (chime_sse_parser_get_last_event_id (parser), "x y");
  chime_sse_parser_finish (parser);
  assert_int_equal (events->len, G_N_ELEMENTS (expected));
  assert_string_equal (chime_sse_parser_get_last_event_id (parser), "x y");
}

static void
test_event_type_reset (void **state)
{
  static const Expected expected[] = {
    { "foo", "a", "", -1 },
    { "message", "b", "", -1 },
    { "message", "c", "", -1 },
    { "bar", "d", "", -1 },
  };
  g_autoptr (GPtrArray) events =
    parse_text ("event: foo\ndata: a\n\n"
                "data: b\n\n"
                /* Reset even when nothing is dispatched. */
                "event: ping\n\n"
                "data: c\n\n"
                /* The last event field wins; an empty one means "message". */
                "event: x\nevent:\nevent: bar\ndata: d\n\n");

  assert_events (events, expected, G_N_ELEMENTS (expected));
}

static void
test_utf8_split (void **state)
{
  /* Two-, three- and four-byte sequences, in data, event type and id. */
  static const char text[] =
    "event: caf\xc3\xa9\nid: \xe2\x82\xac" "1\ndata: {\"text\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9\"}\n\n"
    "data: \xf0\x9f\x98\x80\n\n";
  static const Expected expected[] = {
    { "caf\xc3\xa9", "{\"text\":\"\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9\"}", "\xe2\x82\xac" "1", -1 },
    { "message", "\xf0\x9f\x98\x80", "\xe2\x82\xac" "1", -1 },
  };
  g_autoptr (GPtrArray) events = parse_text (text);

  assert_events (events, expected, G_N_ELEMENTS (expected));
  /* Splits fall inside every multi-byte character; what is handed out is
   * always whole and valid. */
  for (gsize split = 0; split < sizeof text; split++)
    {
      g_autoptr (GPtrArray) halves = parse_split (text, sizeof text - 1, split);

      assert_events (halves, expected, G_N_ELEMENTS (expected));
      for (guint i = 0; i < halves->len; i++)
        assert_true (g_utf8_validate (((Recorded *) g_ptr_array_index (halves, i))->data, -1, NULL));
    }
}

static gboolean
partial_after (const char *text,
               gsize       length,
               guint      *n_events)
{
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);
  gboolean before;

  chime_sse_parser_feed (parser, text, length);
  before = chime_sse_parser_has_partial (parser);
  chime_sse_parser_finish (parser);
  /* Before and after finish() agree. */
  assert_int_equal (before, chime_sse_parser_has_partial (parser));
  *n_events = events->len;
  return chime_sse_parser_has_partial (parser);
}

static void
test_eof_partial (void **state)
{
  gsize length;
  g_autofree char *anthropic = read_fixture ("anthropic-stream.sse", &length);
  guint n;

  assert_false (partial_after ("data: a\n\n", 9, &n));
  assert_int_equal (n, 1);
  /* Fields without the final blank line: discarded. */
  assert_true (partial_after ("data: a\n\ndata: b\n", 17, &n));
  assert_int_equal (n, 1);
  /* An unterminated line. */
  assert_true (partial_after ("data: a\n\ndata: b", 16, &n));
  assert_int_equal (n, 1);
  assert_true (partial_after ("data: a\n\n:", 10, &n));
  assert_true (partial_after ("event: x\n", 9, &n));
  assert_int_equal (n, 0);
  /* A lone CR ends the blank line at once. */
  assert_false (partial_after ("data: a\n\r", 9, &n));
  assert_int_equal (n, 1);
  assert_false (partial_after ("", 0, &n));
  assert_true (partial_after ("\xef\xbb", 2, &n));

  /* The Anthropic SDK's fixture file has no final newline, so message_stop
   * is lost; with the newline but no blank line it is lost too. */
  assert_true (partial_after (anthropic, length - 2, &n));
  assert_int_equal (n, 8);
  assert_true (partial_after (anthropic, length - 1, &n));
  assert_int_equal (n, 8);
  assert_false (partial_after (anthropic, length, &n));
  assert_int_equal (n, 9);
}

static void
test_restart_after_finish (void **state)
{
  static const Expected expected[] = {
    { "message", "a", "5", 100 },
    { "message", "b", "5", 100 },
  };
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);

  chime_sse_parser_feed (parser, "retry: 100\nid: 5\ndata: a\n\ndata: lost", 36);
  chime_sse_parser_finish (parser);
  assert_true (chime_sse_parser_has_partial (parser));
  /* A new stream, as after a reconnection: a BOM is stripped again, the
   * id and reconnection time carry over, nothing else does. */
  chime_sse_parser_feed (parser, "\xef\xbb\xbf" "data: b\n\n", 12);
  assert_false (chime_sse_parser_has_partial (parser));
  chime_sse_parser_finish (parser);
  assert_false (chime_sse_parser_has_partial (parser));
  assert_events (events, expected, G_N_ELEMENTS (expected));
}

static void
test_line_limit (void **state)
{
  static const Expected expected[] = { { "message", "0123456789", "", -1 } };
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);
  g_autoptr (GPtrArray) bytewise_events = new_event_list ();
  g_autoptr (ChimeSseParser) bytewise = new_parser (bytewise_events);
  const GError *error;

  assert_int_equal (chime_sse_parser_get_max_line_length (parser), 8 * 1024 * 1024);
  chime_sse_parser_set_max_line_length (parser, 16);
  /* Exactly 16 bytes without the line end: accepted. */
  chime_sse_parser_feed (parser, "data: 0123456789\n\n", 18);
  assert_null (chime_sse_parser_get_error (parser));
  assert_events (events, expected, G_N_ELEMENTS (expected));

  /* 17: refused, nothing dispatched, and the parser stays stopped. */
  chime_sse_parser_feed (parser, "data: 0123456789a\n\n", 19);
  error = chime_sse_parser_get_error (parser);
  assert_non_null (error);
  assert_true (g_error_matches (error, CHIME_SSE_ERROR, CHIME_SSE_ERROR_LINE_TOO_LONG));
  chime_sse_parser_feed (parser, "data: b\n\n", 9);
  assert_int_equal (events->len, 1);
  assert_true (chime_sse_parser_has_partial (parser));

  /* The limit is enforced before the line end arrives: a server that
   * never sends one cannot make the parser buffer more. */
  chime_sse_parser_set_max_line_length (bytewise, 16);
  for (guint i = 0; i < 16; i++)
    chime_sse_parser_feed (bytewise, "x", 1);
  assert_null (chime_sse_parser_get_error (bytewise));
  chime_sse_parser_feed (bytewise, "x", 1);
  assert_true (g_error_matches (chime_sse_parser_get_error (bytewise), CHIME_SSE_ERROR,
                                CHIME_SSE_ERROR_LINE_TOO_LONG));
  chime_sse_parser_finish (bytewise);
  assert_true (chime_sse_parser_has_partial (bytewise));
  assert_int_equal (bytewise_events->len, 0);
}

static void
test_event_limit (void **state)
{
  g_autoptr (GPtrArray) events = new_event_list ();
  g_autoptr (ChimeSseParser) parser = new_parser (events);

  /* Short lines, but their data adds up to more than the limit. */
  chime_sse_parser_set_max_line_length (parser, 16);
  chime_sse_parser_feed (parser, "data: 1234567\ndata: 1234567\n", 28);
  assert_null (chime_sse_parser_get_error (parser));
  chime_sse_parser_feed (parser, "data: 1\n", 8);
  assert_true (g_error_matches (chime_sse_parser_get_error (parser), CHIME_SSE_ERROR,
                                CHIME_SSE_ERROR_EVENT_TOO_LARGE));
  chime_sse_parser_feed (parser, "\n", 1);
  assert_int_equal (events->len, 0);
}

static void
test_large_event (void **state)
{
  /* A 1 MiB line, fed in small odd-sized pieces. */
  gsize size = 1024 * 1024;
  g_autoptr (GString) text = g_string_new ("data: ");
  g_autoptr (GPtrArray) events = NULL;
  Recorded *recorded;

  for (gsize i = 0; i < size; i++)
    g_string_append_c (text, (char) ('a' + i % 26));
  g_string_append (text, "\n\n");
  events = parse_in_pieces (text->str, text->len, 7);
  assert_int_equal (events->len, 1);
  recorded = g_ptr_array_index (events, 0);
  assert_int_equal (recorded->data_len, size);
  assert_memory_equal (recorded->data, text->str + 6, size);
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
    cmocka_unit_test (test_multiline_data),
    cmocka_unit_test (test_field_parsing),
    cmocka_unit_test (test_comments),
    cmocka_unit_test (test_bom),
    cmocka_unit_test (test_retry),
    cmocka_unit_test (test_id),
    cmocka_unit_test (test_event_type_reset),
    cmocka_unit_test (test_utf8_split),
    cmocka_unit_test (test_eof_partial),
    cmocka_unit_test (test_restart_after_finish),
    cmocka_unit_test (test_line_limit),
    cmocka_unit_test (test_event_limit),
    cmocka_unit_test (test_large_event),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
