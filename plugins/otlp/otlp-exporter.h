/* otlp — one OTLP/HTTP export at a time, with the retries the OTLP
 * specification allows: 429, 502, 503, 504 and connection failures, with
 * exponential backoff and jitter or the collector's Retry-After, within
 * the export's timeout. Runs on the handler's main context. */
#pragma once

#include "otlp-settings.h"

typedef struct _OtlpExporter OtlpExporter;

/* How an export ended. @rejected of the spans were refused (a partial
 * success, a status that is not retried, or giving up); @failure says why
 * when @rejected > 0. */
typedef struct {
  guint64     accepted;
  guint64     rejected;
  const char *failure;
} OtlpExportOutcome;

typedef void (*OtlpExportDone) (const OtlpExportOutcome *outcome,
                                gpointer                 user_data);

OtlpExporter *otlp_exporter_new    (GMainContext       *context,
                                    const OtlpSettings *settings);
/* Aborts the export in progress; the memory goes once the main context
 * has run the cancelled transfer's end. */
void          otlp_exporter_free   (OtlpExporter       *exporter);
/* TRUE while an export is in progress or a cancelled one still ending. */
gboolean      otlp_exporter_is_busy (OtlpExporter      *exporter);

/* POSTs @body, the encoding of @n_spans spans, and calls @done once, on
 * the main context, never from within this call. Only one at a time. */
void          otlp_exporter_send   (OtlpExporter       *exporter,
                                    GBytes             *body,
                                    guint               n_spans,
                                    OtlpExportDone      done,
                                    gpointer            user_data);

/* Ends the export in progress now, as a failure saying @why. */
void          otlp_exporter_abort  (OtlpExporter       *exporter,
                                    const char         *why);

/* Seconds a Retry-After value asks for (delta-seconds or an HTTP-date),
 * or -1 when it is neither. */
gdouble       otlp_parse_retry_after (const char *value,
                                      GDateTime  *now);
