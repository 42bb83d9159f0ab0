/* A push parser for Server-Sent Events (the "text/event-stream" format of
 * the WHATWG HTML standard, "Parsing an event stream").
 *
 * The parser works on bytes: it is fed whatever a transport delivers (a
 * libcurl write callback, a socket read) in pieces of any size, split at
 * any byte, and calls back once per complete event. It never interprets
 * the payload; LLM providers put JSON in `data`. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CHIME_SSE_ERROR (chime_sse_error_quark ())

typedef enum
{
  /* A single line is longer than the parser's limit. */
  CHIME_SSE_ERROR_LINE_TOO_LONG,
  /* The data lines of one event add up to more than the limit. */
  CHIME_SSE_ERROR_EVENT_TOO_LARGE,
} ChimeSseError;

/* The default for chime_sse_parser_set_max_line_length(). */
#define CHIME_SSE_DEFAULT_MAX_LINE_LENGTH ((gsize) 8 * 1024 * 1024)

typedef struct
{
  /* The `event` field, or "message" when the event had none. */
  const char *event;
  /* The `data` lines joined with "\n", without the final newline.
   * NUL-terminated; @data_len counts the bytes in case the data itself
   * holds a NUL. The bytes are passed through as received: they are
   * valid UTF-8 exactly when the server sent valid UTF-8. */
  const char *data;
  gsize       data_len;
  /* The last event id: sticky across events, as the standard wants, so
   * it is what a client resends as Last-Event-ID. "" when never set. */
  const char *id;
  /* The stream's reconnection time in milliseconds as last set by a
   * `retry` field (sticky, like @id), or -1 when none was. */
  gint64      retry;
} ChimeSseEvent;

typedef struct _ChimeSseParser ChimeSseParser;

/* Called for every dispatched event. @event and its strings belong to the
 * parser and are valid only during the call. The callback must not feed,
 * finish or free the parser; it may stop it (chime_sse_parser_stop()). */
typedef void (*ChimeSseEventFunc) (const ChimeSseEvent *event,
                                   gpointer             user_data);

GQuark          chime_sse_error_quark                 (void);

ChimeSseParser *chime_sse_parser_new                  (ChimeSseEventFunc func,
                                                       gpointer          user_data);
void            chime_sse_parser_free                 (ChimeSseParser   *parser);

void            chime_sse_parser_set_max_line_length  (ChimeSseParser   *parser,
                                                       gsize             max_length);
gsize           chime_sse_parser_get_max_line_length  (ChimeSseParser   *parser);

gsize           chime_sse_parser_feed                 (ChimeSseParser   *parser,
                                                       const char       *data,
                                                       gsize             length);
void            chime_sse_parser_stop                 (ChimeSseParser   *parser);
gboolean        chime_sse_parser_is_between_events    (ChimeSseParser   *parser);
void            chime_sse_parser_finish               (ChimeSseParser   *parser);

gboolean        chime_sse_parser_has_partial          (ChimeSseParser   *parser);
const GError   *chime_sse_parser_get_error            (ChimeSseParser   *parser);
guint64         chime_sse_parser_get_n_comments       (ChimeSseParser   *parser);
const char     *chime_sse_parser_get_last_event_id    (ChimeSseParser   *parser);
gint64          chime_sse_parser_get_retry            (ChimeSseParser   *parser);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeSseParser, chime_sse_parser_free)

G_END_DECLS
