/* A stream of an HTTP chat model provider, as its two halves share it:
 * provider-stream.c runs its life (attempts, retries, pausing, the end),
 * provider-stream-events.c makes tokens of the events of a 2xx response.
 * The life calls the events half through the two functions below and
 * nothing else; the events half only sets the fields the life reads
 * (paused, terminated, stream_error), never calls back. */
#pragma once

#include <glib.h>

#include <chime/chime.h>
#include "provider-model.h"
#include "sse-parser.h"
#include "provider-tool-calls.h"
#include "token-template.h"

/* What the stream's source does at its next dispatch. */
typedef enum {
  CHIME_STREAM_ACTION_NONE,
  CHIME_STREAM_ACTION_ATTEMPT,   /* the backoff is over: try again */
  CHIME_STREAM_ACTION_FINISH,    /* report the end through on_done */
} ChimeStreamAction;

struct _ChimeModelStream {
  ChimeProviderModel        *model;
  const ChimeProviderOps    *ops;
  const ChimeModelCallbacks *callbacks;
  gpointer                   user_data;
  GMainContext              *context;
  GSource                   *source;
  ChimeStreamAction          action;

  char                      *url;
  char                      *body;
  char                     **headers;
  char                      *api_key;         /* kept only to scrub messages */

  ChimeHttpTransfer         *transfer;
  guint                      attempts;
  gdouble                    slept;           /* seconds of backoff so far */
  guint64                    n_tokens;        /* and tool call chunks */
  guint64                    n_tool_chunks;
  ChimeToolCallBuffer       *tool_calls;
  gboolean                   paused;
  gboolean                   cancelled;
  GError                    *error;           /* how the stream ends */

  /* The attempt in progress. */
  guint                      status;
  GString                   *error_body;
  char                      *location;        /* of a redirect */
  char                      *unreadable_body; /* why a compressed error body is not read */
  ChimeSseParser            *parser;
  ChimeTokenTemplate        *template;
  gboolean                   template_armed;  /* it holds an event */
  guint                      template_misses; /* armed, then missed, in a row */
  GString                   *last_token;      /* of the event being handled */
  gboolean                   learning;        /* in handle_in_full: keep last_token */
  gboolean                   terminated;
  GError                    *stream_error;    /* a failure inside a 2xx stream */
  gdouble                    retry_after;
  char                      *should_retry;

  gpointer                   state;
};

/* A 2xx response has begun: its events go to a new SSE parser, and the
 * token template starts empty. */
void  chime_provider_stream_begin_events (ChimeModelStream *stream);
/* Feeds the body bytes of a 2xx response to the parser line by line, and
 * stops after the line that paused the consumer, ended the stream or failed
 * it. Returns how many bytes were used. */
gsize chime_provider_stream_feed         (ChimeModelStream *stream,
                                          const char       *data,
                                          gsize             length);
