/* otlp — the batch span processor (see otlp-processor.h). */
#include "otlp-processor.h"

#include "otlp-exporter.h"

struct _OtlpProcessor {
  GMainContext       *context;
  const OtlpSettings *settings;
  const OtlpOrigin   *origin;
  OtlpExporter       *exporter;
  GQueue              queue;        /* OtlpSpan, finished, oldest first */
  GSource            *timer;
  OtlpStats           stats;
  char               *last_failure;
  gboolean            shutting_down;
  /* Past the shutdown's deadline: nothing more is sent. */
  gboolean            stopped;
};

static void export_next (OtlpProcessor *self);

OtlpProcessor *
otlp_processor_new (GMainContext       *context,
                    const OtlpSettings *settings,
                    const OtlpOrigin   *origin)
{
  OtlpProcessor *self = g_new0 (OtlpProcessor, 1);

  self->context = g_main_context_ref (context);
  self->settings = settings;
  self->origin = origin;
  self->exporter = otlp_exporter_new (context, settings);
  g_queue_init (&self->queue);
  return self;
}

static void
stop_timer (OtlpProcessor *self)
{
  if (self->timer == NULL)
    return;
  g_source_destroy (self->timer);
  g_clear_pointer (&self->timer, g_source_unref);
}

static gboolean
on_timer (gpointer data)
{
  OtlpProcessor *self = data;

  g_clear_pointer (&self->timer, g_source_unref);
  export_next (self);
  return G_SOURCE_REMOVE;
}

/* The delay starts with the first span that waits, as the SDKs' does. */
static void
arm_timer (OtlpProcessor *self)
{
  if (self->timer != NULL || self->queue.length == 0)
    return;
  self->timer = g_timeout_source_new (self->settings->schedule_delay_ms);
  g_source_set_callback (self->timer, on_timer, self, NULL);
  g_source_attach (self->timer, self->context);
}

static void
on_exported (const OtlpExportOutcome *outcome,
             gpointer                 data)
{
  OtlpProcessor *self = data;

  self->stats.exported += outcome->accepted;
  self->stats.failed += outcome->rejected;
  if (outcome->failure != NULL)
    {
      g_free (self->last_failure);
      self->last_failure = g_strdup (outcome->failure);
    }
  if (self->stopped)
    return;
  /* A full batch (or, at shutdown, any span) goes at once; the rest waits. */
  if (self->queue.length >= self->settings->max_export_batch_size || self->shutting_down)
    export_next (self);
  else
    arm_timer (self);
}

/* Sends the oldest batch, unless an export is in flight (on_exported
 * sends the next). */
static void
export_next (OtlpProcessor *self)
{
  guint n = MIN (self->queue.length, self->settings->max_export_batch_size);
  g_autoptr (GPtrArray) batch = NULL;
  g_autoptr (GBytes) body = NULL;

  if (n == 0 || otlp_exporter_is_busy (self->exporter))
    return;
  stop_timer (self);
  batch = g_ptr_array_new_full (n, (GDestroyNotify) otlp_span_free);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (batch, g_queue_pop_head (&self->queue));
  body = self->settings->json
    ? otlp_encode_json (self->origin, (OtlpSpan * const *) batch->pdata, n)
    : otlp_encode_protobuf (self->origin, (OtlpSpan * const *) batch->pdata, n);
  /* The body holds everything the spans said: they can go now. */
  g_clear_pointer (&batch, g_ptr_array_unref);
  otlp_exporter_send (self->exporter, body, n, on_exported, self);
}

void
otlp_processor_add (OtlpProcessor *self,
                    OtlpSpan      *span)
{
  if (self->queue.length >= self->settings->max_queue_size)
    {
      self->stats.dropped++;
      otlp_span_free (span);
      return;
    }
  g_queue_push_tail (&self->queue, span);
  if (self->queue.length >= self->settings->max_export_batch_size)
    export_next (self);
  else
    arm_timer (self);
}

static gboolean
on_shutdown_deadline (gpointer data)
{
  gboolean *expired = data;

  *expired = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs @self's context until every span is out or the deadline passes.
 * The thread that shuts the runtime down normally owns the context (the
 * runner's main thread); when another thread runs it, that thread does
 * the work and this one waits. */
static void
drain (OtlpProcessor *self)
{
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (self->settings->export_timeout_ms);

  g_source_set_callback (deadline, on_shutdown_deadline, &expired, NULL);
  g_source_attach (deadline, self->context);
  while (!expired && (self->queue.length > 0 || otlp_exporter_is_busy (self->exporter)))
    {
      if (g_main_context_acquire (self->context))
        {
          g_main_context_iteration (self->context, TRUE);
          g_main_context_release (self->context);
        }
      else
        g_usleep (1000);
    }
  g_source_destroy (deadline);
  g_source_unref (deadline);
}

/* A cancelled transfer ends on the next iterations of the context; give
 * it those, briefly, so that its connection is closed before the handler
 * goes. */
static void
finish_cancelled (OtlpProcessor *self)
{
  gint64 deadline = g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND;

  while (otlp_exporter_is_busy (self->exporter) && g_get_monotonic_time () < deadline)
    {
      if (g_main_context_acquire (self->context))
        {
          g_main_context_iteration (self->context, FALSE);
          g_main_context_release (self->context);
        }
      g_usleep (1000);
    }
}

void
otlp_processor_shutdown (OtlpProcessor *self)
{
  g_autofree char *why = NULL;

  self->shutting_down = TRUE;
  stop_timer (self);
  export_next (self);
  drain (self);
  if (self->queue.length == 0 && !otlp_exporter_is_busy (self->exporter))
    return;
  why = g_strdup_printf ("the last exports did not end within export_timeout_ms %u",
                         self->settings->export_timeout_ms);
  self->stopped = TRUE;
  otlp_exporter_abort (self->exporter, why);
  finish_cancelled (self);
  /* What never left counts as failed too. */
  self->stats.failed += self->queue.length;
  g_queue_clear_full (&self->queue, (GDestroyNotify) otlp_span_free);
  g_free (self->last_failure);
  self->last_failure = g_steal_pointer (&why);
}

const OtlpStats *
otlp_processor_get_stats (OtlpProcessor *self)
{
  return &self->stats;
}

const char *
otlp_processor_get_last_failure (OtlpProcessor *self)
{
  return self->last_failure;
}

void
otlp_processor_free (OtlpProcessor *self)
{
  if (self == NULL)
    return;
  /* An export that the exporter's end aborts sends nothing more. */
  self->stopped = TRUE;
  stop_timer (self);
  g_queue_clear_full (&self->queue, (GDestroyNotify) otlp_span_free);
  otlp_exporter_free (self->exporter);
  g_free (self->last_failure);
  g_main_context_unref (self->context);
  g_free (self);
}
