/* Errors of the HTTP chat model providers, and when to retry them
 * (provider-errors.c). The message and status helpers are public for the
 * tests. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

/* How much of a body that is not the provider's JSON an error quotes. */
#define CHIME_PROVIDER_MAX_QUOTED_BODY 200

/* Messages ------------------------------------------------------------ */

/* A CHIME_PIPELINE_ERROR_MODEL error: how a stream that fails ends. */
GError  *chime_provider_error_new           (const char *format,
                                             ...) G_GNUC_PRINTF (1, 2);
/* Replaces every occurrence of @secret in @text: whatever a server or a
 * proxy echoes back, the key never reaches a message. */
char    *chime_provider_scrub               (const char *text,
                                             const char *secret);
/* Up to @max bytes of @text as valid UTF-8 on one line, for quoting. */
char    *chime_provider_quote_text          (const char *text,
                                             gsize       length,
                                             gsize       max);

/* Error responses ----------------------------------------------------- */

/* "rate_limit_exceeded: Rate limit reached ..." from an error object in
 * any of the shapes below, or NULL when @body holds none. */
char    *chime_provider_describe_error      (json_t     *body);
/* "HTTP 429 rate_limit_exceeded: Rate limit reached ..." from an error
 * response body of OpenAI, Anthropic, Ollama or llama.cpp shape. */
char    *chime_provider_describe_http_error (guint       status,
                                             const char *body,
                                             gsize       length);
/* Whether @status is a redirect (301, 302, 303, 307, 308). */
gboolean chime_provider_is_redirect         (guint status);
/* "HTTP 302 from URL: redirects are not followed (Location: …); set
 * base_url in [model m] to the final address" for a redirect of the
 * request to @url; @location is the header as sent, or NULL. */
char    *chime_provider_describe_redirect   (ChimeProviderModel *model,
                                             guint               status,
                                             const char         *url,
                                             const char         *location);
/* NULL when @content_encoding (the response header, or NULL) says the
 * body is not compressed; else why the body cannot be read:
 * "compressed (Content-Encoding: gzip), which chime did not ask for …". */
char    *chime_provider_describe_encoding   (ChimeProviderModel *model,
                                             const char         *content_encoding);
/* The SDK class name an HTTP status maps to ("RateLimitError"). */
const char *chime_provider_exception_type   (guint status);

/* Retries ------------------------------------------------------------- */

/* The delay a response asks for (retry-after-ms, then retry-after in
 * seconds or as an HTTP date), in seconds; NAN when none. */
gdouble  chime_provider_parse_retry_after   (const char *retry_after_ms,
                                             const char *retry_after,
                                             gint64      now_unix);
/* Seconds to wait before the next attempt, or a negative number for no
 * retry, following the official SDKs: @status 0 is a connection failure
 * or timeout (retried when @transport_retryable). */
gdouble  chime_provider_retry_delay         (const ChimeProviderOps *ops,
                                             guint                   status,
                                             gboolean                transport_retryable,
                                             const char             *should_retry,
                                             gdouble                 retry_after,
                                             guint                   retries_taken,
                                             guint                   max_retries);
