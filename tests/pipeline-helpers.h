/* Running a pipeline in-process, for the tests that drive
 * runner/pipeline directly rather than through the chime binary. */
#pragma once

#include "pipeline/pipeline.h"

/* Runs @pipeline once with @variables on the thread-default main
 * context, iterating it until the run is over. Returns the run's result
 * ({"run_id", "output", "llm_result"}), or NULL with @error. */
json_t *test_pipeline_run (ChimePipeline *pipeline,
                           GHashTable    *variables,
                           GError       **error);
