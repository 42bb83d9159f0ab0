/* JSON the HTTP chat model providers make: LangChain's usage_metadata
 * and the invocation parameters every provider reports. Reading the
 * servers' events is provider-fields.c. */
#include "config.h"

#include "provider-json.h"

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

/* The API's base URL, where tracing handlers read server.address and
 * server.port from; user and password, if the URL has them, stay out of
 * the events. */
static void
set_base_url (json_t     *params,
              const char *base_url)
{
  g_autoptr (GUri) uri = base_url != NULL ? g_uri_parse (base_url, G_URI_FLAGS_HAS_PASSWORD, NULL) : NULL;
  g_autofree char *shown = NULL;

  if (uri == NULL)
    return;
  shown = g_uri_to_string_partial (uri, G_URI_HIDE_USERINFO | G_URI_HIDE_AUTH_PARAMS);
  json_object_set_new (params, "base_url", json_string (shown));
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
  set_base_url (params, model->base_url);
  return params;
}
