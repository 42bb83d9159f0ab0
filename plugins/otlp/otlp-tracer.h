/* otlp — runs into spans: one span per run, opened at its start event and
 * finished at its end or error event, with the GenAI semantic
 * conventions' attributes for models and tools.
 *
 * Ids are derived, not drawn, so that the same run always has the same
 * span: the trace id is the root run's id (16 bytes, a UUIDv7), a span id
 * is the last 8 bytes of its run's id (a UUIDv7's random part), and a
 * parent span id is its parent run's. */
#pragma once

#include <chime/plugin.h>

#include "otlp-span.h"

typedef struct _OtlpTracer OtlpTracer;

/* Receives each finished span (to own). */
typedef void (*OtlpSpanSink) (OtlpSpan *span,
                              gpointer  user_data);

OtlpTracer *otlp_tracer_new    (gboolean      capture_content,
                                OtlpSpanSink  sink,
                                gpointer      user_data);
void        otlp_tracer_handle (OtlpTracer   *tracer,
                                ChimeEvent   *event);
/* Finishes the spans of runs that never ended (status ERROR) and sends
 * them to the sink, then frees. */
void        otlp_tracer_free   (OtlpTracer   *tracer);

/* The trace id of @info's run tree and @info's span id. */
void        otlp_run_ids       (const ChimeRunInfo *info,
                                guint8              trace_id[16],
                                guint8              span_id[8]);
