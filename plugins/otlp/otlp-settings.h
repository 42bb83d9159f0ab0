/* otlp — the exporter's settings, resolved as every OpenTelemetry SDK
 * resolves them: the handler's key, else the OTEL_* environment variable,
 * else the SDK default. */
#pragma once

#include <chime/plugin.h>

#include "otlp-span.h"

typedef struct {
  char           *endpoint;          /* the full URL POSTed to */
  gboolean        json;              /* http/json, else http/protobuf */
  gboolean        gzip;
  char          **headers;           /* "Name: value" lines, NULL-terminated */
  guint           timeout_ms;        /* one export, its retries included */
  guint           export_timeout_ms; /* the flush at shutdown */
  guint           max_queue_size;
  guint           max_export_batch_size;
  guint           schedule_delay_ms;
  gboolean        capture_content;
  OtlpAttributes *resource;          /* service.name, OTEL_RESOURCE_ATTRIBUTES, telemetry.sdk.* */
} OtlpSettings;

/* The keys of `[handler NAME]` with plugin = otlp. */
extern const ChimeConfigKey otlp_config_keys[];

/* The settings of @context's section and the environment; NULL with
 * @error naming the key or variable that is wrong. */
OtlpSettings *otlp_settings_new  (ChimeHandlerContext *context,
                                  GError             **error);
void          otlp_settings_free (OtlpSettings        *settings);

/* "k1=v1,k2=v2" as OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES
 * write it (values percent-decoded), into @pairs as key, value, key, ...;
 * FALSE with @error for a member without '='. @what names the source. */
gboolean      otlp_parse_pairs   (const char  *text,
                                  const char  *what,
                                  GPtrArray   *pairs,
                                  GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OtlpSettings, otlp_settings_free)
