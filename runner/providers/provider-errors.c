/* Errors of the HTTP chat model providers, and when to retry them: the
 * messages made of an error response (in any of the shapes the servers
 * send), with the API key scrubbed and foreign bodies quoted short; the
 * SDK exception type of a status; responses that cannot be read (a
 * redirect, a compressed body nobody asked for); and the retry rules of the official
 * SDKs (which failures, how long to wait, what a server's retry-after
 * asks). They decide only; provider-stream.c acts on them. */
#include "config.h"

#include "provider-errors.h"
#include "pipeline/pipeline-error.h"

#include <math.h>
#include <string.h>

#define INITIAL_RETRY_DELAY_S 0.5
#define MAX_RETRY_DELAY_S 8.0

/* ------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------- */

GError *
chime_provider_error_new (const char *format,
                          ...)
{
  GError *error;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL, format, args);
  va_end (args);
  return error;
}

char *
chime_provider_scrub (const char *text,
                      const char *secret)
{
  g_auto (GStrv) parts = NULL;

  if (secret == NULL || secret[0] == '\0' || strstr (text, secret) == NULL)
    return g_strdup (text);
  parts = g_strsplit (text, secret, -1);
  return g_strjoinv ("**********", parts);
}

char *
chime_provider_quote_text (const char *text,
                           gsize       length,
                           gsize       max)
{
  g_autofree char *valid = g_utf8_make_valid (text, (gssize) MIN (length, max));
  GString *quoted = g_string_new (NULL);

  for (const char *p = valid; *p != '\0'; p++)
    g_string_append_c (quoted, *p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
  g_strstrip (quoted->str);
  quoted->len = strlen (quoted->str);
  if (length > max)
    g_string_append (quoted, "...");
  return g_string_free (quoted, FALSE);
}

/* ------------------------------------------------------------------
 * Error responses
 * ---------------------------------------------------------------- */

/* The label and message of an error object: OpenAI's
 * {"error": {"message", "type", "code"}}, Anthropic's {"type": "error",
 * "error": {"type", "message"}}, llama.cpp's integer code, Ollama's
 * {"error": "text"}. */
static gboolean
read_error_object (json_t      *body,
                   const char **label,
                   const char **message)
{
  json_t *error = json_object_get (body, "error");

  *label = NULL;
  *message = NULL;
  if (json_is_string (error))
    {
      *message = json_string_value (error);
      return TRUE;
    }
  if (!json_is_object (error))
    return FALSE;
  /* OpenAI's `code` is the precise one ("rate_limit_exceeded" where the
   * type says "requests"). */
  *label = json_string_value (json_object_get (error, "code"));
  if (*label == NULL)
    *label = json_string_value (json_object_get (error, "type"));
  *message = json_string_value (json_object_get (error, "message"));
  return *label != NULL || *message != NULL;
}

char *
chime_provider_describe_error (json_t *body)
{
  const char *label, *message;

  if (!read_error_object (body, &label, &message))
    return NULL;
  return g_strdup_printf ("%s%s%s", label != NULL ? label : "", label != NULL ? ": " : "",
                          message != NULL ? message : "(no message)");
}

char *
chime_provider_describe_http_error (guint       status,
                                    const char *body,
                                    gsize       length)
{
  g_autoptr (json_t) json = NULL;
  g_autofree char *quoted = NULL;
  const char *label, *message;

  if (body != NULL && length > 0)
    json = json_loadb (body, length, 0, NULL);
  /* "HTTP 429 rate_limit_exceeded: Rate limit ...", "HTTP 404: not found" */
  if (read_error_object (json, &label, &message))
    return g_strdup_printf ("HTTP %u%s%s: %s", status, label != NULL ? " " : "", label != NULL ? label : "",
                            message != NULL ? message : "(no message)");
  if (body == NULL || length == 0)
    return g_strdup_printf ("HTTP %u (empty body)", status);
  quoted = chime_provider_quote_text (body, length, CHIME_PROVIDER_MAX_QUOTED_BODY);
  return g_strdup_printf ("HTTP %u: %s", status, quoted);
}

/* ------------------------------------------------------------------
 * Responses that cannot be read
 * ---------------------------------------------------------------- */

gboolean
chime_provider_is_redirect (guint status)
{
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The base_url that would reach @target, the redirect's absolute URL,
 * when it is an HTTP(S) URL of the provider's endpoint; else NULL. */
static char *
base_url_for (ChimeProviderModel *model,
              const char         *target)
{
  const char *endpoint = model->ops->endpoint;

  if (!(g_str_has_prefix (target, "http://") || g_str_has_prefix (target, "https://")) ||
      !g_str_has_suffix (target, endpoint) || strlen (target) == strlen (endpoint))
    return NULL;
  return g_strndup (target, strlen (target) - strlen (endpoint));
}

char *
chime_provider_describe_redirect (ChimeProviderModel *model,
                                  guint               status,
                                  const char         *url,
                                  const char         *location)
{
  g_autofree char *target = NULL;
  g_autofree char *quoted = NULL;
  g_autofree char *base_url = NULL;

  if (location == NULL || location[0] == '\0')
    return g_strdup_printf ("HTTP %u from %s: redirects are not followed (the response has no Location); "
                            "set base_url in [%s] to the final address", status, url, model->section);
  /* A relative Location ("/v2/chat/completions") is named as the
   * address it stands for, which is what base_url needs. */
  target = g_uri_resolve_relative (url, location, G_URI_FLAGS_NONE, NULL);
  if (target == NULL)
    target = g_strdup (location);
  quoted = chime_provider_quote_text (target, strlen (target), CHIME_PROVIDER_MAX_QUOTED_BODY);
  if (strlen (target) <= CHIME_PROVIDER_MAX_QUOTED_BODY)
    base_url = base_url_for (model, target);
  if (base_url != NULL)
    return g_strdup_printf ("HTTP %u from %s: redirects are not followed (Location: %s); set base_url in [%s] "
                            "to the final address: base_url = %s", status, url, quoted, model->section,
                            base_url);
  return g_strdup_printf ("HTTP %u from %s: redirects are not followed (Location: %s); set base_url in [%s] "
                          "to the final address", status, url, quoted, model->section);
}

/* Whether the model's own `headers` send an Accept-Encoding. */
static gboolean
asks_for_encoding (ChimeProviderModel *model)
{
  for (guint i = 0; model->headers[i] != NULL; i++)
    if (g_ascii_strncasecmp (model->headers[i], "Accept-Encoding:", 16) == 0)
      return TRUE;
  return FALSE;
}

char *
chime_provider_describe_encoding (ChimeProviderModel *model,
                                  const char         *content_encoding)
{
  g_autofree char *quoted = NULL;

  if (content_encoding == NULL || content_encoding[0] == '\0' ||
      g_ascii_strcasecmp (content_encoding, "identity") == 0)
    return NULL;
  quoted = chime_provider_quote_text (content_encoding, strlen (content_encoding), CHIME_PROVIDER_MAX_QUOTED_BODY);
  /* chime sends no Accept-Encoding, so curl decodes nothing: a server
   * or proxy that compresses anyway sends bytes no parser can read. */
  if (asks_for_encoding (model))
    return g_strdup_printf ("compressed (Content-Encoding: %s), as the Accept-Encoding of 'headers' in [%s] "
                            "asks, and chime reads only uncompressed responses: remove that header",
                            quoted, model->section);
  return g_strdup_printf ("compressed (Content-Encoding: %s), which chime did not ask for (it sends no "
                          "Accept-Encoding) and cannot read", quoted);
}

const char *
chime_provider_exception_type (guint status)
{
  switch (status)
    {
    case 0: return "APIConnectionError";
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 409: return "ConflictError";
    case 413: return "RequestTooLargeError";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    case 529: return "OverloadedError";
    default: return status >= 500 ? "InternalServerError" : "APIStatusError";
    }
}

/* ------------------------------------------------------------------
 * Retries
 * ---------------------------------------------------------------- */

/* The index of month name @name (0 for "Jan"), or -1. */
static int
month_index (const char *name)
{
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const char *found = strlen (name) == 3 ? strstr (months, name) : NULL;

  return found != NULL && (found - months) % 3 == 0 ? (int) (found - months) / 3 : -1;
}

/* An HTTP-date (RFC 9110, 5.6.7) as Unix time, or -1: the IMF-fixdate
 * servers send ("Sun, 06 Nov 1994 08:49:37 GMT") and the two obsolete
 * forms a recipient must still read (RFC 850's "Sunday, 06-Nov-94
 * 08:49:37 GMT", asctime's "Sun Nov  6 08:49:37 1994"). Parsed here
 * rather than by libcurl, which the runner does not link (only chime's
 * HTTP module does). */
static gint64
parse_http_date (const char *text)
{
  const char *comma = strchr (text, ',');
  char month[4] = "", zone[4] = "";
  int day, year, hour, minute, second, end = -1, month_number;
  const char *rest = comma != NULL ? comma + 1 : text;
  g_autoptr (GDateTime) date = NULL;

  if (comma != NULL &&
      sscanf (rest, " %2d %3s %4d %2d:%2d:%2d %3s%n", &day, month, &year, &hour, &minute, &second,
              zone, &end) != 7 &&
      sscanf (rest, " %2d-%3[A-Za-z]-%2d %2d:%2d:%2d %3s%n", &day, month, &year, &hour, &minute,
              &second, zone, &end) == 7)
    /* Two-digit years: RFC 9110 reads one more than 50 years ahead as
     * the past; the century of today's dates is enough for a retry. */
    year += year < 70 ? 2000 : 1900;
  else if (comma == NULL &&
           sscanf (rest, "%*3s %3s %2d %2d:%2d:%2d %4d%n", month, &day, &hour, &minute, &second,
                   &year, &end) == 6)
    strcpy (zone, "GMT");
  if (end < 0 || rest[end + strspn (rest + end, " \t")] != '\0' || strcmp (zone, "GMT") != 0 ||
      (month_number = month_index (month)) < 0)
    return -1;
  date = g_date_time_new_utc (year, month_number + 1, day, hour, minute, second);
  return date != NULL ? g_date_time_to_unix (date) : -1;
}

gdouble
chime_provider_parse_retry_after (const char *retry_after_ms,
                                  const char *retry_after,
                                  gint64      now_unix)
{
  char *end;
  gdouble value;
  gint64 date;

  if (retry_after_ms != NULL)
    {
      value = g_ascii_strtod (retry_after_ms, &end);
      if (end != retry_after_ms && *end == '\0' && isfinite (value))
        return value / 1000.0;
    }
  if (retry_after == NULL)
    return NAN;
  value = g_ascii_strtod (retry_after, &end);
  if (end != retry_after && *end == '\0' && isfinite (value))
    return value;
  date = parse_http_date (retry_after);
  if (date == -1)
    return NAN;
  return (gdouble) (date - now_unix);
}

gdouble
chime_provider_retry_delay (const ChimeProviderOps *ops,
                            guint                   status,
                            gboolean                transport_retryable,
                            const char             *should_retry,
                            gdouble                 retry_after,
                            guint                   retries_taken,
                            guint                   max_retries)
{
  gboolean retryable;
  gdouble delay;

  if (retries_taken >= max_retries)
    return -1;
  if (ops->refuse_long_retry_after && !isnan (retry_after) && retry_after > ops->max_retry_after_s)
    return -1;
  if (should_retry != NULL && g_ascii_strcasecmp (should_retry, "false") == 0)
    return -1;
  if (should_retry != NULL && g_ascii_strcasecmp (should_retry, "true") == 0)
    retryable = TRUE;
  else if (status == 0)
    retryable = transport_retryable;
  else
    retryable = status == 408 || status == 409 || status == 429 || status >= 500;
  if (!retryable)
    return -1;
  if (!isnan (retry_after) && retry_after > 0 && retry_after <= ops->max_retry_after_s)
    return retry_after;
  /* 0.5 s doubling per retry taken, up to 8 s (reached at the fifth). */
  delay = MIN (INITIAL_RETRY_DELAY_S * (gdouble) (1u << MIN (retries_taken, 8)), MAX_RETRY_DELAY_S);
  /* Jitter in (0.75, 1]: clients that failed together retry apart. */
  return delay * (1.0 - 0.25 * g_random_double ());
}
