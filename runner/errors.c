/* The runner's error domains, in one place: the runtime's are in
 * core/errors.c. */
#include "config.h"

#include "pipeline/pipeline-error.h"
#include "providers/sse-parser.h"

G_DEFINE_QUARK (chime-pipeline-error-quark, chime_pipeline_error)
G_DEFINE_QUARK (chime-sse-error-quark, chime_sse_error)
