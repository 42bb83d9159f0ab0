/* otlp — the http/protobuf encoding, with the protobuf-c code generated
 * from otlp-trace.proto: the messages are built pointing at the spans'
 * own strings and bytes, packed, then their shells freed. */
#include "otlp-encode.h"

#include "otlp-trace.pb-c.h"

#include <chime/event.h>
#include <string.h>

/* Every message and pointer array of one request, freed together. */
typedef struct {
  GPtrArray *blocks;
} Arena;

static gpointer
arena_alloc (Arena *arena,
             gsize  size)
{
  gpointer block = g_malloc0 (size);

  g_ptr_array_add (arena->blocks, block);
  return block;
}

#define ARENA_NEW(arena, Type, INIT) \
  ({ Type *m_ = arena_alloc ((arena), sizeof (Type)); Type init_ = INIT; *m_ = init_; m_; })

static Chime__Otlp__V1__AnyValue *
any_value (Arena               *arena,
           const OtlpAttribute *attribute)
{
  Chime__Otlp__V1__AnyValue *value = ARENA_NEW (arena, Chime__Otlp__V1__AnyValue,
                                                CHIME__OTLP__V1__ANY_VALUE__INIT);
  Chime__Otlp__V1__ArrayValue *array;
  guint n;

  switch (attribute->type)
    {
    case OTLP_VALUE_STRING:
      value->value_case = CHIME__OTLP__V1__ANY_VALUE__VALUE_STRING_VALUE;
      value->string_value = attribute->value.string;
      break;
    case OTLP_VALUE_BOOL:
      value->value_case = CHIME__OTLP__V1__ANY_VALUE__VALUE_BOOL_VALUE;
      value->bool_value = attribute->value.boolean;
      break;
    case OTLP_VALUE_INT:
      value->value_case = CHIME__OTLP__V1__ANY_VALUE__VALUE_INT_VALUE;
      value->int_value = attribute->value.integer;
      break;
    case OTLP_VALUE_DOUBLE:
      value->value_case = CHIME__OTLP__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
      value->double_value = attribute->value.number;
      break;
    case OTLP_VALUE_STRING_ARRAY:
      n = g_strv_length (attribute->value.strings);
      array = ARENA_NEW (arena, Chime__Otlp__V1__ArrayValue, CHIME__OTLP__V1__ARRAY_VALUE__INIT);
      array->n_values = n;
      array->values = arena_alloc (arena, MAX (n, 1) * sizeof (gpointer));
      for (guint i = 0; i < n; i++)
        {
          Chime__Otlp__V1__AnyValue *item = ARENA_NEW (arena, Chime__Otlp__V1__AnyValue,
                                                       CHIME__OTLP__V1__ANY_VALUE__INIT);

          item->value_case = CHIME__OTLP__V1__ANY_VALUE__VALUE_STRING_VALUE;
          item->string_value = attribute->value.strings[i];
          array->values[i] = item;
        }
      value->value_case = CHIME__OTLP__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
      value->array_value = array;
      break;
    }
  return value;
}

static Chime__Otlp__V1__KeyValue **
key_values (Arena          *arena,
            OtlpAttributes *attributes,
            size_t         *out_n)
{
  Chime__Otlp__V1__KeyValue **array = arena_alloc (arena, MAX (attributes->len, 1) * sizeof (gpointer));

  for (guint i = 0; i < attributes->len; i++)
    {
      const OtlpAttribute *attribute = &g_array_index (attributes, OtlpAttribute, i);
      Chime__Otlp__V1__KeyValue *pair = ARENA_NEW (arena, Chime__Otlp__V1__KeyValue,
                                                   CHIME__OTLP__V1__KEY_VALUE__INIT);

      pair->key = attribute->key;
      pair->value = any_value (arena, attribute);
      array[i] = pair;
    }
  *out_n = attributes->len;
  return array;
}

static ProtobufCBinaryData
binary (const guint8 *bytes,
        gsize         length)
{
  return (ProtobufCBinaryData) { .len = length, .data = (guint8 *) bytes };
}

static Chime__Otlp__V1__Span *
span_message (Arena    *arena,
              OtlpSpan *span)
{
  Chime__Otlp__V1__Span *message = ARENA_NEW (arena, Chime__Otlp__V1__Span, CHIME__OTLP__V1__SPAN__INIT);
  Chime__Otlp__V1__Status *status = ARENA_NEW (arena, Chime__Otlp__V1__Status, CHIME__OTLP__V1__STATUS__INIT);

  message->trace_id = binary (span->trace_id, sizeof span->trace_id);
  message->span_id = binary (span->span_id, sizeof span->span_id);
  if (span->has_parent)
    message->parent_span_id = binary (span->parent_span_id, sizeof span->parent_span_id);
  message->name = span->name;
  message->kind = span->kind;
  message->start_time_unix_nano = span->start_ns;
  message->end_time_unix_nano = span->end_ns;
  message->attributes = key_values (arena, span->attributes, &message->n_attributes);
  message->n_events = span->events->len;
  message->events = arena_alloc (arena, MAX (span->events->len, 1) * sizeof (gpointer));
  for (guint i = 0; i < span->events->len; i++)
    {
      OtlpSpanEvent *event = g_ptr_array_index (span->events, i);
      Chime__Otlp__V1__Span__Event *item = ARENA_NEW (arena, Chime__Otlp__V1__Span__Event,
                                                      CHIME__OTLP__V1__SPAN__EVENT__INIT);

      item->time_unix_nano = event->time_ns;
      item->name = event->name;
      item->attributes = key_values (arena, event->attributes, &item->n_attributes);
      message->events[i] = item;
    }
  status->code = span->status_code;
  if (span->status_message != NULL)
    status->message = span->status_message;
  message->status = status;
  return message;
}

GBytes *
otlp_encode_protobuf (const OtlpOrigin *origin,
                      OtlpSpan * const *spans,
                      guint             n_spans)
{
  Arena arena = { g_ptr_array_new_with_free_func (g_free) };
  Chime__Otlp__V1__ExportTraceServiceRequest request = CHIME__OTLP__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Chime__Otlp__V1__ResourceSpans resource_spans = CHIME__OTLP__V1__RESOURCE_SPANS__INIT;
  Chime__Otlp__V1__Resource resource = CHIME__OTLP__V1__RESOURCE__INIT;
  Chime__Otlp__V1__ScopeSpans scope_spans = CHIME__OTLP__V1__SCOPE_SPANS__INIT;
  Chime__Otlp__V1__InstrumentationScope scope = CHIME__OTLP__V1__INSTRUMENTATION_SCOPE__INIT;
  Chime__Otlp__V1__ResourceSpans *resource_spans_list[] = { &resource_spans };
  Chime__Otlp__V1__ScopeSpans *scope_spans_list[] = { &scope_spans };
  gsize size;
  guint8 *buffer;

  resource.attributes = key_values (&arena, origin->resource, &resource.n_attributes);
  scope.name = (char *) origin->scope_name;
  scope.version = (char *) origin->scope_version;
  scope_spans.scope = &scope;
  scope_spans.schema_url = (char *) origin->schema_url;
  scope_spans.n_spans = n_spans;
  scope_spans.spans = arena_alloc (&arena, MAX (n_spans, 1) * sizeof (gpointer));
  for (guint i = 0; i < n_spans; i++)
    scope_spans.spans[i] = span_message (&arena, spans[i]);
  resource_spans.resource = &resource;
  resource_spans.n_scope_spans = 1;
  resource_spans.scope_spans = scope_spans_list;
  request.n_resource_spans = 1;
  request.resource_spans = resource_spans_list;

  size = chime__otlp__v1__export_trace_service_request__get_packed_size (&request);
  buffer = g_malloc (MAX (size, 1));
  chime__otlp__v1__export_trace_service_request__pack (&request, buffer);
  g_ptr_array_unref (arena.blocks);
  return g_bytes_new_take (buffer, size);
}

static gint64
rejected_from_json (GBytes *body,
                    char  **out_message)
{
  gsize length;
  const char *data = g_bytes_get_data (body, &length);
  g_autoptr (json_t) json = json_loadb (data, length, 0, NULL);
  json_t *partial = json_object_get (json, "partialSuccess");
  json_t *rejected = json_object_get (partial, "rejectedSpans");
  const char *message = json_string_value (json_object_get (partial, "errorMessage"));
  gint64 count = 0;

  /* int64 arrives as a string, though a number must be accepted too. */
  if (json_is_string (rejected))
    count = g_ascii_strtoll (json_string_value (rejected), NULL, 10);
  else if (json_is_integer (rejected))
    count = json_integer_value (rejected);
  if (message != NULL && message[0] != '\0')
    *out_message = g_strdup (message);
  return count;
}

static gint64
rejected_from_protobuf (GBytes *body,
                        char  **out_message)
{
  gsize length;
  const guint8 *data = g_bytes_get_data (body, &length);
  Chime__Otlp__V1__ExportTraceServiceResponse *response =
    chime__otlp__v1__export_trace_service_response__unpack (NULL, length, data);
  gint64 count = 0;

  if (response == NULL)
    return 0;
  if (response->partial_success != NULL)
    {
      count = response->partial_success->rejected_spans;
      if (response->partial_success->error_message[0] != '\0')
        *out_message = g_strdup (response->partial_success->error_message);
    }
  chime__otlp__v1__export_trace_service_response__free_unpacked (response, NULL);
  return count;
}

gint64
otlp_decode_rejected (gboolean json,
                      GBytes  *body,
                      char   **out_message)
{
  *out_message = NULL;
  if (body == NULL || g_bytes_get_size (body) == 0)
    return 0;
  return json ? rejected_from_json (body, out_message) : rejected_from_protobuf (body, out_message);
}
