/* Decoding what the otlp plugin sends (see otlp-decode.h). */
#include "otlp-decode.h"

#include "otlp-trace.pb-c.h"

#include <string.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

static json_t *
hex (const ProtobufCBinaryData *data)
{
  g_autoptr (GString) text = g_string_new (NULL);

  for (gsize i = 0; i < data->len; i++)
    g_string_append_printf (text, "%02x", data->data[i]);
  return json_string (text->str);
}

static json_t *pb_attributes (Chime__Otlp__V1__KeyValue **pairs, size_t n);

static json_t *
pb_value (const Chime__Otlp__V1__AnyValue *value)
{
  json_t *array;

  if (value == NULL)
    return json_null ();
  switch (value->value_case)
    {
    case CHIME__OTLP__V1__ANY_VALUE__VALUE_STRING_VALUE:
      return json_string (value->string_value);
    case CHIME__OTLP__V1__ANY_VALUE__VALUE_BOOL_VALUE:
      return json_boolean (value->bool_value);
    case CHIME__OTLP__V1__ANY_VALUE__VALUE_INT_VALUE:
      return json_integer (value->int_value);
    case CHIME__OTLP__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
      return json_real (value->double_value);
    case CHIME__OTLP__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
      array = json_array ();
      for (size_t i = 0; i < value->array_value->n_values; i++)
        json_array_append_new (array, pb_value (value->array_value->values[i]));
      return array;
    case CHIME__OTLP__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
      return pb_attributes (value->kvlist_value->values, value->kvlist_value->n_values);
    default:
      return json_null ();
    }
}

static json_t *
pb_attributes (Chime__Otlp__V1__KeyValue **pairs,
               size_t                      n)
{
  json_t *object = json_object ();

  for (size_t i = 0; i < n; i++)
    json_object_set_new (object, pairs[i]->key, pb_value (pairs[i]->value));
  return object;
}

static json_t *
pb_span (const Chime__Otlp__V1__Span *span)
{
  json_t *events = json_array ();

  for (size_t i = 0; i < span->n_events; i++)
    json_array_append_new (events, json_pack ("{s:s, s:I, s:o}", "name", span->events[i]->name,
                                              "time", (json_int_t) span->events[i]->time_unix_nano,
                                              "attributes", pb_attributes (span->events[i]->attributes,
                                                                           span->events[i]->n_attributes)));
  return json_pack ("{s:o, s:o, s:o, s:s, s:i, s:I, s:I, s:o, s:o, s:{s:i, s:s}}",
                    "traceId", hex (&span->trace_id), "spanId", hex (&span->span_id),
                    "parentSpanId", hex (&span->parent_span_id),
                    "name", span->name, "kind", (int) span->kind,
                    "start", (json_int_t) span->start_time_unix_nano,
                    "end", (json_int_t) span->end_time_unix_nano,
                    "attributes", pb_attributes (span->attributes, span->n_attributes),
                    "events", events,
                    "status", "code", span->status != NULL ? (int) span->status->code : 0,
                    "message", span->status != NULL ? span->status->message : "");
}

json_t *
otlp_decode_protobuf_request (GBytes  *body,
                              GError **error)
{
  gsize length;
  const guint8 *data = g_bytes_get_data (body, &length);
  Chime__Otlp__V1__ExportTraceServiceRequest *request =
    chime__otlp__v1__export_trace_service_request__unpack (NULL, length, data);
  json_t *result, *spans;

  if (request == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not an ExportTraceServiceRequest");
      return NULL;
    }
  spans = json_array ();
  result = json_pack ("{s:{}, s:{}, s:o, s:[]}", "resource", "scope", "spans", spans, "problems");
  for (size_t r = 0; r < request->n_resource_spans; r++)
    {
      Chime__Otlp__V1__ResourceSpans *resource_spans = request->resource_spans[r];

      if (resource_spans->resource != NULL)
        json_object_set_new (result, "resource", pb_attributes (resource_spans->resource->attributes,
                                                                resource_spans->resource->n_attributes));
      for (size_t s = 0; s < resource_spans->n_scope_spans; s++)
        {
          Chime__Otlp__V1__ScopeSpans *scope_spans = resource_spans->scope_spans[s];

          if (scope_spans->scope != NULL)
            json_object_set_new (result, "scope", json_pack ("{s:s, s:s, s:s}", "name", scope_spans->scope->name,
                                                             "version", scope_spans->scope->version,
                                                             "schemaUrl", scope_spans->schema_url));
          for (size_t i = 0; i < scope_spans->n_spans; i++)
            json_array_append_new (spans, pb_span (scope_spans->spans[i]));
        }
    }
  chime__otlp__v1__export_trace_service_request__free_unpacked (request, NULL);
  return result;
}

/* ------------------------------------------------------------------
 * JSON, checked against the mapping OTLP/JSON requires
 * ---------------------------------------------------------------- */

static void
problem (json_t     *problems,
         const char *format,
         ...) G_GNUC_PRINTF (2, 3);

static void
problem (json_t     *problems,
         const char *format,
         ...)
{
  va_list args;
  g_autofree char *text = NULL;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  json_array_append_new (problems, json_string (text));
}

/* A fixed64/int64: a decimal string, as the mapping writes it. */
static json_int_t
int64_field (json_t     *value,
             const char *what,
             json_t     *problems)
{
  if (json_is_string (value))
    return g_ascii_strtoll (json_string_value (value), NULL, 10);
  if (value != NULL)
    problem (problems, "%s is not a decimal string", what);
  return json_integer_value (value);
}

static json_t *
hex_field (json_t     *value,
           gsize       n_bytes,
           const char *what,
           json_t     *problems)
{
  const char *text = json_string_value (value);

  if (text == NULL || text[0] == '\0')
    return json_string ("");
  if (strlen (text) != 2 * n_bytes || strspn (text, "0123456789abcdefABCDEF") != 2 * n_bytes)
    problem (problems, "%s \"%s\" is not %" G_GSIZE_FORMAT " bytes of hex", what, text, n_bytes);
  {
    g_autofree char *lower = g_ascii_strdown (text, -1);

    return json_string (lower);
  }
}

static json_t *js_attributes (json_t *pairs, json_t *problems);

static json_t *
js_value (json_t *value,
          json_t *problems)
{
  json_t *member, *array;
  size_t i;

  if ((member = json_object_get (value, "stringValue")) != NULL)
    return json_incref (member);
  if ((member = json_object_get (value, "boolValue")) != NULL)
    return json_incref (member);
  if ((member = json_object_get (value, "intValue")) != NULL)
    return json_integer (int64_field (member, "intValue", problems));
  if ((member = json_object_get (value, "doubleValue")) != NULL)
    return json_real (json_number_value (member));
  if ((member = json_object_get (value, "arrayValue")) != NULL)
    {
      array = json_array ();
      json_array_foreach (json_object_get (member, "values"), i, value)
        json_array_append_new (array, js_value (value, problems));
      return array;
    }
  if ((member = json_object_get (value, "kvlistValue")) != NULL)
    return js_attributes (json_object_get (member, "values"), problems);
  return json_null ();
}

static json_t *
js_attributes (json_t *pairs,
               json_t *problems)
{
  json_t *object = json_object ();
  json_t *pair;
  size_t i;

  json_array_foreach (pairs, i, pair)
    json_object_set_new (object, json_string_value (json_object_get (pair, "key")),
                         js_value (json_object_get (pair, "value"), problems));
  return object;
}

static json_t *
js_span (json_t *span,
         json_t *problems)
{
  json_t *events = json_array ();
  json_t *status = json_object_get (span, "status");
  json_t *kind = json_object_get (span, "kind");
  json_t *code = json_object_get (status, "code");
  json_t *event;
  size_t i;

  if (kind != NULL && !json_is_integer (kind))
    problem (problems, "kind is not an integer");
  if (code != NULL && !json_is_integer (code))
    problem (problems, "status.code is not an integer");
  json_array_foreach (json_object_get (span, "events"), i, event)
    json_array_append_new (events, json_pack ("{s:O, s:I, s:o}", "name", json_object_get (event, "name"),
                                              "time", int64_field (json_object_get (event, "timeUnixNano"),
                                                                   "timeUnixNano", problems),
                                              "attributes", js_attributes (json_object_get (event, "attributes"),
                                                                           problems)));
  return json_pack ("{s:o, s:o, s:o, s:O, s:I, s:I, s:I, s:o, s:o, s:{s:I, s:s}}",
                    "traceId", hex_field (json_object_get (span, "traceId"), 16, "traceId", problems),
                    "spanId", hex_field (json_object_get (span, "spanId"), 8, "spanId", problems),
                    "parentSpanId", hex_field (json_object_get (span, "parentSpanId"), 8, "parentSpanId", problems),
                    "name", json_object_get (span, "name"),
                    "kind", json_integer_value (kind),
                    "start", int64_field (json_object_get (span, "startTimeUnixNano"), "startTimeUnixNano", problems),
                    "end", int64_field (json_object_get (span, "endTimeUnixNano"), "endTimeUnixNano", problems),
                    "attributes", js_attributes (json_object_get (span, "attributes"), problems),
                    "events", events,
                    "status", "code", json_integer_value (code),
                    "message", json_string_value (json_object_get (status, "message")) != NULL
                               ? json_string_value (json_object_get (status, "message")) : "");
}

json_t *
otlp_decode_json_request (GBytes  *body,
                          GError **error)
{
  gsize length;
  const char *data = g_bytes_get_data (body, &length);
  json_error_t json_error;
  g_autoptr (json_t) request = json_loadb (data, length, 0, &json_error);
  json_t *spans, *problems, *result, *resource_spans, *scope_spans, *span;
  size_t r, s, i;

  if (!json_is_object (request))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not a JSON object: %s", json_error.text);
      return NULL;
    }
  spans = json_array ();
  problems = json_array ();
  result = json_pack ("{s:{}, s:{}, s:o, s:o}", "resource", "scope", "spans", spans, "problems", problems);
  json_array_foreach (json_object_get (request, "resourceSpans"), r, resource_spans)
    {
      json_object_set_new (result, "resource",
                           js_attributes (json_object_get (json_object_get (resource_spans, "resource"), "attributes"),
                                          problems));
      json_array_foreach (json_object_get (resource_spans, "scopeSpans"), s, scope_spans)
        {
          json_t *scope = json_object_get (scope_spans, "scope");

          json_object_set_new (result, "scope", json_pack ("{s:O, s:O, s:O}", "name", json_object_get (scope, "name"),
                                                           "version", json_object_get (scope, "version"),
                                                           "schemaUrl", json_object_get (scope_spans, "schemaUrl")));
          json_array_foreach (json_object_get (scope_spans, "spans"), i, span)
            json_array_append_new (spans, js_span (span, problems));
        }
    }
  return result;
}
