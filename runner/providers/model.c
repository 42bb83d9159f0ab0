/* Chat models: choosing the provider of a `[model NAME]` section. */
#include "config.h"

#include "model.h"
#include "model-providers.h"
#include "pipeline/pipeline-error.h"

const ChimeModelProvider *const chime_model_providers[] = {
  &chime_fake_model_provider,
  &chime_openai_model_provider,
  &chime_anthropic_model_provider,
  NULL,
};

static const ChimeModelProvider *
find_provider (const char *name)
{
  for (guint i = 0; chime_model_providers[i] != NULL; i++)
    if (g_str_equal (chime_model_providers[i]->provider, name))
      return chime_model_providers[i];
  return NULL;
}

static char **
provider_names (void)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; chime_model_providers[i] != NULL; i++)
    g_strv_builder_add (builder, chime_model_providers[i]->provider);
  return g_strv_builder_end (builder);
}

/* Checks the section's keys: `provider` plus the provider's own. */
static void
check_keys (ChimeConfig              *config,
            const char               *section,
            const ChimeModelProvider *provider)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) valid = NULL;

  g_strv_builder_add (builder, "provider");
  g_strv_builder_addv (builder, (const char **) provider->keys);
  valid = g_strv_builder_end (builder);
  chime_config_check_keys (config, section, (const char * const *) valid);
}

ChimeModel *
chime_model_new (ChimeConfig *config,
                 const char  *name)
{
  g_autofree char *section = g_strdup_printf ("model %s", name);
  g_autofree char *provider_name = NULL;
  const ChimeModelProvider *provider;
  ChimeModel *model;

  if (!g_key_file_has_group (chime_config_get_key_file (config), section))
    {
      chime_config_add_problem (config, "[pipeline] of %s names model '%s', but there is no "
                          "[model %s] section", chime_config_get_source_name (config), name, name);
      return NULL;
    }
  provider_name = chime_config_read_string (config, section, "provider", NULL);
  if (provider_name == NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, section, NULL);
      g_auto (GStrv) names = provider_names ();
      g_autofree char *list = g_strjoinv (", ", names);
      chime_config_add_problem (config, "missing required key 'provider'%s (one of %s)", location, list);
      return NULL;
    }
  provider = find_provider (provider_name);
  if (provider == NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "provider");
      g_auto (GStrv) names = provider_names ();
      g_autofree char *suffix = chime_config_suggestion (provider_name, (const char * const *) names,
                                                         "providers");
      chime_config_add_problem (config, "unknown provider '%s'%s%s", provider_name, location, suffix);
      return NULL;
    }
  check_keys (config, section, provider);
  model = provider->configure (config, section);
  if (model == NULL)
    return NULL;
  model->provider = provider;
  model->name = g_strdup (name);
  if (model->model_name == NULL)
    model->model_name = chime_config_read_string (config, section, "model", provider->provider);
  return model;
}

void
chime_model_free (ChimeModel *model)
{
  char *name, *model_name;

  if (model == NULL)
    return;
  name = model->name;
  model_name = model->model_name;
  model->provider->free (model);
  g_free (name);
  g_free (model_name);
}

ChimeModelStream *
chime_model_stream (ChimeModel                *model,
                    json_t                    *messages,
                    json_t                    *tools,
                    const ChimeModelCallbacks *callbacks,
                    gpointer                   user_data,
                    GMainContext              *context)
{
  return model->provider->stream (model, messages, tools, callbacks, user_data, context);
}

void
chime_model_stream_resume (ChimeModel       *model,
                           ChimeModelStream *stream)
{
  model->provider->resume (stream);
}

void
chime_model_stream_cancel (ChimeModel       *model,
                           ChimeModelStream *stream)
{
  model->provider->cancel (stream);
}

json_t *
chime_usage_metadata_new (gint64 input_tokens,
                          gint64 output_tokens)
{
  return json_pack ("{s:I, s:I, s:I}",
                    "input_tokens", (json_int_t) input_tokens,
                    "output_tokens", (json_int_t) output_tokens,
                    "total_tokens", (json_int_t) (input_tokens + output_tokens));
}


/* LangChain's BaseChatModel._get_ls_params, which tracing tools key on:
 * the provider, the model, "chat", and the sampling settings that are
 * set (read from the invocation parameters, so every provider reports
 * what it sends). */
json_t *
chime_model_ls_params (ChimeModel *model)
{
  g_autoptr (json_t) params = model->provider->invocation_params (model);
  json_t *ls = json_pack ("{s:s, s:s, s:s}",
                          "ls_provider", model->provider->provider,
                          "ls_model_name", model->model_name != NULL ? model->model_name : "",
                          "ls_model_type", "chat");
  json_t *value;

  if ((value = json_object_get (params, "temperature")) != NULL && json_is_number (value))
    json_object_set (ls, "ls_temperature", value);
  if ((value = json_object_get (params, "max_tokens")) != NULL && json_is_integer (value))
    json_object_set (ls, "ls_max_tokens", value);
  if ((value = json_object_get (params, "stop")) != NULL && json_array_size (value) > 0)
    json_object_set (ls, "ls_stop", value);
  return ls;
}
