/* otlp — settings from the handler's keys and the OTEL_* environment
 * variables (specification/protocol/exporter.md and the SDK
 * environment-variable specification). */
#include "otlp-settings.h"

#include <string.h>

#define DEFAULT_ENDPOINT "http://localhost:4318"
#define TRACES_PATH "/v1/traces"

static const char *const protocols[] = { "http/protobuf", "http/json", NULL };
static const char *const compressions[] = { "none", "gzip", NULL };

const ChimeConfigKey otlp_config_keys[] = {
  { "endpoint", CHIME_CONFIG_STRING, NULL,
    "the URL spans are POSTed to, used as is (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
    "else $OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else http://localhost:4318/v1/traces)" },
  { "protocol", CHIME_CONFIG_CHOICE, NULL,
    "http/protobuf or http/json (default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "
    "$OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)", 0, protocols },
  { "headers", CHIME_CONFIG_STRING, NULL,
    "request headers as k1=v1,k2=v2 (default: $OTEL_EXPORTER_OTLP_TRACES_HEADERS, $OTEL_EXPORTER_OTLP_HEADERS)" },
  { "timeout", CHIME_CONFIG_INT, NULL,
    "milliseconds one export may take, its retries included (default: $OTEL_EXPORTER_OTLP_TIMEOUT, else 10000)" },
  { "compression", CHIME_CONFIG_CHOICE, NULL,
    "none or gzip (default: $OTEL_EXPORTER_OTLP_COMPRESSION, else none)", 0, compressions },
  { "service_name", CHIME_CONFIG_STRING, NULL,
    "the resource's service.name (default: $OTEL_SERVICE_NAME, service.name in "
    "$OTEL_RESOURCE_ATTRIBUTES, else chime)" },
  { "capture_content", CHIME_CONFIG_BOOL, "false",
    "record messages and tool arguments as gen_ai.input.messages / gen_ai.output.messages (sensitive)" },
  { "max_queue_size", CHIME_CONFIG_INT, NULL,
    "finished spans kept for export; more are dropped and counted (default: $OTEL_BSP_MAX_QUEUE_SIZE, else 2048)" },
  { "max_export_batch_size", CHIME_CONFIG_INT, NULL,
    "spans per request (default: $OTEL_BSP_MAX_EXPORT_BATCH_SIZE, else 512)" },
  { "schedule_delay_ms", CHIME_CONFIG_INT, NULL,
    "the longest a finished span waits for its batch (default: $OTEL_BSP_SCHEDULE_DELAY, else 5000)" },
  { "export_timeout_ms", CHIME_CONFIG_INT, NULL,
    "how long the end of the run waits for the last exports (default: $OTEL_BSP_EXPORT_TIMEOUT, else 30000)" },
  { NULL }
};

/* %XX escapes undone (W3C baggage values may use them). */
static char *
percent_decode (const char *text)
{
  char *decoded = g_uri_unescape_string (text, NULL);

  return decoded != NULL ? decoded : g_strdup (text);
}

gboolean
otlp_parse_pairs (const char  *text,
                  const char  *what,
                  GPtrArray   *pairs,
                  GError     **error)
{
  g_auto (GStrv) members = g_strsplit (text, ",", -1);

  for (guint i = 0; members[i] != NULL; i++)
    {
      char *member = g_strstrip (members[i]);
      char *equals = strchr (member, '=');
      g_autofree char *key = NULL;

      if (member[0] == '\0')
        continue;
      if (equals == NULL || equals == member)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "%s: \"%s\" is not key=value (write k1=v1,k2=v2)", what, member);
          return FALSE;
        }
      key = g_strndup (member, equals - member);
      g_ptr_array_add (pairs, percent_decode (g_strstrip (key)));
      g_ptr_array_add (pairs, percent_decode (g_strstrip (equals + 1)));
    }
  return TRUE;
}

/* The key's value, else the first set variable of @env (NULL-terminated),
 * else NULL; *@out_source names where it came from. */
static const char *
key_or_env (ChimeHandlerContext *context,
            const char          *key,
            const char * const  *env,
            char               **out_source)
{
  if (chime_handler_context_has_key (context, key))
    {
      *out_source = g_strdup_printf ("key '%s' of [handler %s]", key, chime_handler_context_get_name (context));
      return chime_handler_context_get_string (context, key);
    }
  for (guint i = 0; env[i] != NULL; i++)
    {
      const char *value = g_getenv (env[i]);

      if (value != NULL && value[0] != '\0')
        {
          *out_source = g_strdup (env[i]);
          return value;
        }
    }
  *out_source = NULL;
  return NULL;
}

/* A positive number of milliseconds (or spans) from the key, the variable
 * or @fallback. */
static gboolean
read_count (ChimeHandlerContext *context,
            const char          *key,
            const char          *variable,
            guint                fallback,
            guint               *out,
            GError             **error)
{
  const char *text;
  guint64 value;

  if (chime_handler_context_has_key (context, key))
    {
      gint64 number = chime_handler_context_get_int (context, key);

      if (number <= 0 || number > G_MAXINT32)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "key '%s' must be a positive number, not %" G_GINT64_FORMAT, key, number);
          return FALSE;
        }
      *out = number;
      return TRUE;
    }
  text = g_getenv (variable);
  if (text == NULL || text[0] == '\0')
    {
      *out = fallback;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT32, &value, NULL))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "%s must be a positive number, not \"%s\"", variable, text);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

static gboolean
read_endpoint (ChimeHandlerContext *context,
               OtlpSettings        *self,
               GError             **error)
{
  const char *base = g_getenv ("OTEL_EXPORTER_OTLP_ENDPOINT");
  const char *traces = g_getenv ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const char *source = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  g_autoptr (GUri) uri = NULL;

  if (chime_handler_context_has_key (context, "endpoint"))
    {
      self->endpoint = g_strdup (chime_handler_context_get_string (context, "endpoint"));
      source = "key 'endpoint'";
    }
  else if (traces != NULL && traces[0] != '\0')
    self->endpoint = g_strdup (traces);
  else
    {
      /* The signal's path is appended to the base, whatever it ends with. */
      g_autofree char *trimmed = g_strdup (base != NULL && base[0] != '\0' ? base : DEFAULT_ENDPOINT);
      gsize length = strlen (trimmed);

      while (length > 0 && trimmed[length - 1] == '/')
        trimmed[--length] = '\0';
      self->endpoint = g_strconcat (trimmed, TRACES_PATH, NULL);
      source = "OTEL_EXPORTER_OTLP_ENDPOINT";
    }
  uri = g_uri_parse (self->endpoint, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 &&
                      g_strcmp0 (g_uri_get_scheme (uri), "https") != 0))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "%s: \"%s\" is not an http:// or https:// URL", source, self->endpoint);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_choices (ChimeHandlerContext *context,
              OtlpSettings        *self,
              GError             **error)
{
  static const char *const protocol_env[] = { "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", NULL };
  static const char *const compression_env[] = { "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION", NULL };
  g_autofree char *source = NULL;
  const char *protocol = key_or_env (context, "protocol", protocol_env, &source);
  const char *compression;

  if (protocol != NULL && !g_strv_contains (protocols, protocol))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "%s: protocol \"%s\" is not supported (use http/protobuf or http/json)", source, protocol);
      return FALSE;
    }
  self->json = g_strcmp0 (protocol, "http/json") == 0;
  g_clear_pointer (&source, g_free);
  compression = key_or_env (context, "compression", compression_env, &source);
  if (compression != NULL && !g_strv_contains (compressions, compression))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "%s: compression \"%s\" is not supported (use none or gzip)", source, compression);
      return FALSE;
    }
  self->gzip = g_strcmp0 (compression, "gzip") == 0;
  return TRUE;
}

static gboolean
read_headers (ChimeHandlerContext *context,
              OtlpSettings        *self,
              GError             **error)
{
  static const char *const env[] = { "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", NULL };
  g_autofree char *source = NULL;
  const char *text = key_or_env (context, "headers", env, &source);
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *lines = g_ptr_array_new ();

  if (text != NULL && !otlp_parse_pairs (text, source, pairs, error))
    {
      g_ptr_array_unref (lines);
      return FALSE;
    }
  for (guint i = 0; i + 1 < pairs->len; i += 2)
    {
      const char *name = pairs->pdata[i], *value = pairs->pdata[i + 1];

      /* A header line cannot hold a line break: it would start another. */
      if (strpbrk (name, "\r\n:") != NULL || strpbrk (value, "\r\n") != NULL)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "%s: header \"%s\" has a line break or a colon in its name", source, name);
          g_ptr_array_free (lines, TRUE);
          return FALSE;
        }
      g_ptr_array_add (lines, g_strdup_printf ("%s: %s", name, value));
    }
  g_ptr_array_add (lines, NULL);
  self->headers = (char **) g_ptr_array_free (lines, FALSE);
  return TRUE;
}

/* service.name by precedence (key, OTEL_SERVICE_NAME, the attributes'
 * own, "chime"), then OTEL_RESOURCE_ATTRIBUTES and the SDK's name. */
static gboolean
read_resource (ChimeHandlerContext *context,
               OtlpSettings        *self,
               GError             **error)
{
  const char *attributes = g_getenv ("OTEL_RESOURCE_ATTRIBUTES");
  const char *service = g_getenv ("OTEL_SERVICE_NAME");
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (g_free);

  self->resource = otlp_attributes_new ();
  otlp_attributes_set_string (self->resource, "service.name", "chime");
  if (attributes != NULL && !otlp_parse_pairs (attributes, "OTEL_RESOURCE_ATTRIBUTES", pairs, error))
    return FALSE;
  for (guint i = 0; i + 1 < pairs->len; i += 2)
    otlp_attributes_set_string (self->resource, pairs->pdata[i], pairs->pdata[i + 1]);
  if (service != NULL && service[0] != '\0')
    otlp_attributes_set_string (self->resource, "service.name", service);
  if (chime_handler_context_has_key (context, "service_name"))
    otlp_attributes_set_string (self->resource, "service.name",
                                chime_handler_context_get_string (context, "service_name"));
  otlp_attributes_set_string (self->resource, "telemetry.sdk.name", "chime");
  otlp_attributes_set_string (self->resource, "telemetry.sdk.language", "c");
  otlp_attributes_set_string (self->resource, "telemetry.sdk.version", CHIME_VERSION_STRING);
  return TRUE;
}

OtlpSettings *
otlp_settings_new (ChimeHandlerContext *context,
                   GError             **error)
{
  g_autoptr (OtlpSettings) self = g_new0 (OtlpSettings, 1);

  self->capture_content = chime_handler_context_get_bool (context, "capture_content");
  if (!read_endpoint (context, self, error) ||
      !read_choices (context, self, error) ||
      !read_headers (context, self, error) ||
      !read_resource (context, self, error) ||
      !read_count (context, "timeout", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0, &self->timeout_ms, error) ||
      (self->timeout_ms == 0 &&
       !read_count (context, "timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", 10000, &self->timeout_ms, error)) ||
      !read_count (context, "max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", 2048, &self->max_queue_size, error) ||
      !read_count (context, "max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512,
                   &self->max_export_batch_size, error) ||
      !read_count (context, "schedule_delay_ms", "OTEL_BSP_SCHEDULE_DELAY", 5000, &self->schedule_delay_ms, error) ||
      !read_count (context, "export_timeout_ms", "OTEL_BSP_EXPORT_TIMEOUT", 30000, &self->export_timeout_ms, error))
    return NULL;
  /* As the SDKs do: a batch never exceeds the queue. */
  self->max_export_batch_size = MIN (self->max_export_batch_size, self->max_queue_size);
  return g_steal_pointer (&self);
}

void
otlp_settings_free (OtlpSettings *settings)
{
  if (settings == NULL)
    return;
  g_free (settings->endpoint);
  g_strfreev (settings->headers);
  otlp_attributes_free (settings->resource);
  g_free (settings);
}
