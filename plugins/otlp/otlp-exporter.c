/* otlp — the HTTP side of an export (see otlp-exporter.h). */
#include "otlp-exporter.h"

#include "otlp-encode.h"

#include <chime/http.h>
#include <stdio.h>
#include <string.h>

/* A collector's answer is small ({} or a partial success); more is not
 * read. */
#define MAX_RESPONSE_BYTES (64 * 1024)
#define INITIAL_BACKOFF_S 0.5
#define MAX_BACKOFF_S 5.0

struct _OtlpExporter {
  GMainContext       *context;
  const OtlpSettings *settings;
  char              **headers;

  /* The export in progress. */
  GBytes             *body;
  guint               n_spans;
  OtlpExportDone      done;
  gpointer            done_data;
  gint64              deadline_us;
  guint               attempts;
  ChimeHttpTransfer  *transfer;
  GString            *response;
  GSource            *retry_source;
  GSource            *deadline_source;
  char               *last_problem;
  /* Transfers cancelled whose on_done is still to come: the exporter
   * outlives them (free_when_idle). */
  guint               n_cancelled;
  gboolean            free_when_idle;
};

static void start_attempt (OtlpExporter *self);

static char **
request_headers (const OtlpSettings *settings)
{
  GPtrArray *lines = g_ptr_array_new ();

  g_ptr_array_add (lines, g_strdup (settings->json ? "Content-Type: application/json"
                                                   : "Content-Type: application/x-protobuf"));
  g_ptr_array_add (lines, g_strdup ("User-Agent: chime-otlp/" CHIME_VERSION_STRING " (C)"));
  if (settings->gzip)
    g_ptr_array_add (lines, g_strdup ("Content-Encoding: gzip"));
  for (guint i = 0; settings->headers[i] != NULL; i++)
    g_ptr_array_add (lines, g_strdup (settings->headers[i]));
  g_ptr_array_add (lines, NULL);
  return (char **) g_ptr_array_free (lines, FALSE);
}

OtlpExporter *
otlp_exporter_new (GMainContext       *context,
                   const OtlpSettings *settings)
{
  OtlpExporter *self = g_new0 (OtlpExporter, 1);

  self->context = g_main_context_ref (context);
  self->settings = settings;
  self->headers = request_headers (settings);
  return self;
}

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

/* Calls the export's callback once and forgets the export. */
static void
finish (OtlpExporter *self,
        guint64       rejected,
        const char   *failure)
{
  OtlpExportOutcome outcome = { .accepted = self->n_spans - MIN (rejected, self->n_spans),
                                .rejected = MIN (rejected, self->n_spans),
                                .failure = failure };
  OtlpExportDone done = self->done;

  clear_source (&self->retry_source);
  clear_source (&self->deadline_source);
  g_clear_pointer (&self->body, g_bytes_unref);
  self->done = NULL;
  done (&outcome, self->done_data);
  g_clear_pointer (&self->last_problem, g_free);
}

static void
exporter_destroy (OtlpExporter *exporter)
{
  clear_source (&exporter->retry_source);
  clear_source (&exporter->deadline_source);
  g_clear_pointer (&exporter->body, g_bytes_unref);
  if (exporter->response != NULL)
    g_string_free (exporter->response, TRUE);
  g_free (exporter->last_problem);
  g_strfreev (exporter->headers);
  g_main_context_unref (exporter->context);
  g_free (exporter);
}

void
otlp_exporter_free (OtlpExporter *exporter)
{
  if (exporter == NULL)
    return;
  otlp_exporter_abort (exporter, "the exporter stopped");
  if (exporter->n_cancelled > 0)
    exporter->free_when_idle = TRUE;
  else
    exporter_destroy (exporter);
}

gboolean
otlp_exporter_is_busy (OtlpExporter *exporter)
{
  return exporter->done != NULL || exporter->n_cancelled > 0;
}

gdouble
otlp_parse_retry_after (const char *value,
                        GDateTime  *now)
{
  static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  guint64 seconds;
  char weekday[4], month[4];
  int day, year, hour, minute, second;
  g_autoptr (GDateTime) when = NULL;

  if (value == NULL)
    return -1;
  if (g_ascii_string_to_unsigned (value, 10, 0, 24 * 3600, &seconds, NULL))
    return seconds;
  /* IMF-fixdate, the HTTP-date senders must use: "Sun, 06 Nov 1994 08:49:37 GMT". */
  if (sscanf (value, "%3s, %d %3s %d %d:%d:%d GMT", weekday, &day, month, &year, &hour, &minute, &second) != 7)
    return -1;
  for (guint i = 0; i < G_N_ELEMENTS (months); i++)
    if (strcmp (month, months[i]) == 0)
      when = g_date_time_new_utc (year, i + 1, day, hour, minute, second);
  if (when == NULL)
    return -1;
  return MAX (0.0, g_date_time_difference (when, now) / (gdouble) G_TIME_SPAN_SECOND);
}

static gboolean
status_is_retryable (guint status)
{
  return status == 429 || status == 502 || status == 503 || status == 504;
}

static gboolean
error_is_retryable (const GError *error)
{
  return g_error_matches (error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CONNECT) ||
         g_error_matches (error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CONNECT_TIMEOUT) ||
         g_error_matches (error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_IDLE_TIMEOUT) ||
         g_error_matches (error, CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_FAILED);
}

static gboolean
on_retry (gpointer data)
{
  OtlpExporter *self = data;

  g_clear_pointer (&self->retry_source, g_source_unref);
  start_attempt (self);
  return G_SOURCE_REMOVE;
}

/* Tries again after @delay_s, or gives up when that is past the export's
 * deadline. */
static void
retry_or_give_up (OtlpExporter *self,
                  gdouble       delay_s)
{
  g_autofree char *failure = NULL;

  if (delay_s < 0)
    {
      /* Backoff with jitter: the multiplier is in (0.75, 1]. */
      delay_s = MIN (INITIAL_BACKOFF_S * (1u << MIN (self->attempts - 1, 10u)), MAX_BACKOFF_S);
      delay_s *= 1.0 - 0.25 * g_random_double ();
    }
  if (g_get_monotonic_time () + (gint64) (delay_s * G_USEC_PER_SEC) >= self->deadline_us)
    {
      failure = g_strdup_printf ("%s (gave up after %u attempts within timeout %u ms)",
                                 self->last_problem, self->attempts, self->settings->timeout_ms);
      finish (self, self->n_spans, failure);
      return;
    }
  self->retry_source = g_timeout_source_new ((guint) (delay_s * 1000));
  g_source_set_callback (self->retry_source, on_retry, self, NULL);
  g_source_attach (self->retry_source, self->context);
}

static void
on_response (ChimeHttpTransfer *transfer,
             guint              status,
             gpointer           data)
{
  OtlpExporter *self = data;

  g_string_truncate (self->response, 0);
}

static gboolean
on_data (ChimeHttpTransfer *transfer,
         const char        *bytes,
         gsize              length,
         gsize             *consumed,
         gpointer           data)
{
  OtlpExporter *self = data;

  if (self->response->len < MAX_RESPONSE_BYTES)
    g_string_append_len (self->response, bytes, MIN (length, MAX_RESPONSE_BYTES - self->response->len));
  *consumed = length;
  return TRUE;
}

/* The answer of a 2xx: the spans the collector says it rejected. */
static void
accept_response (OtlpExporter *self)
{
  g_autoptr (GBytes) body = g_bytes_new (self->response->str, self->response->len);
  g_autofree char *message = NULL;
  g_autofree char *failure = NULL;
  gint64 rejected = otlp_decode_rejected (self->settings->json, body, &message);

  if (rejected > 0)
    failure = g_strdup_printf ("the collector rejected %" G_GINT64_FORMAT " spans: %s", rejected,
                               message != NULL ? message : "(no message)");
  /* A partial success is final: retrying would send the accepted spans twice. */
  finish (self, MAX (rejected, 0), failure);
}

static void
on_done (ChimeHttpTransfer *transfer,
         const GError      *error,
         gpointer           data)
{
  OtlpExporter *self = data;
  guint status = chime_http_transfer_get_status (transfer);
  const char *retry_after = error == NULL ? chime_http_transfer_get_header (transfer, "Retry-After") : NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  gdouble delay = otlp_parse_retry_after (retry_after, now);
  g_autofree char *excerpt = NULL;

  if (transfer != self->transfer)
    {
      /* Cancelled by otlp_exporter_abort(), whose export is over. */
      if (--self->n_cancelled == 0 && self->free_when_idle)
        exporter_destroy (self);
      return;
    }
  self->transfer = NULL;
  g_free (self->last_problem);
  if (error != NULL)
    {
      self->last_problem = g_strdup_printf ("cannot reach %s: %s", self->settings->endpoint, error->message);
      if (error_is_retryable (error))
        retry_or_give_up (self, -1);
      else
        finish (self, self->n_spans, self->last_problem);
      return;
    }
  if (status >= 200 && status < 300)
    {
      self->last_problem = NULL;
      accept_response (self);
      return;
    }
  excerpt = g_utf8_make_valid (self->response->str, MIN (self->response->len, 200));
  self->last_problem = g_strdup_printf ("the collector at %s answered HTTP %u: %s",
                                        self->settings->endpoint, status, excerpt);
  if (status_is_retryable (status))
    retry_or_give_up (self, delay);
  else
    finish (self, self->n_spans, self->last_problem);
}

static void
start_attempt (OtlpExporter *self)
{
  static const ChimeHttpCallbacks callbacks = { on_response, on_data, on_done };
  gdouble remaining_s = (self->deadline_us - g_get_monotonic_time ()) / (gdouble) G_USEC_PER_SEC;
  gsize length;
  const char *bytes = g_bytes_get_data (self->body, &length);
  ChimeHttpRequest request = {
    .url = self->settings->endpoint,
    .headers = (const char * const *) self->headers,
    .body = bytes,
    .body_length = length,
    .connect_timeout_s = MAX (remaining_s, 0.001),
    .idle_timeout_s = MAX (remaining_s, 0.001),
  };

  self->attempts++;
  if (self->response == NULL)
    self->response = g_string_new (NULL);
  g_string_truncate (self->response, 0);
  self->transfer = chime_http_transfer_start (self->context, &request, &callbacks, self);
}

static gboolean
on_deadline (gpointer data)
{
  OtlpExporter *self = data;
  g_autofree char *why = g_strdup_printf ("the export took longer than timeout %u ms%s%s",
                                          self->settings->timeout_ms,
                                          self->last_problem != NULL ? "; last: " : "",
                                          self->last_problem != NULL ? self->last_problem : "");

  g_clear_pointer (&self->deadline_source, g_source_unref);
  otlp_exporter_abort (self, why);
  return G_SOURCE_REMOVE;
}

static GBytes *
gzip_bytes (GBytes *body)
{
  g_autoptr (GZlibCompressor) compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, -1);
  g_autoptr (GInputStream) plain = g_memory_input_stream_new_from_bytes (body);
  g_autoptr (GInputStream) packed = g_converter_input_stream_new (plain, G_CONVERTER (compressor));
  g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();

  /* Memory to memory: neither stream can fail but by running out of it. */
  g_output_stream_splice (out, packed, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

void
otlp_exporter_send (OtlpExporter  *self,
                    GBytes        *body,
                    guint          n_spans,
                    OtlpExportDone done,
                    gpointer       user_data)
{
  g_return_if_fail (self->done == NULL);
  self->body = self->settings->gzip ? gzip_bytes (body) : g_bytes_ref (body);
  self->n_spans = n_spans;
  self->done = done;
  self->done_data = user_data;
  self->attempts = 0;
  self->deadline_us = g_get_monotonic_time () + (gint64) self->settings->timeout_ms * 1000;
  self->deadline_source = g_timeout_source_new (self->settings->timeout_ms);
  g_source_set_callback (self->deadline_source, on_deadline, self, NULL);
  g_source_attach (self->deadline_source, self->context);
  start_attempt (self);
}

void
otlp_exporter_abort (OtlpExporter *self,
                     const char   *why)
{
  g_autofree char *failure = g_strdup (why);

  if (self->done == NULL)
    return;
  if (self->transfer != NULL)
    {
      /* on_done follows with CANCELLED; the export is over now. */
      ChimeHttpTransfer *transfer = g_steal_pointer (&self->transfer);

      self->n_cancelled++;
      chime_http_transfer_cancel (transfer);
    }
  finish (self, self->n_spans, failure);
}
