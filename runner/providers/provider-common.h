/* What the HTTP chat model providers (OpenAI, Anthropic) share: the keys
 * of a `[model NAME]` section they both read, the API key, the streaming
 * request with its retries, back-pressure and cancellation, and error
 * messages. A provider adds only its wire format: the request body and
 * headers, and what each server-sent event means. */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/event.h>

#include <chime/chime.h>
#include "model.h"
#include "sse-parser.h"

typedef struct _ChimeProviderOps ChimeProviderOps;

/* The settings of a `[model NAME]` section of an HTTP provider; each
 * provider's model starts with one. */
typedef struct {
  ChimeModel              parent;
  const ChimeProviderOps *ops;
  char                   *section;            /* "model NAME", for messages */
  char                   *base_url;           /* without a trailing slash */
  char                   *api_key_env;
  char                   *api_key_file;       /* absolute, or NULL: use api_key_env */
  gboolean                has_temperature;
  gdouble                 temperature;
  gint64                  max_tokens;         /* 0: not sent */
  char                  **stop;               /* never NULL */
  char                  **headers;            /* "Name: value", never NULL */
  json_t                 *extra_body;         /* an object, or NULL */
  gdouble                 timeout_s;
  gdouble                 connect_timeout_s;
  gint64                  max_retries;
  /* The HTTP client of the last stream's context: holding it keeps its
   * connections open for the next stream. */
  ChimeHttpClient        *client;
} ChimeProviderModel;

struct _ChimeProviderOps {
  const char *name;                    /* "openai": starts every message */
  const char *default_base_url;
  const char *default_api_key_env;
  const char *endpoint;                /* appended to base_url: "/chat/completions" */
  const char *terminator;              /* for messages: "data: [DONE]" */
  gint64      default_max_tokens;      /* 0: none */
  gdouble     max_temperature;
  /* A server-asked delay longer than this is not honoured; with
   * refuse_long_retry_after the request is then not retried at all (as
   * openai-python does), otherwise the usual backoff applies
   * (anthropic-sdk-python). */
  gdouble     max_retry_after_s;
  gboolean    refuse_long_retry_after;
  /* Request body keys extra_body must not set. NULL-terminated. */
  const char *const *reserved_body_keys;

  /* The JSON body for @messages (chime's [{"type", "content"}]); NULL with
   * @error when a message cannot be sent. New reference. */
  json_t   *(*build_body)   (ChimeProviderModel *model,
                             json_t             *messages,
                             GError            **error);
  /* Adds the authentication and protocol headers ("Name: value"). */
  void      (*add_headers)  (ChimeProviderModel *model,
                             const char         *api_key,
                             GPtrArray          *headers);
  /* What a stream remembers of its events (usage, ids), and what it
   * makes of them at the end. */
  gpointer  (*state_new)    (ChimeProviderModel *model);
  void      (*state_free)   (gpointer            state);
  /* One event of a successful (2xx) response. It may look at the
   * event's type and data only; a token it yields must be the text of a
   * JSON string in the data, and an event that yields a token must
   * change nothing else when handled again right after itself: the
   * stream then skips it for events that differ only in the token's
   * string (see ChimeTokenTemplate). */
  void      (*handle_event) (ChimeModelStream    *stream,
                             gpointer             state,
                             const ChimeSseEvent *event);
  /* Fills the result's members with new references (NULL when unknown). */
  void      (*fill_result)  (ChimeProviderModel *model,
                             gpointer            state,
                             ChimeModelResult   *result);
};

/* Configuration ------------------------------------------------------- */

/* The keys every HTTP provider reads (with `model`), NULL-terminated. */
#define CHIME_PROVIDER_COMMON_KEYS                                              \
  "model", "base_url", "api_key_env", "api_key_file", "temperature", "max_tokens", \
  "stop", "headers", "extra_body", "timeout_s", "connect_timeout_s", "max_retries"

/* Reads the common keys into @model; FALSE when a problem was reported. */
gboolean chime_provider_model_read  (ChimeProviderModel     *model,
                                     const ChimeProviderOps *ops,
                                     ChimeConfig               *config,
                                     const char             *section);
void     chime_provider_model_clear (ChimeProviderModel     *model);

/* The invocation parameters both providers report: model, stream,
 * temperature, max_tokens, stop, timeouts, retries, extra_body, never a
 * key or a header. New reference. */
json_t  *chime_provider_invocation_params (ChimeProviderModel *model,
                                           const char         *type);

/* ChimeModelProvider methods --------------------------------------- */

ChimeModelStream *chime_provider_stream        (ChimeModel                *model,
                                                json_t                    *messages,
                                                const ChimeModelCallbacks *callbacks,
                                                gpointer                   user_data,
                                                GMainContext              *context);
void              chime_provider_stream_resume (ChimeModelStream *stream);
void              chime_provider_stream_cancel (ChimeModelStream *stream);

/* For handle_event -------------------------------------------------- */

/* Hands one token to the consumer. At most one per event: the consumer
 * may pause the stream, and then nothing more must reach it. */
void      chime_provider_stream_token     (ChimeModelStream    *stream,
                                           const char          *text);
/* The provider's end-of-stream event has come: the stream succeeded. */
void      chime_provider_stream_terminate (ChimeModelStream    *stream);
/* The stream failed mid-way (an error event, bad JSON); the message is
 * prefixed with the provider's name. Not retried. */
void      chime_provider_stream_fail      (ChimeModelStream    *stream,
                                           const char          *format,
                                           ...) G_GNUC_PRINTF (2, 3);
/* The event's data as a JSON object, or NULL after failing the stream. */
json_t   *chime_provider_stream_parse     (ChimeModelStream    *stream,
                                           const ChimeSseEvent *event);

/* Token templates --------------------------------------------------- */

/* Token events of a stream are nearly all alike: the same JSON with a
 * different string in one place ({"id":"chatcmpl-1",...,"delta":
 * {"content":"TOKEN"},...}). Parsing each into a DOM costs far more than
 * everything else a token does, so a stream remembers the last event that
 * yielded a token and where that token's string literal was, and takes
 * the token straight out of any next event that is byte for byte the
 * same outside that literal. Such an event would be handled exactly as
 * the remembered one (handle_event's contract above), so nothing is lost
 * by not parsing it. Anything else is handled in full. */
typedef struct _ChimeTokenTemplate ChimeTokenTemplate;

ChimeTokenTemplate *chime_token_template_new    (void);
void                chime_token_template_free   (ChimeTokenTemplate *template);
/* Remembers @data (of SSE type @event_type), which yielded @token, when
 * exactly one string literal in it decodes to @token. FALSE otherwise,
 * and the template is then empty. */
gboolean            chime_token_template_learn  (ChimeTokenTemplate *template,
                                                 const char         *event_type,
                                                 const char         *data,
                                                 gsize               length,
                                                 const char         *token);
/* The token of an event that differs from the remembered one only inside
 * the token's literal, decoded (valid until the next call); NULL when the
 * event must be handled in full, or the token would be empty. */
const char         *chime_token_template_match  (ChimeTokenTemplate *template,
                                                 const char         *event_type,
                                                 const char         *data,
                                                 gsize               length);
void                chime_token_template_forget (ChimeTokenTemplate *template);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeTokenTemplate, chime_token_template_free)

/* Helpers, public for the tests -------------------------------------- */

/* "rate_limit_exceeded: Rate limit reached ..." from an error object in
 * any of the shapes below, or NULL when @body holds none. */
char    *chime_provider_describe_error      (json_t     *body);
/* "HTTP 429 rate_limit_exceeded: Rate limit reached ..." from an error
 * response body of OpenAI, Anthropic, Ollama or llama.cpp shape. */
char    *chime_provider_describe_http_error (guint       status,
                                             const char *body,
                                             gsize       length);
/* The SDK class name an HTTP status maps to ("RateLimitError"). */
const char *chime_provider_exception_type   (guint status);
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
/* LangChain's usage_metadata {"input_tokens", "output_tokens",
 * "total_tokens", "input_token_details", "output_token_details"}, taking
 * the two detail objects (NULL: left out). New reference. */
json_t  *chime_provider_usage_metadata      (gint64  input_tokens,
                                             gint64  output_tokens,
                                             gint64  total_tokens,
                                             json_t *input_token_details,
                                             json_t *output_token_details);
/* Sets @key of @object to @value unless @value is negative (unknown). */
void     chime_provider_json_set_count      (json_t     *object,
                                             const char *key,
                                             gint64      value);
/* A JSON integer member as gint64, or -1 when absent or not a number. */
gint64   chime_provider_json_int            (json_t     *object,
                                             const char *key);
/* A JSON array of the strings of @strv. New reference. */
json_t  *chime_provider_strv_to_json        (const char * const *strv);
