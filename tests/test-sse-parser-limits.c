/* How a Server-Sent Events stream ends and how much it may hold: an
 * incomplete event at the end is reported and dropped, a new stream
 * starts clean, over-long lines and events stop the parser, and a large
 * event fed in small pieces arrives whole. */
#include "sse-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------ */

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
    cmocka_unit_test (test_eof_partial),
    cmocka_unit_test (test_restart_after_finish),
    cmocka_unit_test (test_line_limit),
    cmocka_unit_test (test_event_limit),
    cmocka_unit_test (test_large_event),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
