/* Pipelines: prompt → chat model → output parser, run as LangChain's
 * RunnableSequence with a root chain run and one child run per step, on
 * the GLib main loop, never blocking it. */
#pragma once

#include <gio/gio.h>
#include <jansson.h>
#include <chime/runtime.h>

typedef struct _ChimePipeline ChimePipeline;

/* Reads a pipeline file: [runtime], every [handler NAME], [pipeline] and
 * its [model NAME]; loads and starts the handlers. Every problem in the
 * file is reported at once. @extra (may be NULL) holds sections added to
 * the file's, e.g. a handler the runner adds for --events. With
 * @variables (may be NULL), a prompt variable missing from it fails with
 * CHIME_PIPELINE_ERROR_VARIABLES before any handler starts. */
ChimePipeline *chime_pipeline_new_from_file (const char *path,
                                             GKeyFile   *extra,
                                             GHashTable *variables,
                                             GError    **error);
/* The same from INI text; @source_name names it in messages and relative
 * paths resolve against @base_dir. */
ChimePipeline *chime_pipeline_new_from_data (const char *text,
                                             const char *source_name,
                                             const char *base_dir,
                                             GKeyFile   *extra,
                                             GHashTable *variables,
                                             GError    **error);
void           chime_pipeline_free          (ChimePipeline *pipeline);

ChimeRuntime  *chime_pipeline_get_runtime   (ChimePipeline *pipeline);
/* The template variables the prompt uses, in order of first use. */
const GPtrArray *chime_pipeline_get_variables (ChimePipeline *pipeline);

/* Checks that @variables (name -> value) has every variable the prompt
 * uses; the error names the missing ones. */
gboolean       chime_pipeline_check_variables (ChimePipeline *pipeline,
                                               GHashTable    *variables,
                                               GError       **error);

/* Called with each chunk of a run's output stream (the sequence's, what
 * LangChain's chain.stream() yields: a JSON string for the str parser,
 * the growing JSON value for json) as it comes, on the main loop. */
typedef void (*ChimePipelineChunkFunc) (json_t  *chunk,
                                        gpointer user_data);

/* Sets the function every run calls with its output chunks (NULL: none). */
void           chime_pipeline_set_chunk_func (ChimePipeline         *pipeline,
                                              ChimePipelineChunkFunc func,
                                              gpointer               user_data);

/* A run's answer: @result (the caller's) on success, else @error (the
 * caller's). */
typedef void (*ChimePipelineDoneFunc) (json_t  *result,
                                       GError  *error,
                                       gpointer user_data);

/* Runs the pipeline once with @variables. The result is
 * {"run_id", "output", "llm_result"}. Cancelling stops the model, reports
 * llm_error/chain_error to the handlers and fails with CANCELLED. @done
 * is called once, on the thread-default main context of the call, never
 * from inside this call (as a GTask's callback). */
void           chime_pipeline_run_async     (ChimePipeline        *pipeline,
                                             GHashTable           *variables,
                                             GCancellable         *cancellable,
                                             ChimePipelineDoneFunc done,
                                             gpointer              user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimePipeline, chime_pipeline_free)
