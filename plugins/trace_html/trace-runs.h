/* The run tree the trace page shows, built from events: one record per
 * run (its place in the tree, times, tokens' arrival, payloads, status),
 * shared by the trace_html plugin (the whole tree, once, at the end) and
 * the live plugin (each change as it happens).
 *
 * The JSON forms, which the page's script reads (trace-page.js):
 *
 *   the trace   {"format": "chime-trace/1", "title", "started_at",
 *                "duration_ms", "runs": [run, ...]}   runs in start order
 *   a run       {"id", "parent_id", "run_type", "name", "start_ms",
 *                "end_ms" (null while running), "status" ("running", "ok",
 *                "error"), "ttft_ms", "tokens", "token_ms": [...],
 *                "usage", "tags", "metadata", "inputs", "outputs", "error"}
 *   an update   {"op": "run", "run": run}     a run started or ended
 *               {"op": "token", "id", "t"}    a token arrived at t ms
 *
 * Times are milliseconds since the first event the model saw. Payloads
 * are copies with secrets redacted (trace_redact()). Not thread-safe: the
 * caller serialises calls. */
#pragma once

#include <chime/plugin.h>

typedef struct _TraceRuns TraceRuns;

/* The most token arrival times kept per run; later tokens are counted. */
#define TRACE_MAX_TOKEN_TIMES 20000

TraceRuns *trace_runs_new  (void);
void       trace_runs_free (TraceRuns *runs);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TraceRuns, trace_runs_free)

/* Applies @event; returns the update it makes (new reference), or NULL
 * for an event that changes nothing the page shows. */
json_t *trace_runs_apply (TraceRuns  *runs,
                          ChimeEvent *event);

/* The whole trace, titled @title (new reference). */
json_t *trace_runs_to_json (TraceRuns  *runs,
                            const char *title);

/* A deep copy of @value (NULL: null) in which the value of every object
 * key that names a secret (api_key, authorization, password, ...) is
 * "[redacted]". New reference. */
json_t *trace_redact (json_t *value);
