/* The parsing rules of the WHATWG Server-Sent Events standard, one by
 * one: data lines, field names and values, comments, the byte order
 * mark, retry, id, the event type, and UTF-8 cut anywhere. */
#include "sse-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------ */

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

/* An event function that stops the parser after every event it gets. */
static void
record_and_stop (const ChimeSseEvent *event,
                 gpointer             user_data)
{
  ChimeSseParser **parser = user_data;

  g_assert_cmpstr (event->event, ==, "message");
  chime_sse_parser_stop (*parser);
}

/* A consumer that pauses stops the parser from its event function: feed
 * returns right after the line that dispatched the event, whatever line
 * ends the piece uses, and the rest is parsed when fed again. */
static void
test_stop_from_the_event_function (void **state)
{
  static const char piece[] = "data: a\r\n\r\ndata: b\rdata: c\n\n: note\ndata: d\r\rdata: e\n";
  ChimeSseParser *parser = chime_sse_parser_new (record_and_stop, &parser);
  gsize length = strlen (piece);
  gsize used = 0;
  gsize stops[5];
  guint n = 0;

  while (used < length && n < G_N_ELEMENTS (stops))
    {
      used += chime_sse_parser_feed (parser, piece + used, length - used);
      stops[n++] = used;
    }
  assert_int_equal (n, 4);
  assert_int_equal (stops[0], strlen ("data: a\r\n\r"));
  assert_int_equal (stops[1], strlen ("data: a\r\n\r\ndata: b\rdata: c\n\n"));
  assert_int_equal (stops[2], length - strlen ("data: e\n"));
  /* The last event never ended: all of the piece was used. */
  assert_int_equal (stops[3], length);
  assert_true (chime_sse_parser_has_partial (parser));
  chime_sse_parser_free (parser);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_multiline_data),
    cmocka_unit_test (test_stop_from_the_event_function),
    cmocka_unit_test (test_field_parsing),
    cmocka_unit_test (test_comments),
    cmocka_unit_test (test_bom),
    cmocka_unit_test (test_retry),
    cmocka_unit_test (test_id),
    cmocka_unit_test (test_event_type_reset),
    cmocka_unit_test (test_utf8_split),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
