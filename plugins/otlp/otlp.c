/* otlp — every run as an OpenTelemetry span, exported over OTLP/HTTP to
 * any collector (the OpenTelemetry Collector, Jaeger, Tempo, Phoenix,
 * Langfuse...).
 *
 *   [handler otlp]
 *   plugin = otlp
 *   endpoint = http://localhost:4318/v1/traces
 *
 * One span per run (chains, chat models, tools, retrievers), parented as
 * the runs are, one trace per root run; models and tools carry the GenAI
 * semantic conventions' attributes (otlp-genai.c). Spans are batched and
 * exported from the main loop, as the OpenTelemetry SDK's batch span
 * processor does (otlp-processor.c): a collector that is slow or down
 * never slows a run, and the end of the run says how many spans were
 * exported, dropped and failed. Settings follow the OTEL_* environment
 * variables (otlp-settings.c); docs/plugins.md has them all.
 *
 * Entry points complete at once: a span is built in memory and queued,
 * and the handler's events never wait for the network. The exports left
 * at shutdown are finished in instance_free, within export_timeout_ms. */
#include <chime/plugin.h>

#include "otlp-encode.h"
#include "otlp-genai.h"
#include "otlp-processor.h"
#include "otlp-settings.h"
#include "otlp-tracer.h"

typedef struct {
  ChimeHandlerContext *context;
  OtlpSettings        *settings;
  OtlpOrigin           origin;
  OtlpProcessor       *processor;
  OtlpTracer          *tracer;
} OtlpHandler;

static void
queue_span (OtlpSpan *span,
            gpointer  data)
{
  OtlpHandler *self = data;

  otlp_processor_add (self->processor, span);
}

static gpointer
otlp_handler_new (ChimeHandlerContext *context,
                  GError             **error)
{
  g_autoptr (OtlpSettings) settings = otlp_settings_new (context, error);
  OtlpHandler *self;

  if (settings == NULL)
    return NULL;
  self = g_new0 (OtlpHandler, 1);
  self->context = context;
  self->settings = g_steal_pointer (&settings);
  self->origin = (OtlpOrigin) {
    .resource = self->settings->resource,
    .scope_name = "chime.otlp",
    .scope_version = CHIME_VERSION_STRING,
    .schema_url = OTLP_SCHEMA_URL,
  };
  self->processor = otlp_processor_new (chime_handler_context_get_main_context (context),
                                        self->settings, &self->origin);
  self->tracer = otlp_tracer_new (self->settings->capture_content, queue_span, self);
  return self;
}

/* The end-of-run report, one line on stderr; none when no run was seen
 * (`chime check` starts and stops every handler). */
static void
report (OtlpHandler *self)
{
  const OtlpStats *stats = otlp_processor_get_stats (self->processor);
  const char *failure = otlp_processor_get_last_failure (self->processor);

  if (stats->exported + stats->dropped + stats->failed == 0)
    return;
  chime_handler_log (self->context, G_LOG_LEVEL_MESSAGE,
                     "%" G_GUINT64_FORMAT " spans exported, %" G_GUINT64_FORMAT " dropped (queue full, "
                     "max_queue_size %u), %" G_GUINT64_FORMAT " failed%s%s",
                     stats->exported, stats->dropped, self->settings->max_queue_size, stats->failed,
                     failure != NULL ? ": " : "", failure != NULL ? failure : "");
}

static void
otlp_handler_free (gpointer instance)
{
  OtlpHandler *self = instance;

  /* Runs that never ended still become spans, marked as such. */
  g_clear_pointer (&self->tracer, otlp_tracer_free);
  otlp_processor_shutdown (self->processor);
  report (self);
  otlp_processor_free (self->processor);
  otlp_settings_free (self->settings);
  g_free (self);
}

static void
otlp_on_event (gpointer         instance,
               ChimeEvent      *event,
               ChimeCompletion *completion)
{
  OtlpHandler *self = instance;

  otlp_tracer_handle (self->tracer, event);
  chime_completion_complete (completion);
}

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "otlp",
  .description = "exports every run as an OpenTelemetry span over OTLP/HTTP",
  .version = CHIME_VERSION_STRING,
  .config_keys = otlp_config_keys,
  .instance_new = otlp_handler_new,
  .instance_free = otlp_handler_free,
  .on_event = otlp_on_event,
);
