/* The life of a stream of an HTTP chat model provider: attempts, retries
 * with backoff, pausing and resuming with the consumer, cancellation and
 * the final report — the ChimeModelProvider stream methods.
 *
 * A stream is a small state machine on the runtime's main context. Each
 * attempt is one HTTP transfer (<chime/http.h>). The body of a 2xx
 * response goes to provider-stream-events.c, which stops right after the
 * event whose token made the consumer pause: the bytes after it stay with
 * the transfer, which stops reading the socket until the consumer
 * resumes. Retries follow the official SDKs (see
 * chime_provider_retry_delay()) and happen only before a response has
 * begun: once a 2xx stream is being read, a failure ends the stream, so a
 * token is never delivered twice. */
#include "config.h"

#include "provider-stream.h"
#include "provider-stream-events.h"
#include "provider-stream-private.h"
#include "provider-config.h"
#include "provider-errors.h"
#include "pipeline/pipeline-error.h"

#include <math.h>
#include <string.h>

/* Error bodies are read up to this size; the rest is not worth keeping. */
#define MAX_ERROR_BODY (64 * 1024)

static void start_attempt (ChimeModelStream *stream);

/* ------------------------------------------------------------------
 * The source, and the end
 * ---------------------------------------------------------------- */

static void
stream_free (ChimeModelStream *stream)
{
  g_source_destroy (stream->source);
  g_source_unref (stream->source);
  g_free (stream->url);
  g_free (stream->body);
  g_strfreev (stream->headers);
  g_free (stream->api_key);
  g_clear_error (&stream->error);
  if (stream->error_body != NULL)
    g_string_free (stream->error_body, TRUE);
  g_free (stream->location);
  g_free (stream->unreadable_body);
  g_clear_pointer (&stream->parser, chime_sse_parser_free);
  g_clear_pointer (&stream->template, chime_token_template_free);
  if (stream->last_token != NULL)
    g_string_free (stream->last_token, TRUE);
  g_clear_error (&stream->stream_error);
  g_clear_pointer (&stream->tool_calls, chime_tool_call_buffer_free);
  g_free (stream->should_retry);
  if (stream->state != NULL)
    stream->ops->state_free (stream->state);
  g_main_context_unref (stream->context);
  g_free (stream);
}

/* Ends the stream with @error (NULL: success) at the next dispatch; the
 * first end wins. */
static void
finish (ChimeModelStream *stream,
        GError           *error)
{
  if (stream->action == CHIME_STREAM_ACTION_FINISH)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL && stream->api_key != NULL)
    {
      char *scrubbed = chime_provider_scrub (error->message, stream->api_key);

      g_free (error->message);
      error->message = scrubbed;
    }
  stream->error = error;
  stream->action = CHIME_STREAM_ACTION_FINISH;
  g_source_set_ready_time (stream->source, 0);
}

static void
report_done (ChimeModelStream *stream)
{
  ChimeModelResult result = { 0 };

  stream->ops->fill_result (stream->model, stream->state, &result);
  if (stream->tool_calls != NULL)
    chime_tool_call_buffer_finish (stream->tool_calls, &result.tool_calls, &result.invalid_tool_calls);
  stream->callbacks->on_done (&result, stream->error, stream->user_data);
  g_clear_pointer (&result.response_metadata, json_decref);
  g_clear_pointer (&result.usage_metadata, json_decref);
  g_clear_pointer (&result.generation_info, json_decref);
  g_clear_pointer (&result.tool_calls, json_decref);
  g_clear_pointer (&result.invalid_tool_calls, json_decref);
  stream_free (stream);
}

static gboolean
stream_dispatch (GSource    *source,
                 GSourceFunc callback,
                 gpointer    user_data)
{
  ChimeModelStream *stream = user_data;
  ChimeStreamAction action = stream->action;

  g_source_set_ready_time (source, -1);
  stream->action = CHIME_STREAM_ACTION_NONE;
  if (action == CHIME_STREAM_ACTION_FINISH)
    report_done (stream);   /* frees the stream and its source */
  else if (action == CHIME_STREAM_ACTION_ATTEMPT)
    start_attempt (stream);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs stream_source_funcs = {
  .dispatch = stream_dispatch,
};

/* ------------------------------------------------------------------
 * Starting, resuming, cancelling
 * ---------------------------------------------------------------- */

static gboolean
prepare (ChimeModelStream *stream,
         json_t           *messages,
         json_t           *tools,
         GError          **error)
{
  ChimeProviderModel *model = stream->model;
  g_autoptr (json_t) body = NULL;
  char *text;

  stream->api_key = chime_provider_model_load_api_key (model, error);
  if (stream->api_key == NULL)
    return FALSE;
  body = stream->ops->build_body (model, messages, tools, error);
  if (body == NULL)
    return FALSE;
  if (model->extra_body != NULL)
    json_object_update (body, model->extra_body);
  text = json_dumps (body, JSON_COMPACT);
  stream->body = g_strdup (text);
  free (text);
  stream->headers = chime_provider_model_build_headers (model, stream->api_key);
  stream->url = g_strconcat (model->base_url, stream->ops->endpoint, NULL);
  return TRUE;
}

ChimeModelStream *
chime_provider_stream (ChimeModel                *model,
                       json_t                    *messages,
                       json_t                    *tools,
                       const ChimeModelCallbacks *callbacks,
                       gpointer                   user_data,
                       GMainContext              *context)
{
  ChimeProviderModel *self = (ChimeProviderModel *) model;
  ChimeModelStream *stream = g_new0 (ChimeModelStream, 1);
  GError *error = NULL;

  stream->model = self;
  stream->ops = self->ops;
  stream->callbacks = callbacks;
  stream->user_data = user_data;
  stream->context = g_main_context_ref (context != NULL ? context : g_main_context_default ());
  stream->state = self->ops->state_new (self);
  stream->source = g_source_new (&stream_source_funcs, sizeof (GSource));
  g_source_set_callback (stream->source, NULL, stream, NULL);
  g_source_set_name (stream->source, "chime model stream");
  g_source_attach (stream->source, stream->context);

  /* Keep this context's connections for the model's next stream. */
  g_clear_pointer (&self->client, chime_http_client_unref);
  self->client = chime_http_client_get_for_context (stream->context);

  /* Even a stream that cannot start reports through on_done, later: the
   * caller has not seen the stream yet. */
  if (!prepare (stream, messages, tools, &error))
    finish (stream, error);
  else
    start_attempt (stream);
  return stream;
}

void
chime_provider_stream_resume (ChimeModelStream *stream)
{
  if (!stream->paused)
    return;
  stream->paused = FALSE;
  if (stream->transfer != NULL)
    chime_http_transfer_resume (stream->transfer);
}

void
chime_provider_stream_cancel (ChimeModelStream *stream)
{
  if (stream->cancelled || stream->action == CHIME_STREAM_ACTION_FINISH)
    return;
  stream->cancelled = TRUE;
  /* A transfer reports its end first; otherwise end now (a backoff
   * timer simply never fires). */
  if (stream->transfer != NULL)
    chime_http_transfer_cancel (stream->transfer);
  else
    finish (stream, g_error_new_literal (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED,
                                         "the run was cancelled"));
}

/* ------------------------------------------------------------------
 * An attempt: one HTTP transfer
 * ---------------------------------------------------------------- */

static gboolean
is_success (guint status)
{
  return status >= 200 && status < 300;
}

static void
on_response (ChimeHttpTransfer *transfer,
             guint              status,
             gpointer           user_data)
{
  ChimeModelStream *stream = user_data;
  const char *content_type = chime_http_transfer_get_header (transfer, "content-type");
  g_autofree char *unreadable = chime_provider_describe_encoding (
      stream->model, chime_http_transfer_get_header (transfer, "content-encoding"));

  stream->status = status;
  if (!is_success (status))
    {
      stream->error_body = g_string_new (NULL);
      stream->unreadable_body = g_steal_pointer (&unreadable);
      stream->location = g_strdup (chime_http_transfer_get_header (transfer, "location"));
      stream->retry_after = chime_provider_parse_retry_after (
          chime_http_transfer_get_header (transfer, "retry-after-ms"),
          chime_http_transfer_get_header (transfer, "retry-after"),
          g_get_real_time () / G_USEC_PER_SEC);
      stream->should_retry = g_strdup (chime_http_transfer_get_header (transfer, "x-should-retry"));
      return;
    }
  if (content_type != NULL && g_ascii_strncasecmp (content_type, "text/event-stream", 17) != 0)
    {
      chime_provider_stream_fail (stream, "expected an event stream (text/event-stream) from %s, got %s",
                                  stream->url, content_type);
      chime_http_transfer_cancel (transfer);
      return;
    }
  if (unreadable != NULL)
    {
      chime_provider_stream_fail (stream, "the response from %s is %s", stream->url, unreadable);
      chime_http_transfer_cancel (transfer);
      return;
    }
  chime_provider_stream_begin_events (stream);
}

static gboolean
on_data (ChimeHttpTransfer *transfer,
         const char        *data,
         gsize              length,
         gsize             *consumed,
         gpointer           user_data)
{
  ChimeModelStream *stream = user_data;

  *consumed = length;
  if (stream->cancelled || stream->terminated || stream->stream_error != NULL)
    return TRUE;   /* the rest does not matter */
  if (stream->parser == NULL)
    {
      /* An error response: its body says why, up to a point. */
      if (stream->error_body == NULL)
        stream->error_body = g_string_new (NULL);
      if (stream->error_body->len < MAX_ERROR_BODY)
        g_string_append_len (stream->error_body, data,
                             (gssize) MIN (length, MAX_ERROR_BODY - stream->error_body->len));
      return TRUE;
    }
  *consumed = chime_provider_stream_feed (stream, data, length);
  if (stream->stream_error != NULL)
    {
      /* No reason to read what follows a failure. */
      chime_http_transfer_cancel (transfer);
      *consumed = length;
      return TRUE;
    }
  if (stream->paused)
    return FALSE;
  *consumed = length;
  return TRUE;
}

/* " (gave up after 3 attempts)" when there were retries. */
static char *
attempts_suffix (ChimeModelStream *stream)
{
  return stream->attempts > 1 ? g_strdup_printf (" (gave up after %u attempts)", stream->attempts)
                              : g_strdup ("");
}

/* What a transport failure before any response means, in words. */
static char *
describe_transport_error (ChimeModelStream *stream,
                          const GError     *error)
{
  ChimeProviderModel *model = stream->model;

  if (error == NULL)
    return g_strdup_printf ("no response from %s", stream->url);
  switch (error->code)
    {
    case CHIME_HTTP_ERROR_CONNECT:
      return g_strdup_printf ("cannot connect to %s: %s", stream->url, error->message);
    case CHIME_HTTP_ERROR_CONNECT_TIMEOUT:
      return g_strdup_printf ("cannot connect to %s within %g s (connect_timeout_s in [%s]): %s",
                              stream->url, model->connect_timeout_s, model->section, error->message);
    case CHIME_HTTP_ERROR_IDLE_TIMEOUT:
      return g_strdup_printf ("no response from %s within %g s (timeout_s in [%s])",
                              stream->url, model->timeout_s, model->section);
    case CHIME_HTTP_ERROR_INVALID:
      return g_strdup_printf ("cannot send the request to %s: %s", stream->url, error->message);
    default:
      return g_strdup_printf ("the request to %s failed: %s", stream->url, error->message);
    }
}

/* A 2xx stream that ended without its terminator. */
static GError *
truncated_error (ChimeModelStream *stream,
                 const GError     *error)
{
  ChimeProviderModel *model = stream->model;

  if (error != NULL && error->code == CHIME_HTTP_ERROR_IDLE_TIMEOUT)
    return chime_provider_error_new ("%s: the stream stalled: nothing received for %g s "
                                     "(timeout_s in [%s])",
                                     stream->ops->name, model->timeout_s, model->section);
  return chime_provider_error_new ("%s: the stream ended before its terminator (%s)%s%s",
                                   stream->ops->name, stream->ops->terminator,
                                   error != NULL ? ": " : "", error != NULL ? error->message : "");
}

static json_t *
retry_state (ChimeModelStream *stream,
             const char       *exception,
             const char       *exception_type,
             gdouble           delay)
{
  json_t *state = json_pack ("{s:I, s:f, s:s, s:s, s:s, s:f}",
                             "attempt", (json_int_t) stream->attempts,
                             "slept", stream->slept,
                             "outcome", "failed",
                             "exception", exception,
                             "exception_type", exception_type,
                             "upcoming_sleep", delay);

  if (stream->status != 0)
    json_object_set_new (state, "status", json_integer (stream->status));
  return state;
}

/* Retries after a failed attempt when the SDKs would, else ends the
 * stream with @message (prefixed with the provider's name). */
static void
retry_or_fail (ChimeModelStream *stream,
               const char       *message,
               gboolean          transport_retryable)
{
  ChimeProviderModel *model = stream->model;
  gdouble delay = -1;

  if (stream->n_tokens == 0)
    delay = chime_provider_retry_delay (stream->ops, stream->status, transport_retryable,
                                        stream->should_retry, stream->retry_after,
                                        stream->attempts - 1, (guint) model->max_retries);
  if (delay < 0)
    {
      g_autofree char *suffix = attempts_suffix (stream);

      finish (stream, chime_provider_error_new ("%s: %s%s", stream->ops->name, message, suffix));
      return;
    }
  if (stream->callbacks->on_retry != NULL)
    {
      g_autofree char *full = g_strdup_printf ("%s: %s", stream->ops->name, message);
      g_autofree char *scrubbed = chime_provider_scrub (full, stream->api_key);
      g_autoptr (json_t) state = retry_state (stream, scrubbed,
                                              chime_provider_exception_type (stream->status), delay);

      stream->callbacks->on_retry (state, stream->user_data);
      if (stream->cancelled)
        return;   /* on_retry cancelled and so finished the stream */
    }
  /* A retry is said, not silent: a slow run has its reason on stderr. */
  {
    g_autofree char *said = g_strdup_printf ("%s: %s", stream->ops->name, message);
    g_autofree char *scrubbed = chime_provider_scrub (said, stream->api_key);

    g_message ("[%s] %s; retrying in %.2f s (attempt %u of %u)", model->section, scrubbed, delay,
               stream->attempts + 1, (guint) model->max_retries + 1);
  }
  stream->slept += delay;
  stream->action = CHIME_STREAM_ACTION_ATTEMPT;
  g_source_set_ready_time (stream->source, g_get_monotonic_time () + (gint64) (delay * G_USEC_PER_SEC));
}

/* What a non-2xx response said: its body, in the provider's error shape
 * or quoted, unless it is a redirect (the Location matters, not the web
 * server's HTML) or compressed (no use quoting binary). */
static char *
describe_error_response (ChimeModelStream *stream)
{
  if (chime_provider_is_redirect (stream->status))
    return chime_provider_describe_redirect (stream->model, stream->status, stream->url, stream->location);
  if (stream->unreadable_body != NULL)
    return g_strdup_printf ("HTTP %u from %s: its body is %s", stream->status, stream->url,
                            stream->unreadable_body);
  return chime_provider_describe_http_error (stream->status,
                                             stream->error_body ? stream->error_body->str : NULL,
                                             stream->error_body ? stream->error_body->len : 0);
}

static void
on_transfer_done (ChimeHttpTransfer *transfer,
                  const GError      *error,
                  gpointer           user_data)
{
  ChimeModelStream *stream = user_data;
  g_autofree char *message = NULL;

  stream->transfer = NULL;
  if (stream->cancelled)
    finish (stream, g_error_new_literal (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED,
                                         "the run was cancelled"));
  else if (stream->stream_error != NULL)
    finish (stream, g_steal_pointer (&stream->stream_error));
  else if (is_success (stream->status))
    finish (stream, stream->terminated ? NULL : truncated_error (stream, error));
  else if (stream->status == 0)
    {
      message = describe_transport_error (stream, error);
      retry_or_fail (stream, message, error == NULL || error->code != CHIME_HTTP_ERROR_INVALID);
    }
  else
    {
      message = describe_error_response (stream);
      retry_or_fail (stream, message, FALSE);
    }
}

static const ChimeHttpCallbacks http_callbacks = {
  .on_response = on_response,
  .on_data = on_data,
  .on_done = on_transfer_done,
};

static void
start_attempt (ChimeModelStream *stream)
{
  ChimeProviderModel *model = stream->model;
  ChimeHttpRequest request = {
    .url = stream->url,
    .headers = (const char * const *) stream->headers,
    .body = stream->body,
    .body_length = strlen (stream->body),
    .connect_timeout_s = model->connect_timeout_s,
    .idle_timeout_s = model->timeout_s,
  };

  stream->attempts++;
  g_debug ("[%s] POST %s (attempt %u)", model->section, stream->url, stream->attempts);
  stream->status = 0;
  stream->terminated = FALSE;
  stream->retry_after = NAN;
  g_clear_pointer (&stream->should_retry, g_free);
  g_clear_pointer (&stream->parser, chime_sse_parser_free);
  if (stream->error_body != NULL)
    {
      g_string_free (stream->error_body, TRUE);
      stream->error_body = NULL;
    }
  g_clear_pointer (&stream->location, g_free);
  g_clear_pointer (&stream->unreadable_body, g_free);
  stream->transfer = chime_http_transfer_start (stream->context, &request, &http_callbacks, stream);
}
