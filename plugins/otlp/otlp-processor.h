/* otlp — the batch span processor, with the OpenTelemetry SDK's
 * semantics: finished spans wait in a bounded queue (max_queue_size; a
 * span that finds it full is dropped and counted, the run never waits);
 * a batch of max_export_batch_size leaves as soon as it is full, or
 * schedule_delay_ms after the first span waiting; one export is in
 * flight at a time. At shutdown everything queued is exported within
 * export_timeout_ms, and what could not be is counted. Main context
 * only. */
#pragma once

#include "otlp-encode.h"
#include "otlp-settings.h"

typedef struct _OtlpProcessor OtlpProcessor;

typedef struct {
  guint64 exported;
  guint64 dropped;   /* the queue was full */
  guint64 failed;    /* the export did not succeed, or did not end in time */
} OtlpStats;

OtlpProcessor *otlp_processor_new       (GMainContext       *context,
                                         const OtlpSettings *settings,
                                         const OtlpOrigin   *origin);
/* Takes @span, finished. */
void           otlp_processor_add       (OtlpProcessor      *processor,
                                         OtlpSpan           *span);
/* Exports everything queued, iterating the main context (from the thread
 * that can own it) until done or export_timeout_ms has passed. */
void           otlp_processor_shutdown  (OtlpProcessor      *processor);
const OtlpStats *otlp_processor_get_stats (OtlpProcessor    *processor);
/* Why the last failed export failed, or NULL. */
const char    *otlp_processor_get_last_failure (OtlpProcessor *processor);
void           otlp_processor_free      (OtlpProcessor      *processor);
