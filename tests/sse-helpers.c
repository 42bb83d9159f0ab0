/* Helpers shared by the SSE parser tests: see sse-helpers.h. */
#include "sse-helpers.h"

#include <string.h>

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

GPtrArray *
new_event_list (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) recorded_free);
}

ChimeSseParser *
new_parser (GPtrArray *events)
{
  return chime_sse_parser_new (record_event, events);
}

GPtrArray *
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

GPtrArray *
parse_text (const char *text)
{
  return parse_in_pieces (text, strlen (text), 0);
}

GPtrArray *
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

void
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

void
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

void
assert_no_events (const char *text)
{
  g_autoptr (GPtrArray) events = parse_text (text);

  if (events->len != 0)
    fail_msg ("expected no event from \"%s\", got %u", text, events->len);
}

char *
read_fixture (const char *name,
              gsize      *length)
{
  g_autofree char *path = g_build_filename (FIXTURE_DIR, name, NULL);
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, length, NULL))
    fail_msg ("cannot read fixture %s", path);
  return contents;
}

void
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
