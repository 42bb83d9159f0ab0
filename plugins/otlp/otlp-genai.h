/* otlp — the OpenTelemetry GenAI semantic conventions (semconv 1.37+,
 * Development status): what a model's or a tool's events say, as span
 * attributes. Read from what chime's events carry today: the invocation
 * params (model, temperature, max_tokens, stop, base_url), LangChain's
 * ls_* metadata when present, and the LLMResult. */
#pragma once

#include <chime/plugin.h>

#include "otlp-span.h"

/* The semconv version the attributes follow (the scope's schema URL). */
#define OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.37.0"

/* At a start event: the span's name, kind and request attributes. */
void otlp_genai_start (OtlpSpan   *span,
                       ChimeEvent *event,
                       gboolean    capture_content);
/* At an end or error event: response and usage attributes. */
void otlp_genai_end   (OtlpSpan   *span,
                       ChimeEvent *event,
                       gboolean    capture_content);
/* At an error event: status ERROR, error.type, an `exception` event. */
void otlp_genai_error (OtlpSpan   *span,
                       ChimeEvent *event);
/* A retry: a span event, not an error. */
void otlp_genai_retry (OtlpSpan   *span,
                       ChimeEvent *event);
