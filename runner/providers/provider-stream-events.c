/* The events of a 2xx stream of an HTTP chat model provider: the body
 * fed to the SSE parser line by line, each event handed to the provider
 * (handle_event) or, when it looks like the last token event, its token
 * taken out through the token template; and what handle_event calls back
 * — a token for the consumer, the end, a failure.
 *
 * The body is cut into lines before it reaches the parser so that the
 * stream can stop right after the event whose token made the consumer
 * pause: the bytes after it stay with the transfer until the consumer
 * resumes (provider-stream.c). */
#include "config.h"

#include "provider-stream-events.h"
#include "provider-stream-private.h"
#include "provider-errors.h"

#include <string.h>

/* A stream whose token templates keep failing on the very next event
 * (a field that changes with every event) stops making them after this
 * many, so as not to pay for learning on every token. */
#define MAX_TEMPLATE_MISSES 32

/* ------------------------------------------------------------------
 * For handle_event
 * ---------------------------------------------------------------- */

void
chime_provider_stream_token (ChimeModelStream *stream,
                             const char       *text,
                             gsize             length)
{
  g_return_if_fail (!stream->paused);

  stream->n_tokens++;
  if (stream->learning)
    {
      g_string_truncate (stream->last_token, 0);
      g_string_append_len (stream->last_token, text, length);
    }
  if (!stream->callbacks->on_chunk (text, length, NULL, stream->user_data))
    stream->paused = TRUE;
}

gboolean
chime_provider_stream_tool_piece (ChimeModelStream *stream,
                                  json_t           *pieces,
                                  gint64            index,
                                  const char       *id,
                                  const char       *name,
                                  const char       *args)
{
  g_autofree char *problem = NULL;

  if (stream->tool_calls == NULL)
    stream->tool_calls = chime_tool_call_buffer_new ();
  problem = chime_tool_call_buffer_add (stream->tool_calls, index, id, name, args);
  if (problem != NULL)
    {
      chime_provider_stream_fail (stream, "%s", problem);
      return FALSE;
    }
  json_array_append_new (pieces, chime_tool_call_chunk_new (index, id, name, args));
  return TRUE;
}

void
chime_provider_stream_tool_chunk (ChimeModelStream *stream,
                                  const char       *text,
                                  json_t           *pieces)
{
  g_autoptr (json_t) chunk = json_pack ("{s:O}", "tool_call_chunks", pieces);

  g_return_if_fail (!stream->paused);

  stream->n_tokens++;
  stream->n_tool_chunks++;
  if (!stream->callbacks->on_chunk (text, strlen (text), chunk, stream->user_data))
    stream->paused = TRUE;
}

void
chime_provider_stream_terminate (ChimeModelStream *stream)
{
  stream->terminated = TRUE;
}

void
chime_provider_stream_fail (ChimeModelStream *stream,
                            const char       *format,
                            ...)
{
  g_autofree char *message = NULL;
  va_list args;

  if (stream->stream_error != NULL)
    return;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  stream->stream_error = chime_provider_error_new ("%s: %s", stream->ops->name, message);
}

json_t *
chime_provider_stream_parse (ChimeModelStream    *stream,
                             const ChimeSseEvent *event)
{
  json_error_t error;
  json_t *json = json_loadb (event->data, event->data_len, 0, &error);

  if (!json_is_object (json))
    {
      g_autofree char *quoted = chime_provider_quote_text (event->data, event->data_len,
                                                           CHIME_PROVIDER_MAX_QUOTED_BODY);
      /* jansson quotes the bytes near a syntax error as they came, UTF-8
       * or not; the message goes to the terminal and into events. */
      g_autofree char *reason = g_utf8_make_valid (json == NULL ? error.text : "not an object", -1);

      chime_provider_stream_fail (stream, "the stream sent an event that is not a JSON object (%s): %s",
                                  reason, quoted);
      if (json != NULL)
        json_decref (json);
      return NULL;
    }
  return json;
}

/* ------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------- */

/* Hands @event to the provider, and makes a template of it when it
 * yielded a token. The template is made from this event or none: an event
 * handled in full may have changed the state, and the contract that lets
 * a template skip handle_event holds only right after its own event. */
static void
handle_in_full (ChimeModelStream    *stream,
                const ChimeSseEvent *event)
{
  guint64 n_tokens = stream->n_tokens;
  guint64 n_tool_chunks = stream->n_tool_chunks;
  gboolean learn = stream->template_misses < MAX_TEMPLATE_MISSES;

  /* chime_provider_stream_token() keeps a copy only for learning. */
  if (learn && stream->last_token == NULL)
    stream->last_token = g_string_new (NULL);
  else if (!learn && stream->last_token != NULL)
    {
      g_string_free (stream->last_token, TRUE);
      stream->last_token = NULL;
    }
  stream->learning = learn;
  stream->ops->handle_event (stream, stream->state, event);
  stream->learning = FALSE;
  if (learn && stream->n_tokens == n_tokens + 1 && stream->n_tool_chunks == n_tool_chunks &&
      stream->stream_error == NULL && !stream->terminated)
    stream->template_armed = chime_token_template_learn (stream->template, event->event, event->data,
                                                         event->data_len, stream->last_token->str);
}

static gboolean
stream_stopped (ChimeModelStream *stream)
{
  return stream->paused || stream->terminated || stream->stream_error != NULL || stream->cancelled;
}

static void handle_sse_event (const ChimeSseEvent *event,
                              ChimeModelStream    *stream);

/* After the end, an error or a pause, nothing more is looked at: the
 * parser stops right after the event that caused it, and feed() returns
 * what it used. */
static void
on_sse_event (const ChimeSseEvent *event,
              gpointer             user_data)
{
  ChimeModelStream *stream = user_data;

  if (!stream_stopped (stream))
    handle_sse_event (event, stream);
  /* With a template, the next event may be taken from the raw bytes
   * (take_raw_event): the parser hands back after each event. */
  if (stream_stopped (stream) || stream->template_armed)
    chime_sse_parser_stop (stream->parser);
}

static void
handle_sse_event (const ChimeSseEvent *event,
                  ChimeModelStream    *stream)
{
  if (stream->template_armed)
    {
      const char *token = chime_token_template_match (stream->template, event->event, event->data,
                                                      event->data_len);

      if (token != NULL)
        {
          stream->template_misses = 0;
          chime_provider_stream_token (stream, token, chime_token_template_get_token_length (stream->template));
          return;
        }
      stream->template_armed = FALSE;
      stream->template_misses++;
    }
  handle_in_full (stream, event);
}

void
chime_provider_stream_begin_events (ChimeModelStream *stream)
{
  stream->parser = chime_sse_parser_new (on_sse_event, stream);
  if (stream->template == NULL)
    stream->template = chime_token_template_new ();
  chime_token_template_forget (stream->template);
  stream->template_armed = FALSE;
  stream->template_misses = 0;
}

/* A token event taken straight from the stream's bytes at @p: a line
 * "data: " + data the template matches, then a blank line, with the SSE
 * parser between events (the caller knows it is). Parsing it would change
 * nothing in the parser (no id, event type or retry field), so only the
 * token is handled. @max_length is the parser's line bound. Returns the
 * bytes of the event, or 0 for the parser to read it. */
static gsize
take_raw_event (ChimeModelStream *stream,
                const char       *p,
                const char       *end,
                gsize             max_length)
{
  static const char field[] = "data: ";
  const gsize field_len = sizeof field - 1;
  const char *data_end;
  const char *token;

  if (!stream->template_armed || (gsize) (end - p) < field_len || memcmp (p, field, field_len) != 0)
    return 0;
  token = chime_token_template_match_raw (stream->template, p + field_len, end, &data_end);
  /* The parser's bounds, that it would fail the stream on: the line, and
   * the data with its LF. */
  if (token == NULL || end - data_end < 2 || data_end[0] != '\n' || data_end[1] != '\n' ||
      (gsize) (data_end - p) > max_length || (gsize) (data_end - p - field_len) + 1 > max_length)
    return 0;
  stream->template_misses = 0;
  chime_provider_stream_token (stream, token, chime_token_template_get_token_length (stream->template));
  return (gsize) (data_end + 2 - p);
}

gsize
chime_provider_stream_feed (ChimeModelStream *stream,
                            const char       *data,
                            gsize             length)
{
  gsize used = 0;
  /* Asked of the parser once per piece and again only after it read
   * something: a raw event leaves it as it was, between events, with the
   * same bound (two calls per token before). */
  gsize max_length = chime_sse_parser_get_max_line_length (stream->parser);
  gboolean between = chime_sse_parser_is_between_events (stream->parser);

  while (used < length && !stream_stopped (stream))
    {
      gsize taken = between ? take_raw_event (stream, data + used, data + length, max_length) : 0;
      const GError *error;

      if (taken > 0)
        {
          used += taken;
          continue;
        }
      /* The parser goes on until an event stops the stream or leaves a
       * template armed (on_sse_event), and returns what it used. */
      used += chime_sse_parser_feed (stream->parser, data + used, length - used);
      between = chime_sse_parser_is_between_events (stream->parser);
      error = chime_sse_parser_get_error (stream->parser);
      if (error != NULL)
        chime_provider_stream_fail (stream, "the event stream is malformed: %s", error->message);
    }
  return used;
}
