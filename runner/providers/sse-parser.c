/* Server-Sent Events push parser, following the WHATWG HTML standard,
 * "9.2.6 Interpreting an event stream".
 *
 * Input arrives in arbitrary pieces, so the only state carried between
 * calls to feed() is: the bytes of an unterminated line, whether the last
 * piece ended in CR (a following LF belongs to the same line end), how
 * much of a leading byte order mark has been seen, and the event being
 * built. Complete lines found inside one piece are handled in place,
 * without copying; only the unterminated tail of a piece is buffered. As
 * lines are only ever handed on whole, a UTF-8 sequence split across two
 * pieces is joined again before anyone looks at it. */
#include "config.h"

#include "sse-parser.h"
#include "string-append.h"

#include <string.h>

struct _ChimeSseParser
{
  ChimeSseEventFunc func;
  gpointer          user_data;

  /* An unterminated line carried over from an earlier piece. */
  GString *line;
  /* The event being built: the data and event type buffers of the
   * standard. */
  GString *data;
  GString *event_type;
  /* The standard's last event ID buffer, set by `id` fields, and the
   * last event ID string, which takes its value at each blank line. They
   * differ only while an event is incomplete; the string is what a
   * client may resend, as the incomplete event was never delivered.
   * Neither is reset between events: an id sticks until the next one. */
  GString *id_buffer;
  GString *last_event_id;
  gint64   retry;

  gsize    max_line_length;
  guint64  n_comments;
  GError  *error;

  /* Bytes of the byte order mark matched so far at the start. */
  guint    bom_matched;
  guint    at_stream_start : 1;
  /* The previous piece ended in CR: an LF that starts the next piece is
   * part of that line end, not a blank line. */
  guint    skip_lf : 1;
  /* A field line has been seen since the last blank line. */
  guint    in_event : 1;
  guint    finished : 1;
  /* What finish() found; has_partial() reports it until the next feed. */
  guint    partial_at_finish : 1;
  /* An `id` field has set id_buffer since the last blank line: only then
   * do the two id buffers differ (copying one to the other at every
   * event cost as much as the rest of a token's parsing). */
  guint    id_set : 1;
  /* chime_sse_parser_stop() was called by the event function. */
  guint    stopped : 1;
  /* A data field has been seen since the last blank line: data holds
   * the data lines joined with LF (no LF after the last one). */
  guint    data_seen : 1;
};

static const guchar utf8_bom[] = { 0xef, 0xbb, 0xbf };


/**
 * chime_sse_parser_new:
 * @func: called for each complete event
 * @user_data: passed to @func
 *
 * Returns: (transfer full): a parser at the start of a stream.
 */
ChimeSseParser *
chime_sse_parser_new (ChimeSseEventFunc func,
                      gpointer          user_data)
{
  ChimeSseParser *parser;

  g_return_val_if_fail (func != NULL, NULL);

  parser = g_new0 (ChimeSseParser, 1);
  parser->func = func;
  parser->user_data = user_data;
  parser->line = g_string_new (NULL);
  parser->data = g_string_new (NULL);
  parser->event_type = g_string_new (NULL);
  parser->id_buffer = g_string_new (NULL);
  parser->last_event_id = g_string_new (NULL);
  parser->retry = -1;
  parser->max_line_length = CHIME_SSE_DEFAULT_MAX_LINE_LENGTH;
  parser->at_stream_start = TRUE;
  return parser;
}

void
chime_sse_parser_free (ChimeSseParser *parser)
{
  if (parser == NULL)
    return;
  g_string_free (parser->line, TRUE);
  g_string_free (parser->data, TRUE);
  g_string_free (parser->event_type, TRUE);
  g_string_free (parser->id_buffer, TRUE);
  g_string_free (parser->last_event_id, TRUE);
  g_clear_error (&parser->error);
  g_free (parser);
}

/**
 * chime_sse_parser_set_max_line_length:
 * @parser: a parser
 * @max_length: the longest line accepted, in bytes, without its line end
 *
 * Bounds the memory a misbehaving server can make the parser use. The
 * same limit applies to the data of one event: otherwise many short
 * `data` lines without a blank line would grow it just the same. Going
 * over either puts the parser in an error state (see
 * chime_sse_parser_get_error()). The default is
 * %CHIME_SSE_DEFAULT_MAX_LINE_LENGTH.
 */
void
chime_sse_parser_set_max_line_length (ChimeSseParser *parser,
                                      gsize           max_length)
{
  g_return_if_fail (parser != NULL);
  g_return_if_fail (max_length > 0);

  parser->max_line_length = max_length;
}

gsize
chime_sse_parser_get_max_line_length (ChimeSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, 0);

  return parser->max_line_length;
}

static void
clear_pending (ChimeSseParser *parser)
{
  /* An id from an event that never completed is forgotten. */
  if (parser->id_set)
    g_string_assign (parser->id_buffer, parser->last_event_id->str);
  parser->id_set = FALSE;
  g_string_truncate (parser->line, 0);
  g_string_truncate (parser->data, 0);
  parser->data_seen = FALSE;
  g_string_truncate (parser->event_type, 0);
  parser->in_event = FALSE;
  parser->skip_lf = FALSE;
}

static void
fail (ChimeSseParser *parser,
      ChimeSseError   code,
      const char     *what)
{
  g_set_error (&parser->error, CHIME_SSE_ERROR, code,
               "Server-sent events: %s is longer than the limit of %" G_GSIZE_FORMAT " bytes",
               what, parser->max_line_length);
  clear_pending (parser);
}

static void
dispatch (ChimeSseParser *parser)
{
  ChimeSseEvent event;

  parser->in_event = FALSE;
  if (parser->id_set)
    g_string_assign (parser->last_event_id, parser->id_buffer->str);
  parser->id_set = FALSE;

  /* An event without data is not an event (`event: ping` alone fires
   * nothing in a browser), but it still ends the event type. */
  if (!parser->data_seen)
    {
      g_string_truncate (parser->event_type, 0);
      return;
    }

  event.event = parser->event_type->len > 0 ? parser->event_type->str : "message";
  event.data = parser->data->str;
  event.data_len = parser->data->len;
  event.id = parser->last_event_id->str;
  event.retry = parser->retry;
  parser->func (&event, parser->user_data);

  g_string_truncate (parser->data, 0);
  parser->data_seen = FALSE;
  g_string_truncate (parser->event_type, 0);
}

static gboolean
field_is (const char *name,
          gsize       name_len,
          const char *expected)
{
  /* Compared literally: field names are case-sensitive. */
  return name_len == strlen (expected) && memcmp (name, expected, name_len) == 0;
}

/* The value of a `retry` field: ASCII digits only (no sign, no space, not
 * empty), or -1 when it must be ignored. Saturates instead of wrapping. */
static gint64
parse_retry (const char *value,
             gsize       value_len)
{
  gint64 result = 0;

  if (value_len == 0)
    return -1;
  for (gsize i = 0; i < value_len; i++)
    {
      int digit;

      if (!g_ascii_isdigit (value[i]))
        return -1;
      digit = value[i] - '0';
      if (result > (G_MAXINT64 - digit) / 10)
        result = G_MAXINT64;
      else
        result = result * 10 + digit;
    }
  return result;
}

static void
process_field (ChimeSseParser *parser,
               const char     *name,
               gsize           name_len,
               const char     *value,
               gsize           value_len)
{
  if (field_is (name, name_len, "data"))
    {
      /* The bound counts an LF after every line, the last one too. */
      gsize separator = parser->data_seen ? 1 : 0;

      if (parser->data->len + separator + value_len + 1 > parser->max_line_length)
        {
          fail (parser, CHIME_SSE_ERROR_EVENT_TOO_LARGE, "the data of one event");
          return;
        }
      if (separator > 0)
        chime_string_append_bytes (parser->data, "\n", 1);
      chime_string_append_bytes (parser->data, value, value_len);
      parser->data_seen = TRUE;
    }
  else if (field_is (name, name_len, "event"))
    {
      g_string_truncate (parser->event_type, 0);
      g_string_append_len (parser->event_type, value, value_len);
    }
  else if (field_is (name, name_len, "id"))
    {
      /* An id with a NUL could not be sent back in Last-Event-ID. */
      if (memchr (value, '\0', value_len) == NULL)
        {
          g_string_truncate (parser->id_buffer, 0);
          g_string_append_len (parser->id_buffer, value, value_len);
          parser->id_set = TRUE;
        }
    }
  else if (field_is (name, name_len, "retry"))
    {
      gint64 retry = parse_retry (value, value_len);

      if (retry >= 0)
        parser->retry = retry;
    }
  /* Any other field is ignored. */
}

static void
process_line (ChimeSseParser *parser,
              const char     *line,
              gsize           len)
{
  const char *colon;

  if (len == 0)
    {
      dispatch (parser);
      return;
    }

  if (line[0] == ':')
    {
      /* A comment, typically a keep-alive. */
      parser->n_comments++;
      return;
    }

  parser->in_event = TRUE;
  colon = memchr (line, ':', len);
  if (colon == NULL)
    {
      /* The whole line is the field name, and the value is empty. */
      process_field (parser, line, len, "", 0);
    }
  else
    {
      gsize name_len = (gsize) (colon - line);
      const char *value = colon + 1;
      gsize value_len = len - name_len - 1;

      /* Exactly one space after the colon is part of the syntax. */
      if (value_len > 0 && value[0] == ' ')
        {
          value++;
          value_len--;
        }
      process_field (parser, line, name_len, value, value_len);
    }
}

/* Where the next CR of the piece being parsed is (see find_line_end). */
typedef struct {
  const char *cr;         /* NULL: none after the last search's start */
  gboolean    searched;
} CrCache;

/* The first CR or LF from @p, or NULL. Lines of LLM streams are a few
 * hundred bytes of JSON, which a loop over the bytes made the most
 * expensive part of parsing; memchr looks at many bytes per instruction.
 * CRs are rare (most servers end lines with LF alone), so @cache keeps
 * where the next one is, from one search over the rest of the piece:
 * each line then costs one memchr, for its LF. */
static const char *
find_line_end (const char *p,
               const char *end,
               CrCache    *cache)
{
  const char *lf;

  if (!cache->searched || (cache->cr != NULL && cache->cr < p))
    {
      cache->cr = memchr (p, '\r', end - p);
      cache->searched = TRUE;
    }
  lf = memchr (p, '\n', (cache->cr != NULL ? cache->cr : end) - p);
  return lf != NULL ? lf : cache->cr;
}

/* Adds to the unterminated line, or fails when it would grow too long.
 * Checking here, before the line end has arrived, is what bounds the
 * memory: a server that never sends a newline is stopped at the limit. */
static gboolean
append_to_line (ChimeSseParser *parser,
                const char     *bytes,
                gsize           len)
{
  if (len > parser->max_line_length - parser->line->len)
    {
      fail (parser, CHIME_SSE_ERROR_LINE_TOO_LONG, "a line");
      return FALSE;
    }
  g_string_append_len (parser->line, bytes, len);
  return TRUE;
}

/* Parses the lines of @data; returns how many bytes it used: all of them,
 * unless the event function stopped it (chime_sse_parser_stop()) at the
 * line that dispatched its event. */
static gsize
feed_lines (ChimeSseParser *parser,
            const char     *data,
            gsize           length)
{
  const char *p = data;
  const char *end = data + length;
  CrCache cr = { NULL, FALSE };

  while (p < end && parser->error == NULL)
    {
      const char *line_end;

      if (parser->skip_lf)
        {
          parser->skip_lf = FALSE;
          if (*p == '\n')
            {
              p++;
              continue;
            }
        }

      line_end = find_line_end (p, end, &cr);
      if (line_end == NULL)
        {
          append_to_line (parser, p, (gsize) (end - p));
          return length;
        }

      if (parser->line->len == 0)
        {
          /* The common case: a whole line inside this piece. */
          if ((gsize) (line_end - p) > parser->max_line_length)
            {
              fail (parser, CHIME_SSE_ERROR_LINE_TOO_LONG, "a line");
              return length;
            }
          process_line (parser, p, (gsize) (line_end - p));
        }
      else
        {
          if (!append_to_line (parser, p, (gsize) (line_end - p)))
            return length;
          process_line (parser, parser->line->str, parser->line->len);
          g_string_truncate (parser->line, 0);
        }

      p = line_end + 1;
      if (*line_end == '\r')
        parser->skip_lf = TRUE;
      if (parser->stopped)
        return (gsize) (p - data);
    }
  return length;
}

/* Consumes the part of a leading byte order mark found at the start of
 * @data and returns how many bytes that was. The mark may itself arrive
 * split across pieces. */
static gsize
skip_bom (ChimeSseParser *parser,
          const char     *data,
          gsize           length)
{
  gsize i;

  for (i = 0; i < length && parser->bom_matched < sizeof utf8_bom; i++)
    {
      if ((guchar) data[i] != utf8_bom[parser->bom_matched])
        {
          /* Not a mark after all: what looked like one is content. */
          parser->at_stream_start = FALSE;
          feed_lines (parser, (const char *) utf8_bom, parser->bom_matched);
          return i;
        }
      parser->bom_matched++;
    }
  if (parser->bom_matched == sizeof utf8_bom)
    parser->at_stream_start = FALSE;
  return i;
}

/* After finish(), feeding again starts a new stream, as an EventSource
 * does when it reconnects: the last event id and the reconnection time
 * carry over, everything else starts afresh. */
static void
restart_stream (ChimeSseParser *parser)
{
  clear_pending (parser);
  g_clear_error (&parser->error);
  parser->finished = FALSE;
  parser->partial_at_finish = FALSE;
  parser->at_stream_start = TRUE;
  parser->bom_matched = 0;
}

static gsize
feed (ChimeSseParser *parser,
      const char     *data,
      gsize           length)
{
  gsize skipped = 0;

  if (parser->finished)
    restart_stream (parser);
  if (parser->error != NULL)
    return length;

  if (parser->at_stream_start)
    {
      skipped = skip_bom (parser, data, length);
      data += skipped;
      length -= skipped;
    }
  if (parser->at_stream_start)
    return skipped + length;
  parser->stopped = FALSE;
  return skipped + feed_lines (parser, data, length);
}

/* Parses @data, calling the event function for each event completed by
 * it; nothing once in an error state. Returns the bytes used: all, unless
 * the event function called chime_sse_parser_stop(), then up to the end
 * of the line that dispatched that event (the caller feeds the rest
 * later). */
gsize
chime_sse_parser_feed (ChimeSseParser *parser,
                       const char     *data,
                       gsize           length)
{
  g_return_val_if_fail (parser != NULL, length);
  g_return_val_if_fail (data != NULL || length == 0, length);

  return feed (parser, data, length);
}

/* From the event function: parse nothing more of the bytes being fed (a
 * consumer that pauses or has seen the end). */
void
chime_sse_parser_stop (ChimeSseParser *parser)
{
  g_return_if_fail (parser != NULL);

  parser->stopped = TRUE;
}

/* Whether the parser is between two events with nothing pending (no
 * partial line or event, no byte order mark or CR to finish): a caller
 * may then take an event's bytes without it when they hold nothing but
 * one data line and a blank line, which would change nothing else here. */
gboolean
chime_sse_parser_is_between_events (ChimeSseParser *parser)
{
  return parser->error == NULL && !parser->finished && !parser->at_stream_start &&
         !parser->skip_lf && !parser->in_event && parser->line->len == 0;
}

static gboolean
holds_partial_event (ChimeSseParser *parser)
{
  return parser->error != NULL ||
         parser->in_event ||
         parser->line->len > 0 ||
         (parser->at_stream_start && parser->bom_matched > 0);
}

/* Ends the stream. As the standard says, an event not yet ended by a
 * blank line is discarded, not dispatched; chime_sse_parser_has_partial()
 * tells whether that happened (usually: the stream was cut short). */
void
chime_sse_parser_finish (ChimeSseParser *parser)
{
  g_return_if_fail (parser != NULL);

  if (parser->finished)
    return;
  parser->partial_at_finish = holds_partial_event (parser);
  clear_pending (parser);
  parser->finished = TRUE;
}

/* Before chime_sse_parser_finish(), whether the parser holds an
 * incomplete event (an unterminated line, or fields not yet followed by a
 * blank line); after it, whether it discarded one. After an error,
 * always TRUE. */
gboolean
chime_sse_parser_has_partial (ChimeSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, FALSE);

  if (parser->finished)
    return parser->partial_at_finish;
  return holds_partial_event (parser);
}

/* Why the parser stopped, or NULL. */
const GError *
chime_sse_parser_get_error (ChimeSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, NULL);

  return parser->error;
}

/* Comment lines seen; servers send them as keep-alives. */
guint64
chime_sse_parser_get_n_comments (ChimeSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, 0);

  return parser->n_comments;
}

/* The id to send as Last-Event-ID when reconnecting; "" when none. */
const char *
chime_sse_parser_get_last_event_id (ChimeSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, NULL);

  return parser->last_event_id->str;
}

/* The reconnection time in ms set by the server, or -1. */
gint64
chime_sse_parser_get_retry (ChimeSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, -1);

  return parser->retry;
}
