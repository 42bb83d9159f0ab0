/* otlp — an ExportTraceServiceRequest from spans, in either OTLP/HTTP
 * encoding: http/json (otlp-json.c, the proto3 JSON mapping with OTLP's
 * hex ids) and http/protobuf (otlp-protobuf.c, protobuf-c code generated
 * from otlp-trace.proto). */
#pragma once

#include "otlp-span.h"

/* What every request says besides its spans: one resource, one scope. */
typedef struct {
  OtlpAttributes *resource;
  const char     *scope_name;
  const char     *scope_version;
  const char     *schema_url;
} OtlpOrigin;

/* The request carrying @spans[0..n_spans), as http/json. */
GBytes *otlp_encode_json     (const OtlpOrigin *origin,
                              OtlpSpan * const *spans,
                              guint             n_spans);

/* The same as http/protobuf. */
GBytes *otlp_encode_protobuf (const OtlpOrigin *origin,
                              OtlpSpan * const *spans,
                              guint             n_spans);

/* How many spans an ExportTraceServiceResponse (@body, either encoding)
 * says were rejected, and its message: a partial success. 0 for a full
 * success, an empty body, or a body that does not parse (the export was
 * accepted: its status said so). */
gint64  otlp_decode_rejected (gboolean          json,
                              GBytes           *body,
                              char            **out_message);
