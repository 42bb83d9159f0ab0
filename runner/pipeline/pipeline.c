/* Pipelines: read from a configuration, with their runtime. Running one
 * is pipeline-run.c. */
#include "config.h"

#include "pipeline-private.h"
#include "pipeline-error.h"

/* ------------------------------------------------------------------
 * Construction
 * ---------------------------------------------------------------- */

static gboolean check_variables (ChimePipelineConfig *config,
                                 ChimeConfig         *ini,
                                 GHashTable          *variables,
                                 GError             **error);

/* LangChain taps the output streams of the steps only for a streaming
 * handler (astream_events'); in chime, a handler whose plugin declares
 * CHIME_PLUGIN_WANTS_STREAM (the astream_events plugin does). Only those
 * handlers receive the taps: the others see exactly LangChain's
 * callbacks. */
static gboolean
has_stream_handler (ChimeRuntime *runtime)
{
  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    if (chime_runtime_get_handler_info (runtime, i)->plugin_flags & CHIME_PLUGIN_WANTS_STREAM)
      return TRUE;
  return FALSE;
}

static ChimePipeline *
pipeline_new (ChimeConfig *ini,
              GKeyFile    *extra,
              GHashTable  *variables,
              GError     **error)
{
  g_autoptr (ChimePipelineConfig) config = NULL;
  ChimeRuntime *runtime;
  ChimePipeline *pipeline;

  chime_config_merge (ini, extra);
  config = chime_pipeline_config_read (ini);
  /* Missing variables stop everything before a handler starts (and, say,
   * truncates its file); only for a sound [pipeline], so that a broken
   * file still has every problem reported at once. */
  if (variables != NULL && config != NULL && chime_config_get_n_problems (ini) == 0 &&
      !check_variables (config, ini, variables, error))
    return NULL;
  /* Runtime problems join the pipeline's, so all are reported at once. */
  runtime = chime_runtime_new (ini, error);
  if (runtime == NULL)
    return NULL;
  pipeline = g_new0 (ChimePipeline, 1);
  pipeline->ini = chime_config_ref (ini);
  pipeline->runtime = runtime;
  pipeline->config = g_steal_pointer (&config);
  pipeline->tap_streams = has_stream_handler (runtime);
  return pipeline;
}

ChimePipeline *
chime_pipeline_new_from_file (const char *path,
                              GKeyFile   *extra,
                              GHashTable *variables,
                              GError    **error)
{
  g_autoptr (ChimeConfig) ini = chime_config_new_from_file (path, error);

  if (ini == NULL)
    return NULL;
  return pipeline_new (ini, extra, variables, error);
}

ChimePipeline *
chime_pipeline_new_from_data (const char *text,
                              const char *source_name,
                              const char *base_dir,
                              GKeyFile   *extra,
                              GHashTable *variables,
                              GError    **error)
{
  g_autoptr (ChimeConfig) ini = chime_config_new_from_data (text, source_name, base_dir, error);

  if (ini == NULL)
    return NULL;
  return pipeline_new (ini, extra, variables, error);
}

void
chime_pipeline_free (ChimePipeline *pipeline)
{
  if (pipeline == NULL)
    return;
  /* Handlers go first: they may still be handling the last events. */
  chime_runtime_shutdown (pipeline->runtime);
  chime_runtime_unref (pipeline->runtime);
  chime_pipeline_config_free (pipeline->config);
  chime_config_unref (pipeline->ini);
  g_free (pipeline);
}

ChimeRuntime *
chime_pipeline_get_runtime (ChimePipeline *pipeline)
{
  return pipeline->runtime;
}

void
chime_pipeline_set_chunk_func (ChimePipeline         *pipeline,
                               ChimePipelineChunkFunc func,
                               gpointer               user_data)
{
  pipeline->on_chunk = func;
  pipeline->on_chunk_data = user_data;
}

const GPtrArray *
chime_pipeline_get_variables (ChimePipeline *pipeline)
{
  return pipeline->config->variables;
}

static gboolean
check_variables (ChimePipelineConfig *config,
                 ChimeConfig         *ini,
                 GHashTable          *variables,
                 GError             **error)
{
  g_autoptr (GPtrArray) missing = g_ptr_array_new ();
  g_autofree char *list = NULL;

  for (guint i = 0; i < config->variables->len; i++)
    if (!g_hash_table_contains (variables, config->variables->pdata[i]))
      g_ptr_array_add (missing, config->variables->pdata[i]);
  if (missing->len == 0)
    return TRUE;
  g_ptr_array_add (missing, NULL);
  list = g_strjoinv (", ", (char **) missing->pdata);
  g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_VARIABLES,
               "the prompt in %s needs %s %s; pass %s",
               chime_config_get_source_name (ini),
               missing->len > 2 ? "variables" : "variable", list,
               g_strv_contains ((const char * const *) missing->pdata, "input")
                 ? "--input TEXT (for {input}) and --var NAME=VALUE for the others"
                 : "--var NAME=VALUE for each");
  return FALSE;
}

gboolean
chime_pipeline_check_variables (ChimePipeline *pipeline,
                                GHashTable    *variables,
                                GError       **error)
{
  return check_variables (pipeline->config, pipeline->ini, variables, error);
}
