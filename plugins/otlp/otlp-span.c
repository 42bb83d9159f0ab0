/* otlp — spans and their attributes (see otlp-span.h). */
#include "otlp-span.h"

#include <string.h>

static void
attribute_clear (gpointer data)
{
  OtlpAttribute *attribute = data;

  g_free (attribute->key);
  if (attribute->type == OTLP_VALUE_STRING)
    g_free (attribute->value.string);
  else if (attribute->type == OTLP_VALUE_STRING_ARRAY)
    g_strfreev (attribute->value.strings);
}

OtlpAttributes *
otlp_attributes_new (void)
{
  GArray *array = g_array_new (FALSE, TRUE, sizeof (OtlpAttribute));

  g_array_set_clear_func (array, attribute_clear);
  return array;
}

void
otlp_attributes_free (OtlpAttributes *attributes)
{
  if (attributes != NULL)
    g_array_unref (attributes);
}

const OtlpAttribute *
otlp_attributes_lookup (OtlpAttributes *attributes,
                        const char     *key)
{
  for (guint i = 0; i < attributes->len; i++)
    {
      const OtlpAttribute *attribute = &g_array_index (attributes, OtlpAttribute, i);

      if (strcmp (attribute->key, key) == 0)
        return attribute;
    }
  return NULL;
}

/* The slot for @key, emptied of its old value, or a new one: keys stay
 * unique. */
static OtlpAttribute *
attribute_slot (OtlpAttributes *attributes,
                const char     *key,
                OtlpValueType   type)
{
  OtlpAttribute *attribute = (OtlpAttribute *) otlp_attributes_lookup (attributes, key);
  OtlpAttribute fresh = { 0 };

  if (attribute != NULL)
    {
      char *kept_key = g_steal_pointer (&attribute->key);

      attribute_clear (attribute);
      memset (attribute, 0, sizeof *attribute);
      attribute->key = kept_key;
    }
  else
    {
      fresh.key = g_strdup (key);
      g_array_append_val (attributes, fresh);
      attribute = &g_array_index (attributes, OtlpAttribute, attributes->len - 1);
    }
  attribute->type = type;
  return attribute;
}

void
otlp_attributes_set_string (OtlpAttributes *attributes,
                            const char     *key,
                            const char     *value)
{
  attribute_slot (attributes, key, OTLP_VALUE_STRING)->value.string = g_strdup (value);
}

void
otlp_attributes_set_bool (OtlpAttributes *attributes,
                          const char     *key,
                          gboolean        value)
{
  attribute_slot (attributes, key, OTLP_VALUE_BOOL)->value.boolean = value;
}

void
otlp_attributes_set_int (OtlpAttributes *attributes,
                         const char     *key,
                         gint64          value)
{
  attribute_slot (attributes, key, OTLP_VALUE_INT)->value.integer = value;
}

void
otlp_attributes_set_double (OtlpAttributes *attributes,
                            const char     *key,
                            gdouble         value)
{
  attribute_slot (attributes, key, OTLP_VALUE_DOUBLE)->value.number = value;
}

void
otlp_attributes_set_strv (OtlpAttributes     *attributes,
                          const char         *key,
                          const char * const *values)
{
  attribute_slot (attributes, key, OTLP_VALUE_STRING_ARRAY)->value.strings =
    g_strdupv ((char **) values);
}

static void
span_event_free (gpointer data)
{
  OtlpSpanEvent *event = data;

  g_free (event->name);
  otlp_attributes_free (event->attributes);
  g_free (event);
}

OtlpSpan *
otlp_span_new (void)
{
  OtlpSpan *span = g_new0 (OtlpSpan, 1);

  span->attributes = otlp_attributes_new ();
  span->events = g_ptr_array_new_with_free_func (span_event_free);
  span->kind = OTLP_SPAN_KIND_INTERNAL;
  return span;
}

void
otlp_span_free (OtlpSpan *span)
{
  if (span == NULL)
    return;
  g_free (span->name);
  otlp_attributes_free (span->attributes);
  g_ptr_array_unref (span->events);
  g_free (span->status_message);
  g_free (span);
}

OtlpAttributes *
otlp_span_add_event (OtlpSpan   *span,
                     gint64      time_ns,
                     const char *name)
{
  OtlpSpanEvent *event = g_new0 (OtlpSpanEvent, 1);

  event->time_ns = time_ns;
  event->name = g_strdup (name);
  event->attributes = otlp_attributes_new ();
  g_ptr_array_add (span->events, event);
  return event->attributes;
}
