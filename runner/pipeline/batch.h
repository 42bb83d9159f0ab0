/* Batch runs: one pipeline run per line of a JSON Lines file, several at
 * once on one main loop (`chime run CONFIG --inputs FILE.jsonl`). */
#pragma once

#include <gio/gio.h>

#include "pipeline.h"

/* The number of runs at once when the caller does not say. */
#define CHIME_BATCH_DEFAULT_CONCURRENCY 4

/* Runs @pipeline once per line of @inputs_path ("-": standard input), each
 * line a JSON object of template variables (strings, numbers or booleans)
 * laid over @defaults (may be NULL). Blank lines are skipped; the others
 * are numbered from 0. At most @concurrency runs are in flight at once,
 * on the thread-default main context, which this iterates until every
 * started run is over.
 *
 * One JSON line per input goes to @out (NULL: standard output, through
 * stdio), in input order:
 *   {"index": N, "run_id", "output", "llm_result"} or
 *   {"index": N, "error": {"message", "domain", "code"}}.
 * An input that fails (bad JSON, a missing variable, the model) does not
 * stop the others. Cancelling @cancellable stops reading inputs and
 * cancels the runs in flight (each reported as failed).
 *
 * Returns the number of failed inputs, or -1 with @error when the inputs
 * cannot be read or the results cannot be written. */
int chime_batch_run (ChimePipeline *pipeline,
                     const char    *inputs_path,
                     GHashTable    *defaults,
                     guint          concurrency,
                     GCancellable  *cancellable,
                     GOutputStream *out,
                     GError       **error);
