/* libFuzzer harness for the SSE parser (runner/providers/sse-parser.c).
 *
 * The stream is parsed twice: once in one piece, once in pieces of
 * random sizes, as a network delivers it. Both must give the same events,
 * the same error and the same state at the end: the parser promises that
 * where a piece ends makes no difference. Each event is checked against
 * what the format allows (no line end inside a field, the data within
 * the limit and NUL-terminated).
 *
 * Input: byte 0 picks the line limit (small limits reach the error
 * paths), bytes 1-4 seed the piece sizes, the rest is the stream. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "providers/sse-parser.h"
#include "fuzz-common.h"

typedef struct {
  GString *log;
  gsize    max_line_length;
} Recorder;

/* Appends one length-prefixed field, so that no two event sequences
 * log the same. */
static void
log_field (GString    *log,
           const char *bytes,
           gsize       length)
{
  g_string_append_printf (log, "%" G_GSIZE_FORMAT ":", length);
  g_string_append_len (log, bytes, (gssize) length);
}

static void
on_event (const ChimeSseEvent *event,
          gpointer             user_data)
{
  Recorder *recorder = user_data;

  /* Not checked: a type is never empty, but one with a NUL reads as
   * shorter (it is a C string), down to "" for "event: \0". */
  g_assert (event->event != NULL);
  g_assert (strpbrk (event->event, "\r\n") == NULL);
  g_assert (strpbrk (event->id, "\r\n") == NULL);
  g_assert (event->data[event->data_len] == '\0');
  g_assert (event->data_len < recorder->max_line_length);
  g_assert (memchr (event->data, '\r', event->data_len) == NULL);
  g_assert (event->retry >= -1);

  log_field (recorder->log, event->event, strlen (event->event));
  log_field (recorder->log, event->data, event->data_len);
  log_field (recorder->log, event->id, strlen (event->id));
  g_string_append_printf (recorder->log, "%" G_GINT64_FORMAT ";", event->retry);
}

/* Logs what the parser says at the end, after the events. */
static void
log_end (ChimeSseParser *parser,
         GString        *log)
{
  const GError *error = chime_sse_parser_get_error (parser);
  const char *id = chime_sse_parser_get_last_event_id (parser);

  g_string_append_printf (log, "|error %d|partial %d|comments %" G_GUINT64_FORMAT "|retry %"
                          G_GINT64_FORMAT "|", error != NULL ? error->code : -1,
                          chime_sse_parser_has_partial (parser),
                          chime_sse_parser_get_n_comments (parser),
                          chime_sse_parser_get_retry (parser));
  log_field (log, id, strlen (id));
}

static gsize
pick_max_line_length (guint8 selector)
{
  /* Mostly the default; otherwise small enough for the limits to bite. */
  if (selector < 192)
    return CHIME_SSE_DEFAULT_MAX_LINE_LENGTH;
  return 1 + (selector - 192) * 4;
}

static void
parse (const char *stream,
       gsize       length,
       gsize       max_line_length,
       guint32     seed,
       GString    *log)
{
  Recorder recorder = { log, max_line_length };
  g_autoptr (ChimeSseParser) parser = chime_sse_parser_new (on_event, &recorder);
  gsize offset = 0;

  chime_sse_parser_set_max_line_length (parser, max_line_length);
  if (seed == 0)
    chime_sse_parser_feed (parser, stream, length);
  while (seed != 0 && offset < length)
    {
      gsize next = fuzz_next_piece (&seed);
      gsize piece = MIN (next, length - offset);

      chime_sse_parser_feed (parser, stream + offset, piece);
      /* An empty piece, as a transport may deliver, changes nothing. */
      chime_sse_parser_feed (parser, stream + offset + piece, 0);
      offset += piece;
    }
  /* Before the end, holding a partial event is the same however fed. */
  g_string_append_printf (log, "|before %d", chime_sse_parser_has_partial (parser));
  chime_sse_parser_finish (parser);
  log_end (parser, log);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GString) whole = g_string_new (NULL);
  g_autoptr (GString) pieces = g_string_new (NULL);
  gsize max_line_length;
  guint32 seed;

  if (size < 5)
    return 0;
  max_line_length = pick_max_line_length (data[0]);
  /* Never 0: that is how parse() is told to feed in one piece. */
  seed = (((guint32) data[1] << 24) | ((guint32) data[2] << 16) | ((guint32) data[3] << 8) | data[4]) | 1;

  parse ((const char *) data + 5, size - 5, max_line_length, 0, whole);
  parse ((const char *) data + 5, size - 5, max_line_length, seed, pieces);
  if (!g_string_equal (whole, pieces))
    fuzz_fail ("the events differ when fed in pieces", whole->str, pieces->str);
  return 0;
}
