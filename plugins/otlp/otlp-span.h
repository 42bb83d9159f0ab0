/* otlp — a span as the plugin keeps it between a run's start and its
 * export: what OTLP's Span message holds, independent of the encoding
 * (otlp-json.c and otlp-protobuf.c write it). */
#pragma once

#include <glib.h>

/* Span.SpanKind and Status.StatusCode, as OTLP numbers them. */
#define OTLP_SPAN_KIND_INTERNAL 1
#define OTLP_SPAN_KIND_CLIENT   3
#define OTLP_STATUS_UNSET 0
#define OTLP_STATUS_ERROR 2

typedef enum {
  OTLP_VALUE_STRING,
  OTLP_VALUE_BOOL,
  OTLP_VALUE_INT,
  OTLP_VALUE_DOUBLE,
  OTLP_VALUE_STRING_ARRAY,
} OtlpValueType;

typedef struct {
  char          *key;
  OtlpValueType  type;
  union {
    char     *string;
    gboolean  boolean;
    gint64    integer;
    gdouble   number;
    char    **strings;
  } value;
} OtlpAttribute;

/* A list of attributes; keys are unique (setting a key again replaces
 * its value), as OTLP requires. */
typedef GArray OtlpAttributes;

typedef struct {
  gint64          time_ns;
  char           *name;
  OtlpAttributes *attributes;
} OtlpSpanEvent;

typedef struct {
  guint8          trace_id[16];
  guint8          span_id[8];
  guint8          parent_span_id[8];
  gboolean        has_parent;
  char           *name;
  guint           kind;
  gint64          start_ns;
  gint64          end_ns;
  OtlpAttributes *attributes;
  GPtrArray      *events;        /* OtlpSpanEvent */
  guint           status_code;
  char           *status_message;
} OtlpSpan;

OtlpAttributes *otlp_attributes_new        (void);
void            otlp_attributes_free       (OtlpAttributes *attributes);
void            otlp_attributes_set_string (OtlpAttributes *attributes,
                                            const char     *key,
                                            const char     *value);
void            otlp_attributes_set_bool   (OtlpAttributes *attributes,
                                            const char     *key,
                                            gboolean        value);
void            otlp_attributes_set_int    (OtlpAttributes *attributes,
                                            const char     *key,
                                            gint64          value);
void            otlp_attributes_set_double (OtlpAttributes *attributes,
                                            const char     *key,
                                            gdouble         value);
/* Copies @values (NULL-terminated). */
void            otlp_attributes_set_strv   (OtlpAttributes     *attributes,
                                            const char         *key,
                                            const char * const *values);
/* The attribute named @key, or NULL. */
const OtlpAttribute *otlp_attributes_lookup (OtlpAttributes *attributes,
                                             const char     *key);

OtlpSpan      *otlp_span_new       (void);
void           otlp_span_free      (OtlpSpan   *span);
/* Adds an event named @name at @time_ns; returns its attributes to fill. */
OtlpAttributes *otlp_span_add_event (OtlpSpan   *span,
                                     gint64      time_ns,
                                     const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OtlpSpan, otlp_span_free)
