/* Reading `[pipeline]`. */
#include "config.h"

#include "pipeline-config.h"
#include "prompt.h"

#include <string.h>

static const char *const pipeline_keys[] = {
  "prompt", "prompt_file", "system", "model", "parser", "tags", "metadata", "name", "retriever",
  "query_variable", NULL
};

/* The largest prompt_file read: a prompt is text for a model's context
 * window, which this exceeds by far. */
#define MAX_PROMPT_FILE_SIZE (1024 * 1024)

static const char *const parser_names[] = { "str", "json", NULL };

void
chime_pipeline_config_free (ChimePipelineConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->name);
  g_free (config->system);
  g_free (config->prompt);
  chime_model_free (config->model);
  chime_retriever_free (config->retriever);
  g_free (config->query_variable);
  chime_agent_config_free (config->agent);
  g_strfreev (config->tags);
  if (config->metadata != NULL)
    json_decref (config->metadata);
  if (config->variables != NULL)
    g_ptr_array_unref (config->variables);
  g_free (config);
}

/* The human prompt: `prompt`, or the contents of `prompt_file`. */
static char *
read_prompt (ChimeConfig      *ini)
{
  g_autofree char *prompt = chime_config_read_string (ini, "pipeline", "prompt", NULL);
  g_autofree char *file = chime_config_read_string (ini, "pipeline", "prompt_file", NULL);
  g_autofree char *location = chime_config_describe_location (ini, "pipeline", NULL);
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  gsize length = 0;

  if (prompt != NULL && file != NULL)
    {
      chime_config_add_problem (ini, "'prompt' and 'prompt_file' are both set%s; keep one", location);
      return NULL;
    }
  if (prompt != NULL)
    return g_steal_pointer (&prompt);
  if (file == NULL)
    {
      chime_config_add_problem (ini, "missing required key 'prompt'%s (or 'prompt_file'): the "
                          "template sent to the model, e.g. prompt = Tell me a joke about {topic}",
                          location);
      return NULL;
    }
  path = chime_config_resolve_path (ini, file);
  if (!chime_file_get_contents (path, MAX_PROMPT_FILE_SIZE, &text, &length, &error))
    {
      g_autofree char *key_location = chime_config_describe_location (ini, "pipeline", "prompt_file");
      chime_config_add_problem (ini, "cannot read prompt_file%s: %s", key_location, error->message);
      return NULL;
    }
  if (!g_utf8_validate_len (text, length, NULL))
    {
      g_autofree char *key_location = chime_config_describe_location (ini, "pipeline", "prompt_file");
      chime_config_add_problem (ini, "cannot read prompt_file%s: %s is not UTF-8 text (or has a NUL "
                                "byte); save it as UTF-8", key_location, path);
      return NULL;
    }
  return g_steal_pointer (&text);
}

static json_t *
read_metadata (ChimeConfig      *ini)
{
  g_autofree char *text = chime_config_read_raw (ini, "pipeline", "metadata");
  json_error_t error;
  json_t *metadata;

  if (text == NULL)
    return json_object ();
  metadata = json_loads (text, 0, &error);
  if (!json_is_object (metadata))
    {
      g_autofree char *location = chime_config_describe_location (ini, "pipeline", "metadata");
      chime_config_add_problem (ini, "invalid value for 'metadata'%s: expected a JSON object like "
                          "{\"user\": \"ada\"}%s%s", location, metadata == NULL ? ": " : "",
                          metadata == NULL ? error.text : "");
      if (metadata != NULL)
        json_decref (metadata);
      return json_object ();
    }
  return metadata;
}

/* Collects the variables of @template_text into config->variables. */
static void
add_variables (ChimePipelineConfig *config,
               ChimeConfig         *ini,
               const char          *key,
               const char          *template_text)
{
  g_autoptr (GPtrArray) names = NULL;
  g_autoptr (GError) error = NULL;

  if (template_text == NULL)
    return;
  if (!chime_prompt_variables (template_text, &names, &error))
    {
      g_autofree char *location = chime_config_describe_location (ini, "pipeline", key);
      chime_config_add_problem (ini, "invalid '%s'%s: %s", key, location, error->message);
      return;
    }
  for (guint i = 0; i < names->len; i++)
    if (!g_ptr_array_find_with_equal_func (config->variables, names->pdata[i], g_str_equal, NULL))
      g_ptr_array_add (config->variables, g_strdup (names->pdata[i]));
}

/* Every other [model NAME] is checked too: a mistake in a model not used
 * today is still a mistake in the file. */
static void
check_other_models (ChimeConfig *ini,
                    const char  *used)
{
  g_auto (GStrv) sections = g_key_file_get_groups (chime_config_get_key_file (ini), NULL);

  for (guint i = 0; sections[i] != NULL; i++)
    {
      const char *name = sections[i] + strlen ("model");

      if (!g_str_has_prefix (sections[i], "model") || !g_ascii_isspace (*name))
        continue;
      while (g_ascii_isspace (*name))
        name++;
      if (g_strcmp0 (name, used) != 0)
        chime_model_free (chime_model_new (ini, name));
    }
}

void
chime_pipeline_accept_sections (ChimeConfig *ini)
{
  chime_config_accept_section (ini, "pipeline", FALSE);
  chime_config_accept_section (ini, "model", TRUE);
  chime_config_accept_section (ini, "retriever", TRUE);
  chime_config_accept_section (ini, "agent", FALSE);
  chime_tools_accept_sections (ini);
}

static gboolean
remove_variable (GPtrArray  *variables,
                 const char *name)
{
  guint index;

  if (!g_ptr_array_find_with_equal_func (variables, name, g_str_equal, &index))
    return FALSE;
  g_ptr_array_remove_index (variables, index);
  return TRUE;
}

/* `retriever = NAME`: the retriever fills {context} from the input's
 * query_variable, so the input gives the query and not the context. */
static void
read_retriever (ChimePipelineConfig *config,
                ChimeConfig         *ini)
{
  g_autofree char *name = chime_config_read_string (ini, "pipeline", "retriever", NULL);

  config->query_variable = chime_config_read_string (ini, "pipeline", "query_variable", "question");
  if (name == NULL)
    return;
  config->retriever = chime_retriever_new (ini, name);
  if (config->prompt != NULL && !remove_variable (config->variables, "context"))
    {
      g_autofree char *location = chime_config_describe_location (ini, "pipeline", "retriever");

      chime_config_add_problem (ini, "'retriever = %s'%s, but the prompt has no {context}, where the "
                                "documents it finds go: add {context} to 'prompt' or 'system'",
                                name, location);
    }
  if (!g_ptr_array_find_with_equal_func (config->variables, config->query_variable, g_str_equal, NULL))
    g_ptr_array_add (config->variables, g_strdup (config->query_variable));
}

ChimePipelineConfig *
chime_pipeline_config_read (ChimeConfig      *ini)
{
  ChimePipelineConfig *config;
  g_autofree char *model_name = NULL;
  guint parser;

  chime_pipeline_accept_sections (ini);
  if (!g_key_file_has_group (chime_config_get_key_file (ini), "pipeline"))
    {
      chime_config_add_problem (ini, "%s has no [pipeline] section: add one with 'prompt' and "
                          "'model' to run it", chime_config_get_source_name (ini));
      return NULL;
    }
  config = g_new0 (ChimePipelineConfig, 1);
  config->variables = g_ptr_array_new_with_free_func (g_free);
  chime_config_check_keys (ini, "pipeline", pipeline_keys);
  config->name = chime_config_read_string (ini, "pipeline", "name", "RunnableSequence");
  config->system = chime_config_read_string (ini, "pipeline", "system", NULL);
  config->prompt = read_prompt (ini);
  add_variables (config, ini, "system", config->system);
  add_variables (config, ini, config->prompt != NULL &&
                 g_key_file_has_key (chime_config_get_key_file (ini), "pipeline", "prompt", NULL)
                   ? "prompt" : "prompt_file", config->prompt);
  chime_config_read_choice (ini, "pipeline", "parser", parser_names,
                         CHIME_OUTPUT_PARSER_STR, &parser);
  config->parser = parser;
  config->tags = chime_config_read_list (ini, "pipeline", "tags", NULL);
  config->metadata = read_metadata (ini);
  read_retriever (config, ini);

  model_name = chime_config_read_string (ini, "pipeline", "model", NULL);
  if (model_name == NULL)
    {
      g_autofree char *location = chime_config_describe_location (ini, "pipeline", NULL);
      chime_config_add_problem (ini, "missing required key 'model'%s: name a [model NAME] section",
                          location);
    }
  else
    config->model = chime_model_new (ini, model_name);
  check_other_models (ini, model_name);
  config->agent = chime_agent_config_read (ini);
  return config;
}
