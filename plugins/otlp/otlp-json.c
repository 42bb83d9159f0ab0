/* otlp — the http/json encoding: the proto3 JSON mapping of
 * ExportTraceServiceRequest with OTLP's deviations (ids as hex, not
 * base64; enums as integers; 64-bit integers as decimal strings). */
#include "otlp-encode.h"

#include <chime/event.h>
#include <string.h>

static json_t *
hex_id (const guint8 *bytes,
        gsize         length)
{
  static const char digits[] = "0123456789abcdef";
  char text[33];

  for (gsize i = 0; i < length; i++)
    {
      text[2 * i] = digits[bytes[i] >> 4];
      text[2 * i + 1] = digits[bytes[i] & 0xf];
    }
  text[2 * length] = '\0';
  return json_string (text);
}

/* "1544712660000000000": fixed64 and int64 values are strings. */
static json_t *
int64_string (gint64 value)
{
  char text[24];

  g_snprintf (text, sizeof text, "%" G_GINT64_FORMAT, value);
  return json_string (text);
}

static json_t *
any_value (const OtlpAttribute *attribute)
{
  json_t *values;

  switch (attribute->type)
    {
    case OTLP_VALUE_STRING:
      return json_pack ("{s:s}", "stringValue", attribute->value.string);
    case OTLP_VALUE_BOOL:
      return json_pack ("{s:b}", "boolValue", attribute->value.boolean);
    case OTLP_VALUE_INT:
      return json_pack ("{s:o}", "intValue", int64_string (attribute->value.integer));
    case OTLP_VALUE_DOUBLE:
      return json_pack ("{s:f}", "doubleValue", attribute->value.number);
    case OTLP_VALUE_STRING_ARRAY:
      values = json_array ();
      for (guint i = 0; attribute->value.strings[i] != NULL; i++)
        json_array_append_new (values, json_pack ("{s:s}", "stringValue", attribute->value.strings[i]));
      return json_pack ("{s:{s:o}}", "arrayValue", "values", values);
    }
  g_return_val_if_reached (json_object ());
}

static json_t *
key_values (OtlpAttributes *attributes)
{
  json_t *array = json_array ();

  for (guint i = 0; i < attributes->len; i++)
    {
      const OtlpAttribute *attribute = &g_array_index (attributes, OtlpAttribute, i);

      json_array_append_new (array, json_pack ("{s:s, s:o}", "key", attribute->key,
                                               "value", any_value (attribute)));
    }
  return array;
}

static json_t *
span_events (OtlpSpan *span)
{
  json_t *array = json_array ();

  for (guint i = 0; i < span->events->len; i++)
    {
      OtlpSpanEvent *event = g_ptr_array_index (span->events, i);

      json_array_append_new (array, json_pack ("{s:o, s:s, s:o}",
                                               "timeUnixNano", int64_string (event->time_ns),
                                               "name", event->name,
                                               "attributes", key_values (event->attributes)));
    }
  return array;
}

static json_t *
span_json (OtlpSpan *span)
{
  json_t *json = json_pack ("{s:o, s:o, s:s, s:i, s:o, s:o, s:o, s:o, s:{}}",
                            "traceId", hex_id (span->trace_id, sizeof span->trace_id),
                            "spanId", hex_id (span->span_id, sizeof span->span_id),
                            "name", span->name,
                            "kind", (int) span->kind,
                            "startTimeUnixNano", int64_string (span->start_ns),
                            "endTimeUnixNano", int64_string (span->end_ns),
                            "attributes", key_values (span->attributes),
                            "events", span_events (span),
                            "status");
  json_t *status = json_object_get (json, "status");

  if (span->has_parent)
    json_object_set_new (json, "parentSpanId", hex_id (span->parent_span_id, sizeof span->parent_span_id));
  /* UNSET is the absent code; an error says so, with its message. */
  if (span->status_code != OTLP_STATUS_UNSET)
    json_object_set_new (status, "code", json_integer (span->status_code));
  if (span->status_message != NULL)
    json_object_set_new (status, "message", json_string (span->status_message));
  return json;
}

GBytes *
otlp_encode_json (const OtlpOrigin *origin,
                  OtlpSpan * const *spans,
                  guint             n_spans)
{
  g_autoptr (json_t) request = NULL;
  json_t *array = json_array ();
  char *text;

  for (guint i = 0; i < n_spans; i++)
    json_array_append_new (array, span_json (spans[i]));
  request = json_pack ("{s:[{s:{s:o}, s:[{s:{s:s, s:s}, s:o, s:s}]}]}",
                       "resourceSpans",
                       "resource", "attributes", key_values (origin->resource),
                       "scopeSpans",
                       "scope", "name", origin->scope_name, "version", origin->scope_version,
                       "spans", array,
                       "schemaUrl", origin->schema_url);
  text = json_dumps (request, JSON_COMPACT | JSON_REAL_PRECISION (17));
  return g_bytes_new_with_free_func (text, strlen (text), free, text);
}
