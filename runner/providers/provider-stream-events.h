/* What a provider's handle_event may call on its stream
 * (provider-stream-events.c). */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"
#include "sse-parser.h"

/* Hands one token (@length bytes) to the consumer. At most one per event:
 * the consumer may pause the stream, and then nothing more must reach it. */
void      chime_provider_stream_token     (ChimeModelStream    *stream,
                                           const char          *text,
                                           gsize                length);
/* Adds a piece of the tool call @index (@id, @name: NULL when the
 * piece does not say; @args: a fragment of its arguments) to the calls
 * the result reports, and its tool_call_chunk to @pieces. FALSE after
 * failing the stream (too many calls, too long arguments). */
gboolean  chime_provider_stream_tool_piece (ChimeModelStream   *stream,
                                            json_t             *pieces,
                                            gint64              index,
                                            const char         *id,
                                            const char         *name,
                                            const char         *args);
/* Hands @text (may be "") with the tool_call_chunks @pieces to the
 * consumer, as one chunk: like a token, at most one per event. An event
 * that yields one is never made a token template (its pieces are not a
 * token's text). */
void      chime_provider_stream_tool_chunk (ChimeModelStream   *stream,
                                            const char         *text,
                                            json_t             *pieces);
/* The provider's end-of-stream event has come: the stream succeeded. */
void      chime_provider_stream_terminate (ChimeModelStream    *stream);
/* The stream failed mid-way (an error event, bad JSON); the message is
 * prefixed with the provider's name. Not retried. */
void      chime_provider_stream_fail      (ChimeModelStream    *stream,
                                           const char          *format,
                                           ...) G_GNUC_PRINTF (2, 3);
/* The event's data as a JSON object, or NULL after failing the stream. */
json_t   *chime_provider_stream_parse     (ChimeModelStream    *stream,
                                           const ChimeSseEvent *event);
