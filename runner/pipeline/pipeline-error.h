/* Errors a pipeline run ends with. */
#pragma once

#include <glib.h>

#define CHIME_PIPELINE_ERROR (chime_pipeline_error_quark ())
GQuark chime_pipeline_error_quark (void);

typedef enum {
  CHIME_PIPELINE_ERROR_MODEL,      /* the model (or its API) failed */
  CHIME_PIPELINE_ERROR_PARSE,      /* the output parser refused the output */
  CHIME_PIPELINE_ERROR_CANCELLED,  /* stopped by a signal or the caller */
  CHIME_PIPELINE_ERROR_VARIABLES,  /* the prompt needs variables that were not given */
  CHIME_PIPELINE_ERROR_TOOL,       /* a tool failed (its run ends with tool_error) */
  CHIME_PIPELINE_ERROR_AGENT,      /* an agent did not finish within max_iterations */
} ChimePipelineError;
