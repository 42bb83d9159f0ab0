/* A loopback OTLP/HTTP trace receiver for the otlp plugin's tests: it
 * listens on 127.0.0.1, answers POSTs as a collector would (or as a
 * test scripts it to: 503 with Retry-After, 400, a partial success), and
 * decodes every request with a real decoder: protobuf with the
 * protobuf-c code generated from plugins/otlp/otlp-trace.proto, JSON
 * with jansson, gzip with GLib's zlib. Each request's body is also
 * saved, so that tests can decode it with another decoder (protobufjs).
 *
 * Decoded spans come back in one shape whatever the encoding:
 *   {"traceId": hex, "spanId": hex, "parentSpanId": hex or "",
 *    "name", "kind": int, "start": int ns, "end": int ns,
 *    "attributes": {key: value}, "events": [{"name", "attributes"}],
 *    "status": {"code": int, "message"}}
 * with attribute values as JSON strings, booleans, integers, reals and
 * arrays. Where the JSON encoding breaks the proto3 mapping OTLP asks for
 * (an int64 as a number, an id that is not hex of the right length), the
 * request's "problems" say so. */
#pragma once

#include <glib.h>
#include <jansson.h>

typedef struct _OtlpReceiver OtlpReceiver;

/* Starts a receiver on a free port of 127.0.0.1, its thread serving it. */
OtlpReceiver *otlp_receiver_new     (void);
/* Stops it; a request being answered is finished first. */
void          otlp_receiver_free    (OtlpReceiver *receiver);

/* "http://127.0.0.1:PORT/v1/traces". */
const char   *otlp_receiver_get_url (OtlpReceiver *receiver);

/* The next request is answered with @status, the "Name: value" lines of
 * @headers (NULL: none) and @body (NULL: "{}" for JSON, empty for
 * protobuf; not decoded), instead of 200. Scripted answers are used in
 * order; then 200 again. */
void          otlp_receiver_script  (OtlpReceiver *receiver,
                                     guint         status,
                                     const char   *headers,
                                     const char   *body);

/* Whether request bodies are saved (body_path); they are by default. */
void          otlp_receiver_keep_bodies (OtlpReceiver *receiver,
                                         gboolean      keep);

/* With @held, requests are read and recorded but not answered until
 * called again without: a collector that takes its time. */
void          otlp_receiver_hold    (OtlpReceiver *receiver,
                                     gboolean      held);

/* Waits up to @timeout_ms for @n_spans spans to have arrived; FALSE if
 * they did not. */
gboolean      otlp_receiver_wait    (OtlpReceiver *receiver,
                                     guint         n_spans,
                                     guint         timeout_ms);

/* Every request so far (new reference): [{"status": answered,
 * "content_type", "content_encoding", "user_agent", "headers": {lower
 * name: value}, "resource": {key: value}, "scope": {"name", "version"},
 * "spans": [...], "problems": [...], "body_path": saved body}]. */
json_t       *otlp_receiver_requests (OtlpReceiver *receiver);

/* The spans of every request answered 2xx, in arrival order (new
 * reference). */
json_t       *otlp_receiver_spans   (OtlpReceiver *receiver);

/* A URL on 127.0.0.1 where nothing listens. */
char         *otlp_closed_url       (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OtlpReceiver, otlp_receiver_free)
