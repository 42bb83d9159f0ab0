/* The receiver's decoders (tests/otlp-receiver.h): an
 * ExportTraceServiceRequest, protobuf or JSON, into the receiver's one
 * shape {"resource", "scope", "spans", "problems"}. */
#pragma once

#include <gio/gio.h>
#include <jansson.h>

/* NULL with @error when @body does not decode at all. */
json_t *otlp_decode_protobuf_request (GBytes  *body,
                                      GError **error);
json_t *otlp_decode_json_request     (GBytes  *body,
                                      GError **error);
