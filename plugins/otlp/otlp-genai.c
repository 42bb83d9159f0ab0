/* otlp — GenAI attributes from chime's events (see otlp-genai.h). */
#include "otlp-genai.h"

#include <string.h>

/* LangChain's _type of the invocation params, or its ls_provider, to the
 * semconv's gen_ai.provider.name (custom values are allowed). */
static const char *
provider_name (json_t *params,
               json_t *metadata)
{
  const char *provider = json_string_value (json_object_get (metadata, "ls_provider"));
  const char *type = json_string_value (json_object_get (params, "_type"));

  if (provider != NULL)
    return provider;
  if (g_strcmp0 (type, "openai-chat") == 0 || g_strcmp0 (type, "openai") == 0)
    return "openai";
  if (g_strcmp0 (type, "anthropic-chat") == 0)
    return "anthropic";
  if (g_strcmp0 (type, "fake-chat-model") == 0)
    return "fake";
  return type != NULL ? type : "unknown";
}

static const char *
request_model (json_t             *params,
               json_t             *metadata,
               const ChimeRunInfo *info)
{
  const char *model = json_string_value (json_object_get (params, "model"));

  if (model == NULL)
    model = json_string_value (json_object_get (params, "model_name"));
  if (model == NULL)
    model = json_string_value (json_object_get (metadata, "ls_model_name"));
  return model != NULL ? model : chime_run_info_get_name (info);
}

/* server.address and server.port from the base URL, never the URL itself
 * (it may carry credentials). */
static void
set_server (OtlpAttributes *attributes,
            const char     *base_url)
{
  g_autoptr (GUri) uri = base_url != NULL ? g_uri_parse (base_url, G_URI_FLAGS_NONE, NULL) : NULL;
  int port;

  if (uri == NULL || g_uri_get_host (uri) == NULL)
    return;
  port = g_uri_get_port (uri);
  if (port < 0)
    port = g_strcmp0 (g_uri_get_scheme (uri), "https") == 0 ? 443 : 80;
  otlp_attributes_set_string (attributes, "server.address", g_uri_get_host (uri));
  otlp_attributes_set_int (attributes, "server.port", port);
}

static void
set_stop_sequences (OtlpAttributes *attributes,
                    json_t         *stop)
{
  g_autoptr (GPtrArray) strings = g_ptr_array_new ();
  size_t i;
  json_t *item;

  if (json_is_string (stop))
    g_ptr_array_add (strings, (gpointer) json_string_value (stop));
  json_array_foreach (stop, i, item)
    if (json_is_string (item))
      g_ptr_array_add (strings, (gpointer) json_string_value (item));
  if (strings->len == 0)
    return;
  g_ptr_array_add (strings, NULL);
  otlp_attributes_set_strv (attributes, "gen_ai.request.stop_sequences", (const char * const *) strings->pdata);
}

/* LangChain's message types to the semconv's roles. */
static const char *
role_of (const char *type)
{
  if (g_strcmp0 (type, "human") == 0)
    return "user";
  if (g_strcmp0 (type, "ai") == 0 || g_strcmp0 (type, "AIMessageChunk") == 0)
    return "assistant";
  return type != NULL ? type : "user";
}

/* Messages as gen_ai.input.messages / gen_ai.output.messages write them:
 * [{"role", "parts": [{"type": "text", "content"}]}], as JSON text. */
static void
add_message (json_t     *messages,
             const char *role,
             const char *content)
{
  json_array_append_new (messages, json_pack ("{s:s, s:[{s:s, s:s}]}", "role", role, "parts",
                                              "type", "text", "content", content != NULL ? content : ""));
}

static void
set_json_text (OtlpAttributes *attributes,
               const char     *key,
               json_t         *json)
{
  g_autofree char *text = json_dumps (json, JSON_COMPACT | JSON_ENCODE_ANY);

  otlp_attributes_set_string (attributes, key, text);
}

static void
set_input_messages (OtlpAttributes *attributes,
                    ChimeEvent     *event)
{
  g_autoptr (json_t) messages = json_array ();
  json_t *lists = chime_event_get_messages (event);
  json_t *prompts = chime_event_get_prompts (event);
  size_t i, j;
  json_t *list, *message;

  if (lists != NULL)
    json_array_foreach (lists, i, list)
      json_array_foreach (list, j, message)
        add_message (messages, role_of (json_string_value (json_object_get (message, "type"))),
                     json_string_value (json_object_get (message, "content")));
  else
    json_array_foreach (prompts, i, message)
      add_message (messages, "user", json_string_value (message));
  set_json_text (attributes, "gen_ai.input.messages", messages);
}

static void
start_model (OtlpSpan   *span,
             ChimeEvent *event,
             gboolean    capture_content)
{
  const ChimeRunInfo *info = chime_event_get_run (event);
  json_t *params = json_object_get (chime_event_get_kwargs (event), "invocation_params");
  json_t *metadata = chime_run_info_get_metadata (info);
  const char *operation = chime_event_get_event_type (event) == CHIME_EVENT_CHAT_MODEL_START
                          ? "chat" : "text_completion";
  const char *model = request_model (params, metadata, info);
  json_t *temperature = json_object_get (params, "temperature");
  json_t *max_tokens = json_object_get (params, "max_tokens");

  g_free (span->name);
  span->name = g_strdup_printf ("%s %s", operation, model);
  span->kind = OTLP_SPAN_KIND_CLIENT;
  otlp_attributes_set_string (span->attributes, "gen_ai.operation.name", operation);
  otlp_attributes_set_string (span->attributes, "gen_ai.provider.name", provider_name (params, metadata));
  otlp_attributes_set_string (span->attributes, "gen_ai.request.model", model);
  if (json_is_number (temperature))
    otlp_attributes_set_double (span->attributes, "gen_ai.request.temperature", json_number_value (temperature));
  if (json_is_integer (max_tokens))
    otlp_attributes_set_int (span->attributes, "gen_ai.request.max_tokens", json_integer_value (max_tokens));
  set_stop_sequences (span->attributes, json_object_get (params, "stop"));
  /* Conditionally required "if and only if the request is streaming". */
  if (json_is_true (json_object_get (params, "stream")))
    otlp_attributes_set_bool (span->attributes, "gen_ai.request.stream", TRUE);
  set_server (span->attributes, json_string_value (json_object_get (params, "base_url")));
  if (capture_content)
    set_input_messages (span->attributes, event);
}

void
otlp_genai_start (OtlpSpan   *span,
                  ChimeEvent *event,
                  gboolean    capture_content)
{
  const ChimeRunInfo *info = chime_event_get_run (event);
  const char *name = chime_run_info_get_name (info);

  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_LLM_START:
    case CHIME_EVENT_CHAT_MODEL_START:
      start_model (span, event, capture_content);
      break;
    case CHIME_EVENT_TOOL_START:
      g_free (span->name);
      span->name = g_strdup_printf ("execute_tool %s", name);
      otlp_attributes_set_string (span->attributes, "gen_ai.operation.name", "execute_tool");
      otlp_attributes_set_string (span->attributes, "gen_ai.tool.name", name);
      if (capture_content && chime_event_get_text (event) != NULL)
        otlp_attributes_set_string (span->attributes, "gen_ai.tool.call.arguments", chime_event_get_text (event));
      break;
    default:
      break;
    }
}

/* A message, plain or dumpd-serialized (its fields under "kwargs"). */
static json_t *
message_get (json_t     *message,
             const char *field)
{
  json_t *value = json_object_get (message, field);

  return value != NULL ? value : json_object_get (json_object_get (message, "kwargs"), field);
}

static void
set_finish_reasons (OtlpAttributes *attributes,
                    json_t         *generations)
{
  g_autoptr (GPtrArray) reasons = g_ptr_array_new ();
  size_t i, j;
  json_t *list, *generation;

  json_array_foreach (generations, i, list)
    json_array_foreach (list, j, generation)
      {
        json_t *metadata = message_get (json_object_get (generation, "message"), "response_metadata");
        const char *reason = json_string_value (json_object_get (json_object_get (generation, "generation_info"),
                                                                 "finish_reason"));

        if (reason == NULL)
          reason = json_string_value (json_object_get (metadata, "finish_reason"));
        if (reason == NULL)
          reason = json_string_value (json_object_get (metadata, "stop_reason"));
        if (reason != NULL)
          g_ptr_array_add (reasons, (gpointer) reason);
      }
  if (reasons->len == 0)
    return;
  g_ptr_array_add (reasons, NULL);
  otlp_attributes_set_strv (attributes, "gen_ai.response.finish_reasons", (const char * const *) reasons->pdata);
}

static void
set_int_if (OtlpAttributes *attributes,
            const char     *key,
            json_t         *value)
{
  if (json_is_integer (value))
    otlp_attributes_set_int (attributes, key, json_integer_value (value));
}

static void
end_model (OtlpSpan   *span,
           json_t     *response,
           gboolean    capture_content)
{
  json_t *generations = json_object_get (response, "generations");
  json_t *first = json_array_get (json_array_get (generations, 0), 0);
  json_t *message = json_object_get (first, "message");
  json_t *metadata = message_get (message, "response_metadata");
  json_t *usage = message_get (message, "usage_metadata");
  json_t *details = json_object_get (usage, "input_token_details");
  const char *model = json_string_value (json_object_get (metadata, "model_name"));
  const char *id = json_string_value (json_object_get (metadata, "id"));
  g_autoptr (json_t) output = NULL;

  if (response == NULL)
    return;
  if (id != NULL)
    otlp_attributes_set_string (span->attributes, "gen_ai.response.id", id);
  if (model != NULL)
    otlp_attributes_set_string (span->attributes, "gen_ai.response.model", model);
  set_finish_reasons (span->attributes, generations);
  /* LangChain's input_tokens already include the cached ones, as the
   * semconv wants them. */
  set_int_if (span->attributes, "gen_ai.usage.input_tokens", json_object_get (usage, "input_tokens"));
  set_int_if (span->attributes, "gen_ai.usage.output_tokens", json_object_get (usage, "output_tokens"));
  set_int_if (span->attributes, "gen_ai.usage.cache_read.input_tokens", json_object_get (details, "cache_read"));
  set_int_if (span->attributes, "gen_ai.usage.cache_creation.input_tokens",
              json_object_get (details, "cache_creation"));
  if (capture_content && first != NULL)
    {
      output = json_array ();
      add_message (output, "assistant", json_string_value (json_object_get (first, "text")));
      set_json_text (span->attributes, "gen_ai.output.messages", output);
    }
}

void
otlp_genai_end (OtlpSpan   *span,
                ChimeEvent *event,
                gboolean    capture_content)
{
  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_LLM_END:
    case CHIME_EVENT_LLM_ERROR:
      end_model (span, chime_event_get_response (event), capture_content);
      break;
    case CHIME_EVENT_TOOL_END:
      if (capture_content && chime_event_get_outputs (event) != NULL)
        set_json_text (span->attributes, "gen_ai.tool.call.result", chime_event_get_outputs (event));
      break;
    default:
      break;
    }
}

/* error.type: the HTTP status a provider's message quotes ("openai:
 * HTTP 429 ..."), as the semconv suggests, else the error's domain. */
static char *
error_type (const GError *error)
{
  const char *http = strstr (error->message, "HTTP ");
  guint64 status;
  g_autofree char *digits = NULL;

  if (http != NULL)
    {
      digits = g_strndup (http + 5, 3);
      if (g_ascii_string_to_unsigned (digits, 10, 100, 599, &status, NULL))
        return g_steal_pointer (&digits);
    }
  return g_strdup (g_quark_to_string (error->domain));
}

void
otlp_genai_error (OtlpSpan   *span,
                  ChimeEvent *event)
{
  const GError *error = chime_event_get_error (event);
  const char *message = error != NULL ? error->message : "failed";
  g_autofree char *type = error != NULL ? error_type (error) : g_strdup ("_OTHER");
  OtlpAttributes *attributes;

  span->status_code = OTLP_STATUS_ERROR;
  g_free (span->status_message);
  span->status_message = g_strdup (message);
  otlp_attributes_set_string (span->attributes, "error.type", type);
  attributes = otlp_span_add_event (span, chime_event_get_real_time (event) * 1000, "exception");
  otlp_attributes_set_string (attributes, "exception.type", type);
  otlp_attributes_set_string (attributes, "exception.message", message);
}

void
otlp_genai_retry (OtlpSpan   *span,
                  ChimeEvent *event)
{
  json_t *state = chime_event_get_data (event);
  OtlpAttributes *attributes = otlp_span_add_event (span, chime_event_get_real_time (event) * 1000, "retry");
  const char *exception = json_string_value (json_object_get (state, "exception"));
  const char *type = json_string_value (json_object_get (state, "exception_type"));
  json_t *delay = json_object_get (state, "upcoming_sleep");

  set_int_if (attributes, "chime.retry.attempt", json_object_get (state, "attempt"));
  set_int_if (attributes, "http.response.status_code", json_object_get (state, "status"));
  if (json_is_number (delay))
    otlp_attributes_set_double (attributes, "chime.retry.delay_s", json_number_value (delay));
  if (type != NULL)
    otlp_attributes_set_string (attributes, "exception.type", type);
  if (exception != NULL)
    otlp_attributes_set_string (attributes, "exception.message", exception);
}
