/* The run tree of the trace page; see trace-runs.h. */
#include "trace-runs.h"

#include <string.h>

typedef struct {
  char    id[CHIME_RUN_ID_STRING_LEN];
  char   *parent_id;      /* NULL for a root run */
  char   *run_type;
  char   *name;
  gint64  start_us;       /* monotonic */
  gint64  end_us;         /* 0 while running */
  const char *status;     /* "running", "ok", "error" */
  GArray *token_us;       /* gint64, at most TRACE_MAX_TOKEN_TIMES */
  guint   n_tokens;
  json_t *tags;
  json_t *metadata;
  json_t *inputs;
  json_t *outputs;
  json_t *error;
  json_t *usage;
} TraceRun;

struct _TraceRuns {
  GHashTable *by_id;      /* id -> TraceRun, owned by order */
  GPtrArray  *order;      /* TraceRun, in start order */
  gint64      origin_us;  /* monotonic time of the first event; 0: none yet */
  gint64      origin_real_us;
  gint64      last_us;
};

static void
trace_run_free (gpointer data)
{
  TraceRun *run = data;

  g_free (run->parent_id);
  g_free (run->run_type);
  g_free (run->name);
  g_array_unref (run->token_us);
  g_clear_pointer (&run->tags, json_decref);
  g_clear_pointer (&run->metadata, json_decref);
  g_clear_pointer (&run->inputs, json_decref);
  g_clear_pointer (&run->outputs, json_decref);
  g_clear_pointer (&run->error, json_decref);
  g_clear_pointer (&run->usage, json_decref);
  g_free (run);
}

TraceRuns *
trace_runs_new (void)
{
  TraceRuns *runs = g_new0 (TraceRuns, 1);

  runs->by_id = g_hash_table_new (g_str_hash, g_str_equal);
  runs->order = g_ptr_array_new_with_free_func (trace_run_free);
  return runs;
}

void
trace_runs_free (TraceRuns *runs)
{
  g_hash_table_unref (runs->by_id);
  g_ptr_array_unref (runs->order);
  g_free (runs);
}

/* ------------------------------------------------------------------
 * Redaction
 * ---------------------------------------------------------------- */

/* Whether an object key names a secret. Events carry no API keys (the
 * runner keeps them out of kwargs and serialized descriptions), but a
 * handler that shows payloads as they are must not be the place where a
 * user's own `metadata = {"api_key": ...}` or a tool's input leaks. */
static gboolean
is_secret_key (const char *key)
{
  static const char *const needles[] = {
    "api_key", "apikey", "api-key", "authorization", "password", "secret", "access_token",
    "refresh_token", "cookie", "x-api-key", "bearer",
  };
  g_autofree char *lower = g_ascii_strdown (key, -1);

  for (gsize i = 0; i < G_N_ELEMENTS (needles); i++)
    if (strstr (lower, needles[i]) != NULL)
      return TRUE;
  return FALSE;
}

json_t *
trace_redact (json_t *value)
{
  const char *key;
  json_t *member;
  json_t *copy;
  gsize index;

  if (value == NULL)
    return json_null ();
  if (json_is_object (value))
    {
      copy = json_object ();
      json_object_foreach (value, key, member)
        json_object_set_new (copy, key,
                             is_secret_key (key) ? json_string ("[redacted]") : trace_redact (member));
      return copy;
    }
  if (json_is_array (value))
    {
      copy = json_array ();
      json_array_foreach (value, index, member)
        json_array_append_new (copy, trace_redact (member));
      return copy;
    }
  return json_deep_copy (value);
}

/* ------------------------------------------------------------------
 * Runs
 * ---------------------------------------------------------------- */

static double
ms_since_origin (TraceRuns *runs,
                 gint64     time_us)
{
  /* Rounded to the microsecond, which keeps the page's data short. */
  return (double) (time_us - runs->origin_us) / 1000.0;
}

static json_t *
tags_json (const ChimeRunInfo *info)
{
  json_t *tags = json_array ();

  for (const char * const *tag = chime_run_info_get_tags (info); *tag != NULL; tag++)
    json_array_append_new (tags, json_string (*tag));
  return tags;
}

/* The record of @event's run, made from the run's facts when its start
 * was not seen (a handler added mid-run sees ends of runs it never saw
 * start). */
static TraceRun *
lookup_or_add (TraceRuns  *runs,
               ChimeEvent *event)
{
  const ChimeRunInfo *info = chime_event_get_run (event);
  const ChimeRunId *parent_id = chime_run_info_get_parent_id (info);
  char id[CHIME_RUN_ID_STRING_LEN];
  TraceRun *run;

  chime_run_id_to_string (chime_run_info_get_id (info), id);
  run = g_hash_table_lookup (runs->by_id, id);
  if (run != NULL)
    return run;
  run = g_new0 (TraceRun, 1);
  memcpy (run->id, id, sizeof id);
  if (parent_id != NULL)
    {
      run->parent_id = g_malloc (CHIME_RUN_ID_STRING_LEN);
      chime_run_id_to_string (parent_id, run->parent_id);
    }
  run->run_type = g_strdup (chime_run_info_get_run_type (info));
  run->name = g_strdup (chime_run_info_get_name (info));
  run->start_us = MAX (chime_run_info_get_start_time (info), runs->origin_us);
  run->status = "running";
  run->token_us = g_array_new (FALSE, FALSE, sizeof (gint64));
  run->tags = tags_json (info);
  run->metadata = trace_redact (chime_run_info_get_metadata (info));
  g_ptr_array_add (runs->order, run);
  g_hash_table_insert (runs->by_id, run->id, run);
  return run;
}

/* What a start event's run was given, as the page shows it. */
static json_t *
start_inputs (ChimeEvent *event)
{
  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_CHAT_MODEL_START:
      return json_pack ("{s:o}", "messages", trace_redact (chime_event_get_messages (event)));
    case CHIME_EVENT_LLM_START:
      return json_pack ("{s:o}", "prompts", trace_redact (chime_event_get_prompts (event)));
    case CHIME_EVENT_RETRIEVER_START:
      return json_pack ("{s:s?}", "query", chime_event_get_text (event));
    case CHIME_EVENT_TOOL_START:
      if (chime_event_get_inputs (event) == NULL)
        return json_pack ("{s:s?}", "input", chime_event_get_text (event));
      return trace_redact (chime_event_get_inputs (event));
    default:
      return trace_redact (chime_event_get_inputs (event));
    }
}

/* The usage an LLMResult reports: its first generation's message's
 * usage_metadata (chat models), else llm_output.token_usage. */
static json_t *
response_usage (json_t *response)
{
  json_t *generation = json_array_get (json_array_get (json_object_get (response, "generations"), 0), 0);
  json_t *usage = json_object_get (json_object_get (generation, "message"), "usage_metadata");

  if (!json_is_object (usage))
    usage = json_object_get (json_object_get (response, "llm_output"), "token_usage");
  return json_is_object (usage) ? json_deep_copy (usage) : NULL;
}

static void
set_json (json_t **slot,
          json_t  *value)
{
  g_clear_pointer (slot, json_decref);
  *slot = value;
}

static void
end_run (TraceRun   *run,
         ChimeEvent *event,
         const char *status)
{
  json_t *response = chime_event_get_response (event);

  run->end_us = MAX (chime_event_get_monotonic_time (event), run->start_us);
  run->status = status;
  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_LLM_END:
    case CHIME_EVENT_LLM_ERROR:
      if (response != NULL)
        {
          set_json (&run->outputs, trace_redact (response));
          set_json (&run->usage, response_usage (response));
        }
      break;
    case CHIME_EVENT_RETRIEVER_END:
      set_json (&run->outputs, json_pack ("{s:o}", "documents", trace_redact (chime_event_get_data (event))));
      break;
    default:
      if (chime_event_get_outputs (event) != NULL)
        set_json (&run->outputs, trace_redact (chime_event_get_outputs (event)));
      break;
    }
  if (chime_event_get_error (event) != NULL)
    set_json (&run->error, chime_error_to_json (chime_event_get_error (event)));
}

static json_t *
run_to_json (TraceRuns *runs,
             TraceRun  *run)
{
  json_t *token_ms = json_array ();
  json_t *ttft = json_null ();

  for (guint i = 0; i < run->token_us->len; i++)
    json_array_append_new (token_ms, json_real (ms_since_origin (runs, g_array_index (run->token_us, gint64, i))));
  if (run->token_us->len > 0)
    {
      json_decref (ttft);
      ttft = json_real ((double) (g_array_index (run->token_us, gint64, 0) - run->start_us) / 1000.0);
    }
  return json_pack ("{s:s, s:s?, s:s?, s:s?, s:f, s:o, s:s, s:o, s:i, s:o, s:O?, s:O, s:O, s:O?, s:O?, s:O?}",
                    "id", run->id,
                    "parent_id", run->parent_id,
                    "run_type", run->run_type,
                    "name", run->name,
                    "start_ms", ms_since_origin (runs, run->start_us),
                    "end_ms", run->end_us != 0 ? json_real (ms_since_origin (runs, run->end_us)) : json_null (),
                    "status", run->status,
                    "ttft_ms", ttft,
                    "tokens", (json_int_t) run->n_tokens,
                    "token_ms", token_ms,
                    "usage", run->usage,
                    "tags", run->tags,
                    "metadata", run->metadata,
                    "inputs", run->inputs,
                    "outputs", run->outputs,
                    "error", run->error);
}

static json_t *
token_update (TraceRuns  *runs,
              TraceRun   *run,
              ChimeEvent *event)
{
  gint64 time_us = chime_event_get_monotonic_time (event);

  run->n_tokens++;
  if (run->token_us->len >= TRACE_MAX_TOKEN_TIMES)
    return NULL;
  g_array_append_val (run->token_us, time_us);
  return json_pack ("{s:s, s:s, s:f}", "op", "token", "id", run->id, "t", ms_since_origin (runs, time_us));
}

json_t *
trace_runs_apply (TraceRuns  *runs,
                  ChimeEvent *event)
{
  ChimeEventType type = chime_event_get_event_type (event);
  TraceRun *run;

  if (runs->origin_us == 0)
    {
      runs->origin_us = chime_event_get_monotonic_time (event);
      runs->origin_real_us = chime_event_get_real_time (event);
    }
  runs->last_us = MAX (runs->last_us, chime_event_get_monotonic_time (event));
  switch (type)
    {
    case CHIME_EVENT_CHAIN_START:
    case CHIME_EVENT_LLM_START:
    case CHIME_EVENT_CHAT_MODEL_START:
    case CHIME_EVENT_TOOL_START:
    case CHIME_EVENT_RETRIEVER_START:
      run = lookup_or_add (runs, event);
      set_json (&run->inputs, start_inputs (event));
      break;
    case CHIME_EVENT_LLM_NEW_TOKEN:
      return token_update (runs, lookup_or_add (runs, event), event);
    case CHIME_EVENT_CHAIN_END:
    case CHIME_EVENT_LLM_END:
    case CHIME_EVENT_TOOL_END:
    case CHIME_EVENT_RETRIEVER_END:
      run = lookup_or_add (runs, event);
      end_run (run, event, "ok");
      break;
    case CHIME_EVENT_CHAIN_ERROR:
    case CHIME_EVENT_LLM_ERROR:
    case CHIME_EVENT_TOOL_ERROR:
    case CHIME_EVENT_RETRIEVER_ERROR:
      run = lookup_or_add (runs, event);
      end_run (run, event, "error");
      break;
    default:
      /* Texts, retries, agent actions and custom events have no bar. */
      return NULL;
    }
  return json_pack ("{s:s, s:o}", "op", "run", "run", run_to_json (runs, run));
}

json_t *
trace_runs_to_json (TraceRuns  *runs,
                    const char *title)
{
  json_t *list = json_array ();
  g_autoptr (GDateTime) started = NULL;
  g_autofree char *started_text = NULL;

  for (guint i = 0; i < runs->order->len; i++)
    json_array_append_new (list, run_to_json (runs, g_ptr_array_index (runs->order, i)));
  if (runs->origin_us != 0)
    {
      started = g_date_time_new_from_unix_utc (runs->origin_real_us / G_USEC_PER_SEC);
      started_text = g_date_time_format_iso8601 (started);
    }
  return json_pack ("{s:s, s:s?, s:s?, s:f, s:o}",
                    "format", "chime-trace/1",
                    "title", title,
                    "started_at", started_text,
                    "duration_ms", runs->origin_us != 0 ? ms_since_origin (runs, runs->last_us) : 0.0,
                    "runs", list);
}
