/* The shared half of the HTTP chat model providers: configuration, the
 * API key, and a stream's life — attempts, retries with backoff, pausing
 * and resuming with the consumer, cancellation and the final report.
 *
 * A stream is a small state machine on the runtime's main context. Each
 * attempt is one HTTP transfer (http-client.c). Its body is cut into
 * lines before it reaches the SSE parser, so that the stream can stop
 * right after the event whose token made the consumer pause: the bytes
 * after it stay with the transfer, which stops reading the socket until
 * the consumer resumes. Retries follow the official SDKs (see
 * chime_provider_retry_delay()) and happen only before a response has
 * begun: once a 2xx stream is being read, a failure ends the stream, so a
 * token is never delivered twice. */
#include "config.h"

#include "provider-common.h"
#include "pipeline/pipeline-error.h"

#include <curl/curl.h>
#include <math.h>
#include <string.h>

/* Error bodies are read up to this size; the rest is not worth keeping. */
#define MAX_ERROR_BODY (64 * 1024)
/* How much of a body that is not the provider's JSON an error quotes. */
#define MAX_QUOTED_BODY 200
#define INITIAL_RETRY_DELAY_S 0.5
/* A stream whose token templates keep failing on the very next event
 * (a field that changes with every event) stops making them after this
 * many, so as not to pay for learning on every token. */
#define MAX_TEMPLATE_MISSES 32
#define MAX_RETRY_DELAY_S 8.0

/* Headers that carry credentials: they come from api_key_env or
 * api_key_file only, never from the configuration file. */
static const char *const credential_headers[] = {
  "authorization", "x-api-key", "api-key", "proxy-authorization", NULL
};

/* ------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------- */

gint64
chime_provider_json_int (json_t     *object,
                         const char *key)
{
  json_t *value = json_object_get (object, key);

  return json_is_integer (value) ? (gint64) json_integer_value (value) : -1;
}

json_t *
chime_provider_strv_to_json (const char * const *strv)
{
  json_t *array = json_array ();

  for (; strv != NULL && *strv != NULL; strv++)
    json_array_append_new (array, json_string (*strv));
  return array;
}

void
chime_provider_json_set_count (json_t     *object,
                               const char *key,
                               gint64      value)
{
  if (value >= 0)
    json_object_set_new (object, key, json_integer (value));
}

json_t *
chime_provider_usage_metadata (gint64  input_tokens,
                               gint64  output_tokens,
                               gint64  total_tokens,
                               json_t *input_token_details,
                               json_t *output_token_details)
{
  json_t *usage = chime_usage_metadata_new (MAX (input_tokens, 0), MAX (output_tokens, 0));

  if (total_tokens >= 0)
    json_object_set_new (usage, "total_tokens", json_integer (total_tokens));
  if (input_token_details != NULL)
    json_object_set_new (usage, "input_token_details", input_token_details);
  if (output_token_details != NULL)
    json_object_set_new (usage, "output_token_details", output_token_details);
  return usage;
}

/* Replaces every occurrence of @secret in @text: whatever a server or a
 * proxy echoes back, the key never reaches a message. */
static char *
scrub (const char *text,
       const char *secret)
{
  g_auto (GStrv) parts = NULL;

  if (secret == NULL || secret[0] == '\0' || strstr (text, secret) == NULL)
    return g_strdup (text);
  parts = g_strsplit (text, secret, -1);
  return g_strjoinv ("**********", parts);
}

/* Up to @max bytes of @text as valid UTF-8 on one line, for quoting. */
static char *
quote_text (const char *text,
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
 * Errors and retries
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
  quoted = quote_text (body, length, MAX_QUOTED_BODY);
  return g_strdup_printf ("HTTP %u: %s", status, quoted);
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

gdouble
chime_provider_parse_retry_after (const char *retry_after_ms,
                                  const char *retry_after,
                                  gint64      now_unix)
{
  char *end;
  gdouble value;
  time_t date;

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
  date = curl_getdate (retry_after, NULL);
  if (date == (time_t) -1)
    return NAN;
  return (gdouble) ((gint64) date - now_unix);
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

/* ------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------- */

/* Reports "WHAT in [section] of file.ini (line N)TAIL". */
static void
report (ChimeConfig      *config,
        const char    *section,
        const char    *key,
        const char    *what,
        const char    *tail)
{
  g_autofree char *location = chime_config_describe_location (config, section, key);

  chime_config_add_problem (config, "%s%s%s", what, location, tail);
}

static char *
read_base_url (ChimeConfig      *config,
               const char    *section,
               const char    *fallback)
{
  g_autofree char *value = chime_config_read_string (config, section, "base_url", fallback);
  gsize length = strlen (value);
  const char *rest = g_str_has_prefix (value, "https://") ? value + 8 :
                     g_str_has_prefix (value, "http://") ? value + 7 : NULL;

  if (rest == NULL || *rest == '\0' || *rest == '/')
    {
      g_autofree char *what = g_strdup_printf ("invalid value '%s' for 'base_url'", value);
      g_autofree char *tail = g_strdup_printf (": expected an http:// or https:// URL like %s", fallback);

      report (config, section, "base_url", what, tail);
    }
  while (length > 0 && value[length - 1] == '/')
    value[--length] = '\0';
  return g_steal_pointer (&value);
}

static void
read_api_key_source (ChimeProviderModel *model,
                     ChimeConfig           *config,
                     const char         *section)
{
  GKeyFile *key_file = chime_config_get_key_file (config);
  g_autofree char *file = NULL;

  if (g_key_file_has_key (key_file, section, "api_key_env", NULL) &&
      g_key_file_has_key (key_file, section, "api_key_file", NULL))
    report (config, section, "api_key_file", "set either 'api_key_env' or 'api_key_file'",
            ", not both");
  model->api_key_env = chime_config_read_string (config, section, "api_key_env",
                                              model->ops->default_api_key_env);
  /* Empty: no key at all, for local servers that want none. */
  if (strchr (model->api_key_env, '=') != NULL || strpbrk (model->api_key_env, " \t") != NULL)
    {
      g_autofree char *what = g_strdup_printf ("invalid value '%s' for 'api_key_env'", model->api_key_env);
      g_autofree char *tail = g_strdup_printf (": expected the name of an environment variable like %s",
                                               model->ops->default_api_key_env);

      report (config, section, "api_key_env", what, tail);
    }
  file = chime_config_read_string (config, section, "api_key_file", NULL);
  if (file != NULL && file[0] == '\0')
    report (config, section, "api_key_file", "empty value for 'api_key_file'", ": expected a path");
  else if (file != NULL)
    model->api_key_file = chime_config_resolve_path (config, file);
}

/* `stop = END, STOP` as a chime list, or a JSON array for sequences
 * with spaces or escapes: `stop = ["\n\n", "Human:"]`. */
static char **
read_stop (ChimeConfig      *config,
           const char    *section)
{
  g_autofree char *raw = chime_config_read_raw (config, section, "stop");

  if (raw == NULL)
    return g_new0 (char *, 1);
  if (raw[0] == '[')
    {
      char **stop = chime_config_read_json_strings (config, section, "stop", "[\"\\n\\n\", \"Human:\"]");

      return stop != NULL ? stop : g_new0 (char *, 1);
    }
  return chime_config_read_list (config, section, "stop", NULL);
}

static gboolean
is_token_char (char c)
{
  return g_ascii_isalnum (c) || strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Checks one "Name: value" and returns it normalized, or NULL. */
static char *
parse_header (ChimeConfig      *config,
              const char    *section,
              const char    *text)
{
  const char *colon = strchr (text, ':');
  g_autofree char *name = NULL;
  g_autofree char *value = NULL;

  if (colon != NULL)
    {
      name = g_strstrip (g_strndup (text, colon - text));
      value = g_strstrip (g_strdup (colon + 1));
    }
  if (name == NULL || name[0] == '\0' || strpbrk (value, "\r\n") != NULL)
    {
      g_autofree char *what = g_strdup_printf ("invalid header '%s' in 'headers'", text);

      report (config, section, "headers", what, ": expected \"Name: value\"");
      return NULL;
    }
  for (const char *p = name; *p != '\0'; p++)
    if (!is_token_char (*p))
      {
        g_autofree char *what = g_strdup_printf ("invalid header name '%s' in 'headers'", name);

        report (config, section, "headers", what, "");
        return NULL;
      }
  for (guint i = 0; credential_headers[i] != NULL; i++)
    if (g_ascii_strcasecmp (name, credential_headers[i]) == 0)
      {
        g_autofree char *tail = g_strdup_printf (" must not set %s: the API key comes from api_key_env "
                                                 "or api_key_file only", name);

        report (config, section, "headers", "'headers'", tail);
        return NULL;
      }
  return g_strdup_printf ("%s: %s", name, value);
}

/* `headers = ["X-A: 1", "X-B: 2,3"]`, or `headers = X-A: 1; X-B: 2`. */
static char **
read_headers (ChimeConfig      *config,
              const char    *section)
{
  g_autofree char *raw = chime_config_read_raw (config, section, "headers");
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) items = NULL;

  if (raw == NULL)
    return g_new0 (char *, 1);
  if (raw[0] == '[')
    {
      items = chime_config_read_json_strings (config, section, "headers", "[\"X-Title: chime\"]");
      if (items == NULL)
        items = g_new0 (char *, 1);
    }
  else
    {
      g_autofree char *value = chime_config_read_string (config, section, "headers", NULL);

      items = g_strsplit (value, ";", -1);
    }
  for (guint i = 0; items[i] != NULL; i++)
    {
      g_autofree char *header = NULL;

      if (g_strstrip (items[i])[0] == '\0')
        continue;
      header = parse_header (config, section, items[i]);
      if (header != NULL)
        g_strv_builder_add (builder, header);
    }
  return g_strv_builder_end (builder);
}

static json_t *
read_extra_body (ChimeProviderModel *model,
                 ChimeConfig           *config,
                 const char         *section)
{
  g_autofree char *raw = chime_config_read_raw (config, section, "extra_body");
  const char *const *reserved = model->ops->reserved_body_keys;
  g_autoptr (json_t) body = NULL;
  json_error_t error;

  if (raw == NULL)
    return NULL;
  body = json_loads (raw, 0, &error);
  if (!json_is_object (body))
    {
      g_autofree char *tail = g_strdup_printf (": expected a JSON object like {\"top_p\": 0.9}%s%s",
                                               body == NULL ? ": " : "", body == NULL ? error.text : "");

      report (config, section, "extra_body", "invalid value for 'extra_body'", tail);
      return NULL;
    }
  for (guint i = 0; reserved != NULL && reserved[i] != NULL; i++)
    if (json_object_get (body, reserved[i]) != NULL)
      {
        g_autofree char *tail = g_strdup_printf (" must not set '%s': chime sets it", reserved[i]);

        report (config, section, "extra_body", "'extra_body'", tail);
      }
  return g_steal_pointer (&body);
}

gboolean
chime_provider_model_read (ChimeProviderModel     *model,
                           const ChimeProviderOps *ops,
                           ChimeConfig               *config,
                           const char             *section)
{
  guint problems_before = chime_config_get_n_problems (config);
  GKeyFile *key_file = chime_config_get_key_file (config);

  model->ops = ops;
  model->section = g_strdup (section);
  model->parent.model_name = chime_config_read_string (config, section, "model", NULL);
  if (model->parent.model_name == NULL || model->parent.model_name[0] == '\0')
    {
      g_autofree char *tail = g_strdup_printf (": the %s model to call", ops->name);

      report (config, section, NULL, "missing required key 'model'", tail);
    }
  model->base_url = read_base_url (config, section, ops->default_base_url);
  read_api_key_source (model, config, section);
  if (g_key_file_has_key (key_file, section, "temperature", NULL))
    model->has_temperature = chime_config_read_double (config, section, "temperature", 0.0, 0.0,
                                                    ops->max_temperature, &model->temperature);
  chime_config_read_int (config, section, "max_tokens", ops->default_max_tokens, 1, 100000000,
                      &model->max_tokens);
  model->stop = read_stop (config, section);
  model->headers = read_headers (config, section);
  model->extra_body = read_extra_body (model, config, section);
  chime_config_read_double (config, section, "timeout_s", 600.0, 0.001, 86400.0, &model->timeout_s);
  chime_config_read_double (config, section, "connect_timeout_s", 10.0, 0.001, 3600.0,
                         &model->connect_timeout_s);
  chime_config_read_int (config, section, "max_retries", 2, 0, 100, &model->max_retries);
  return chime_config_get_n_problems (config) == problems_before;
}

void
chime_provider_model_clear (ChimeProviderModel *model)
{
  g_free (model->section);
  g_free (model->base_url);
  g_free (model->api_key_env);
  g_free (model->api_key_file);
  g_strfreev (model->stop);
  g_strfreev (model->headers);
  g_clear_pointer (&model->extra_body, json_decref);
  g_clear_pointer (&model->client, chime_http_client_unref);
}

json_t *
chime_provider_invocation_params (ChimeProviderModel *model,
                                  const char         *type)
{
  json_t *params = json_pack ("{s:s, s:s, s:s, s:b, s:f, s:f, s:I}",
                              "_type", type,
                              "model", model->parent.model_name,
                              "model_name", model->parent.model_name,
                              "stream", TRUE,
                              "timeout", model->timeout_s,
                              "connect_timeout", model->connect_timeout_s,
                              "max_retries", (json_int_t) model->max_retries);

  if (model->has_temperature)
    json_object_set_new (params, "temperature", json_real (model->temperature));
  if (model->max_tokens > 0)
    json_object_set_new (params, "max_tokens", json_integer (model->max_tokens));
  if (model->stop[0] != NULL)
    json_object_set_new (params, "stop", chime_provider_strv_to_json ((const char * const *) model->stop));
  if (model->extra_body != NULL)
    json_object_set (params, "extra_body", model->extra_body);
  return params;
}

/* ------------------------------------------------------------------
 * Token templates (see provider-common.h)
 * ---------------------------------------------------------------- */

struct _ChimeTokenTemplate {
  gboolean  valid;
  GString  *data;         /* the event the template was learned from */
  char     *event_type;
  gsize     start;        /* the token literal's opening quote in data */
  gsize     end;          /* just after its closing quote */
  GString  *token;        /* the last token decoded */
};

ChimeTokenTemplate *
chime_token_template_new (void)
{
  ChimeTokenTemplate *template = g_new0 (ChimeTokenTemplate, 1);

  template->data = g_string_new (NULL);
  template->token = g_string_new (NULL);
  return template;
}

void
chime_token_template_free (ChimeTokenTemplate *template)
{
  if (template == NULL)
    return;
  g_string_free (template->data, TRUE);
  g_string_free (template->token, TRUE);
  g_free (template->event_type);
  g_free (template);
}

void
chime_token_template_forget (ChimeTokenTemplate *template)
{
  template->valid = FALSE;
}

static gboolean
read_hex4 (const char **p,
           const char  *end,
           gunichar    *value)
{
  *value = 0;
  if (end - *p < 4)
    return FALSE;
  for (guint i = 0; i < 4; i++)
    {
      int digit = g_ascii_xdigit_value ((*p)[i]);

      if (digit < 0)
        return FALSE;
      *value = *value * 16 + (gunichar) digit;
    }
  *p += 4;
  return TRUE;
}

/* The code point of a \u escape whose four digits start at *@p, joining a
 * surrogate pair; 0 when jansson would refuse it or keep it out of a C
 * string (\u0000, a lone surrogate). */
static gunichar
read_unicode_escape (const char **p,
                     const char  *end)
{
  gunichar high, low;

  if (!read_hex4 (p, end, &high) || high == 0 || (high >= 0xdc00 && high < 0xe000))
    return 0;
  if (high < 0xd800 || high >= 0xdc00)
    return high;
  if (end - *p < 2 || (*p)[0] != '\\' || (*p)[1] != 'u')
    return 0;
  *p += 2;
  if (!read_hex4 (p, end, &low) || low < 0xdc00 || low >= 0xe000)
    return 0;
  return 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
}

/* Decodes the JSON string literal whose opening quote is at @p into @out.
 * Returns the byte after its closing quote, or NULL when it is not one that
 * jansson would turn into the same C string: unterminated before @end, a raw
 * control character, a bad escape, \u0000, a lone surrogate, invalid UTF-8.
 * Those are left to jansson. */
static const char *
decode_string_literal (const char *p,
                       const char *end,
                       GString    *out)
{
  static const char simple_escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";

  g_string_truncate (out, 0);
  for (p++; p < end;)
    {
      const char *run = p;
      const char *escape;

      while (p < end && *p != '"' && *p != '\\' && (guchar) *p >= 0x20)
        p++;
      g_string_append_len (out, run, p - run);
      if (p == end || (guchar) *p < 0x20)
        return NULL;
      if (*p == '"')
        return g_utf8_validate_len (out->str, out->len, NULL) ? p + 1 : NULL;
      if (++p == end)
        return NULL;
      if (*p == 'u')
        {
          gunichar c;

          p++;
          c = read_unicode_escape (&p, end);
          if (c == 0)
            return NULL;
          g_string_append_unichar (out, c);
          continue;
        }
      for (escape = simple_escapes; *escape != '\0' && *escape != *p; escape += 2)
        ;
      if (*escape == '\0')
        return NULL;
      g_string_append_c (out, escape[1]);
      p++;
    }
  return NULL;
}

gboolean
chime_token_template_learn (ChimeTokenTemplate *template,
                            const char         *event_type,
                            const char         *data,
                            gsize               length,
                            const char         *token)
{
  const char *end = data + length;
  const char *p = data;
  gsize token_len = strlen (token);
  guint matches = 0;

  template->valid = FALSE;
  /* The data is a JSON text jansson accepted, so outside string literals
   * there is no quote: each quote found starts a literal. */
  while ((p = memchr (p, '"', end - p)) != NULL)
    {
      const char *after = decode_string_literal (p, end, template->token);

      if (after == NULL)
        return FALSE;
      if (template->token->len == token_len && memcmp (template->token->str, token, token_len) == 0)
        {
          /* The same text twice (a token that is also the model's name):
           * which one was the token cannot be told. */
          if (++matches > 1)
            return FALSE;
          template->start = p - data;
          template->end = after - data;
        }
      p = after;
    }
  if (matches != 1)
    return FALSE;
  g_string_truncate (template->data, 0);
  g_string_append_len (template->data, data, length);
  if (g_strcmp0 (template->event_type, event_type) != 0)
    {
      g_free (template->event_type);
      template->event_type = g_strdup (event_type);
    }
  template->valid = TRUE;
  return TRUE;
}

const char *
chime_token_template_match (ChimeTokenTemplate *template,
                            const char         *event_type,
                            const char         *data,
                            gsize               length)
{
  const char *old = template->data->str;
  gsize suffix_len = template->data->len - template->end;
  const char *literal_end = data + length - suffix_len;

  if (!template->valid || length < template->start + suffix_len + 2 ||
      data[template->start] != '"' ||
      memcmp (data, old, template->start) != 0 ||
      memcmp (literal_end, old + template->end, suffix_len) != 0 ||
      strcmp (event_type, template->event_type) != 0)
    return NULL;
  /* The whole middle must be one literal: `"a","b"` ends early. */
  if (decode_string_literal (data + template->start, literal_end, template->token) != literal_end ||
      template->token->len == 0)
    return NULL;
  return template->token->str;
}

/* ------------------------------------------------------------------
 * A stream
 * ---------------------------------------------------------------- */

typedef enum {
  ACTION_NONE,
  ACTION_ATTEMPT,   /* the backoff is over: try again */
  ACTION_FINISH,    /* report the end through on_done */
} Action;

struct _ChimeModelStream {
  ChimeProviderModel        *model;
  const ChimeProviderOps    *ops;
  const ChimeModelCallbacks *callbacks;
  gpointer                   user_data;
  GMainContext              *context;
  GSource                   *source;
  Action                     action;

  char                      *url;
  char                      *body;
  char                     **headers;
  char                      *api_key;         /* kept only to scrub messages */

  ChimeHttpTransfer         *transfer;
  guint                      attempts;
  gdouble                    slept;           /* seconds of backoff so far */
  guint64                    n_tokens;
  gboolean                   paused;
  gboolean                   cancelled;
  GError                    *error;           /* how the stream ends */

  /* The attempt in progress. */
  guint                      status;
  GString                   *error_body;
  ChimeSseParser            *parser;
  ChimeTokenTemplate        *template;
  gboolean                   template_armed;  /* it holds an event */
  guint                      template_misses; /* armed, then missed, in a row */
  GString                   *last_token;      /* of the event being handled */
  gboolean                   terminated;
  GError                    *stream_error;    /* a failure inside a 2xx stream */
  gdouble                    retry_after;
  char                      *should_retry;

  gpointer                   state;
};

static void start_attempt (ChimeModelStream *stream);

static GError *
model_error (const char *format,
             ...) G_GNUC_PRINTF (1, 2);

static GError *
model_error (const char *format,
             ...)
{
  GError *error;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL, format, args);
  va_end (args);
  return error;
}

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
  g_clear_pointer (&stream->parser, chime_sse_parser_free);
  g_clear_pointer (&stream->template, chime_token_template_free);
  if (stream->last_token != NULL)
    g_string_free (stream->last_token, TRUE);
  g_clear_error (&stream->stream_error);
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
  if (stream->action == ACTION_FINISH)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL && stream->api_key != NULL)
    {
      char *scrubbed = scrub (error->message, stream->api_key);

      g_free (error->message);
      error->message = scrubbed;
    }
  stream->error = error;
  stream->action = ACTION_FINISH;
  g_source_set_ready_time (stream->source, 0);
}

static void
report_done (ChimeModelStream *stream)
{
  ChimeModelResult result = { 0 };

  stream->ops->fill_result (stream->model, stream->state, &result);
  stream->callbacks->on_done (&result, stream->error, stream->user_data);
  g_clear_pointer (&result.response_metadata, json_decref);
  g_clear_pointer (&result.usage_metadata, json_decref);
  g_clear_pointer (&result.generation_info, json_decref);
  stream_free (stream);
}

static gboolean
stream_dispatch (GSource    *source,
                 GSourceFunc callback,
                 gpointer    user_data)
{
  ChimeModelStream *stream = user_data;
  Action action = stream->action;

  g_source_set_ready_time (source, -1);
  stream->action = ACTION_NONE;
  if (action == ACTION_FINISH)
    report_done (stream);   /* frees the stream and its source */
  else if (action == ACTION_ATTEMPT)
    start_attempt (stream);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs stream_source_funcs = {
  .dispatch = stream_dispatch,
};

/* The API key, read now rather than at configuration, so that checking a
 * file needs no key. Messages name where the key should be, never it. */
static char *
load_api_key (ChimeProviderModel *model,
              GError            **error)
{
  const char *name = model->ops->name;
  g_autofree char *key = NULL;

  if (model->api_key_file != NULL)
    {
      g_autoptr (GError) local = NULL;

      if (!g_file_get_contents (model->api_key_file, &key, NULL, &local))
        {
          *error = model_error ("%s: cannot read the API key (api_key_file in [%s]): %s", name,
                                model->section, local->message);
          return NULL;
        }
      g_strstrip (key);
      if (key[0] == '\0')
        {
          *error = model_error ("%s: the API key file %s (api_key_file in [%s]) is empty", name,
                                model->api_key_file, model->section);
          return NULL;
        }
    }
  else if (model->api_key_env[0] == '\0')
    return g_strdup ("");   /* `api_key_env =`: send none */
  else
    {
      const char *value = g_getenv (model->api_key_env);

      if (value == NULL || value[0] == '\0')
        {
          *error = model_error ("%s: no API key: set %s (api_key_env) or api_key_file in [%s]", name,
                                model->api_key_env, model->section);
          return NULL;
        }
      key = g_strstrip (g_strdup (value));
    }
  if (strpbrk (key, "\r\n") != NULL)
    {
      *error = model_error ("%s: the API key from %s has a line break in it", name,
                            model->api_key_file != NULL ? model->api_key_file : model->api_key_env);
      return NULL;
    }
  return g_steal_pointer (&key);
}

static gboolean
header_has_name (const char *header,
                 const char *other)
{
  gsize length = strcspn (other, ":");

  return g_ascii_strncasecmp (header, other, length) == 0 && header[length] == ':';
}

/* The provider's headers, then the configured ones, each replacing a
 * provider header of the same name. */
static char **
build_headers (ChimeProviderModel *model,
               const char         *api_key)
{
  GPtrArray *headers = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (headers, g_strdup ("Content-Type: application/json"));
  g_ptr_array_add (headers, g_strdup ("Accept: text/event-stream"));
  model->ops->add_headers (model, api_key, headers);
  for (guint i = 0; model->headers[i] != NULL; i++)
    {
      for (guint j = headers->len; j-- > 0;)
        if (header_has_name (g_ptr_array_index (headers, j), model->headers[i]))
          g_ptr_array_remove_index (headers, j);
      g_ptr_array_add (headers, g_strdup (model->headers[i]));
    }
  g_ptr_array_add (headers, NULL);
  return (char **) g_ptr_array_free (headers, FALSE);
}

static gboolean
prepare (ChimeModelStream *stream,
         json_t           *messages,
         GError          **error)
{
  ChimeProviderModel *model = stream->model;
  g_autoptr (json_t) body = NULL;
  char *text;

  stream->api_key = load_api_key (model, error);
  if (stream->api_key == NULL)
    return FALSE;
  body = stream->ops->build_body (model, messages, error);
  if (body == NULL)
    return FALSE;
  if (model->extra_body != NULL)
    json_object_update (body, model->extra_body);
  text = json_dumps (body, JSON_COMPACT);
  stream->body = g_strdup (text);
  free (text);
  stream->headers = build_headers (model, stream->api_key);
  stream->url = g_strconcat (model->base_url, stream->ops->endpoint, NULL);
  return TRUE;
}

ChimeModelStream *
chime_provider_stream (ChimeModel                *model,
                       json_t                    *messages,
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
  if (!prepare (stream, messages, &error))
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
  if (stream->cancelled || stream->action == ACTION_FINISH)
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
 * Events of a 2xx stream
 * ---------------------------------------------------------------- */

void
chime_provider_stream_token (ChimeModelStream *stream,
                             const char       *text)
{
  g_return_if_fail (!stream->paused);

  stream->n_tokens++;
  if (stream->last_token != NULL)
    g_string_assign (stream->last_token, text);
  if (!stream->callbacks->on_chunk (text, NULL, stream->user_data))
    stream->paused = TRUE;
}

void
chime_provider_stream_terminate (ChimeModelStream *stream)
{
  stream->terminated = TRUE;
}

void
chime_provider_stream_fail (ChimeModelStream *stream,
                            const char       *format,
                            ...)
{
  g_autofree char *message = NULL;
  va_list args;

  if (stream->stream_error != NULL)
    return;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  stream->stream_error = model_error ("%s: %s", stream->ops->name, message);
}

json_t *
chime_provider_stream_parse (ChimeModelStream    *stream,
                             const ChimeSseEvent *event)
{
  json_error_t error;
  json_t *json = json_loadb (event->data, event->data_len, 0, &error);

  if (!json_is_object (json))
    {
      g_autofree char *quoted = quote_text (event->data, event->data_len, MAX_QUOTED_BODY);

      chime_provider_stream_fail (stream, "the stream sent an event that is not a JSON object (%s): %s",
                                  json == NULL ? error.text : "not an object", quoted);
      if (json != NULL)
        json_decref (json);
      return NULL;
    }
  return json;
}

/* Hands @event to the provider, and makes a template of it when it
 * yielded a token. The template is made from this event or none: an event
 * handled in full may have changed the state, and the contract that lets
 * a template skip handle_event holds only right after its own event. */
static void
handle_in_full (ChimeModelStream    *stream,
                const ChimeSseEvent *event)
{
  guint64 n_tokens = stream->n_tokens;
  gboolean learn = stream->template_misses < MAX_TEMPLATE_MISSES;

  /* chime_provider_stream_token() keeps a copy only for learning. */
  if (learn && stream->last_token == NULL)
    stream->last_token = g_string_new (NULL);
  else if (!learn && stream->last_token != NULL)
    {
      g_string_free (stream->last_token, TRUE);
      stream->last_token = NULL;
    }
  stream->ops->handle_event (stream, stream->state, event);
  if (learn && stream->n_tokens == n_tokens + 1 && stream->stream_error == NULL && !stream->terminated)
    stream->template_armed = chime_token_template_learn (stream->template, event->event, event->data,
                                                         event->data_len, stream->last_token->str);
}

static void
on_sse_event (const ChimeSseEvent *event,
              gpointer             user_data)
{
  ChimeModelStream *stream = user_data;

  /* After the end, an error or a pause, nothing more is looked at: the
   * line-by-line feeding stops right after such an event anyway. */
  if (stream->terminated || stream->stream_error != NULL || stream->cancelled)
    return;
  if (stream->template_armed)
    {
      const char *token = chime_token_template_match (stream->template, event->event, event->data,
                                                      event->data_len);

      if (token != NULL)
        {
          stream->template_misses = 0;
          chime_provider_stream_token (stream, token);
          return;
        }
      stream->template_armed = FALSE;
      stream->template_misses++;
    }
  handle_in_full (stream, event);
}

/* Feeds the parser line by line and stops after the line that paused the
 * consumer (or ended the stream). Returns how many bytes were used. */
static gsize
feed_lines (ChimeModelStream *stream,
            const char       *data,
            gsize             length)
{
  const char *end = data + length;
  const char *p = data;

  while (p < end && !stream->paused && !stream->terminated && stream->stream_error == NULL &&
         !stream->cancelled)
    {
      /* memchr rather than a loop over the bytes, which cost as much as
       * all the rest of a token's way through here. */
      const char *lf = memchr (p, '\n', end - p);
      const char *cr = memchr (p, '\r', (lf != NULL ? lf : end) - p);
      const char *eol = cr != NULL ? cr + 1 : lf != NULL ? lf + 1 : end;
      const GError *error;

      chime_sse_parser_feed (stream->parser, p, eol - p);
      p = eol;
      error = chime_sse_parser_get_error (stream->parser);
      if (error != NULL)
        chime_provider_stream_fail (stream, "the event stream is malformed: %s", error->message);
    }
  return p - data;
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

  stream->status = status;
  if (!is_success (status))
    {
      stream->error_body = g_string_new (NULL);
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
  stream->parser = chime_sse_parser_new (on_sse_event, stream);
  if (stream->template == NULL)
    stream->template = chime_token_template_new ();
  chime_token_template_forget (stream->template);
  stream->template_armed = FALSE;
  stream->template_misses = 0;
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
  *consumed = feed_lines (stream, data, length);
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
    return model_error ("%s: the stream stalled: nothing received for %g s (timeout_s in [%s])",
                        stream->ops->name, model->timeout_s, model->section);
  return model_error ("%s: the stream ended before its terminator (%s)%s%s", stream->ops->name,
                      stream->ops->terminator, error != NULL ? ": " : "",
                      error != NULL ? error->message : "");
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

      finish (stream, model_error ("%s: %s%s", stream->ops->name, message, suffix));
      return;
    }
  if (stream->callbacks->on_retry != NULL)
    {
      g_autofree char *full = g_strdup_printf ("%s: %s", stream->ops->name, message);
      g_autofree char *scrubbed = scrub (full, stream->api_key);
      g_autoptr (json_t) state = retry_state (stream, scrubbed,
                                              chime_provider_exception_type (stream->status), delay);

      stream->callbacks->on_retry (state, stream->user_data);
      if (stream->cancelled)
        return;   /* on_retry cancelled and so finished the stream */
    }
  stream->slept += delay;
  stream->action = ACTION_ATTEMPT;
  g_source_set_ready_time (stream->source, g_get_monotonic_time () + (gint64) (delay * G_USEC_PER_SEC));
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
      message = chime_provider_describe_http_error (stream->status,
                                                    stream->error_body ? stream->error_body->str : NULL,
                                                    stream->error_body ? stream->error_body->len : 0);
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
  stream->transfer = chime_http_transfer_start (stream->context, &request, &http_callbacks, stream);
}
