/* The retriever step of a pipeline with `retriever = NAME`.
 *
 * LangChain's RAG chain is {"context": retriever | format_docs,
 * "question": RunnablePassthrough()} | prompt | model | parser, whose
 * first step is a RunnableParallel with a branch per key. chime runs the
 * one step that does work, the retriever, as the sequence's first child
 * (seq:step:1, the sequence's tags, metadata ls_retriever_name "bm25"
 * as BaseRetriever adds), named BM25Retriever: retriever_start with the
 * query (the query_variable of the input), retriever_end with the
 * Documents. The documents joined by blank lines (format_docs) become
 * {context}; the prompt, model and parser are steps 2 to 4. */
#include "config.h"

#include "pipeline-run-private.h"

static void
copy_variable (gpointer key,
               gpointer value,
               gpointer data)
{
  g_hash_table_replace (data, g_strdup (key), g_strdup (value));
}

/* The run's variables, and {context}: a table of the run's own, as the
 * caller's is shared by every run of a batch. The prompt's input has it
 * too, as the parallel step's output is LangChain's prompt's input (a
 * copy: the root's chain_start holds the first). */
static void
set_context (PipelineRun *run,
             const char  *context)
{
  GHashTable *variables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  json_t *inputs = json_copy (run->inputs);

  json_object_set_new (inputs, "context", json_string (context));
  json_decref (run->inputs);
  run->inputs = inputs;

  g_hash_table_foreach (run->variables, copy_variable, variables);
  g_hash_table_replace (variables, g_strdup ("context"), g_strdup (context));
  g_hash_table_unref (run->variables);
  run->variables = variables;
}

static void
search (PipelineRun *run)
{
  ChimePipelineConfig *config = run->pipeline->config;
  const char *query = g_hash_table_lookup (run->variables, config->query_variable);
  g_autoptr (json_t) documents = chime_retriever_search (config->retriever, query != NULL ? query : "");
  g_autofree char *context = chime_retriever_format (documents);

  set_context (run, context);
  run->retriever_open = FALSE;
  chime_pipeline_run_emit (run, run->retriever, chime_run_prepare_retriever_end (run->retriever, documents),
                           run->after_retrieval);
}

void
chime_pipeline_run_retrieve (PipelineRun *run,
                             Step         next)
{
  ChimePipelineConfig *config = run->pipeline->config;
  g_autoptr (ChimeCallbackManager) child = chime_pipeline_run_step_manager (run, "seq:step:1");
  g_autoptr (json_t) ls_params = json_pack ("{s:s}", "ls_retriever_name", "bm25");
  const char *query = g_hash_table_lookup (run->variables, config->query_variable);
  ChimeEvent *event;

  chime_callback_manager_add_metadata (child, ls_params, FALSE);
  run->after_retrieval = next;
  g_clear_pointer (&run->retriever, chime_run_unref);
  run->retriever = chime_callback_manager_prepare_retriever_start (child, NULL, query != NULL ? query : "",
                                                                   CHIME_RETRIEVER_CLASS_NAME, &event);
  run->retriever_open = TRUE;
  chime_pipeline_run_emit (run, run->retriever, event, search);
}
