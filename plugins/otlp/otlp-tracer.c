/* otlp — runs into spans (see otlp-tracer.h); the GenAI attributes are
 * read by otlp-genai.c. */
#include "otlp-tracer.h"

#include "otlp-genai.h"

#include <string.h>

struct _OtlpTracer {
  gboolean     capture_content;
  OtlpSpanSink sink;
  gpointer     sink_data;
  /* run id (16 bytes) -> OpenRun */
  GHashTable  *open;
};

typedef struct {
  OtlpSpan *span;
  gint64    start_monotonic;
  gboolean  got_first_chunk;
} OpenRun;

static guint
run_id_hash (gconstpointer key)
{
  const ChimeRunId *id = key;
  guint hash;

  /* The random part: well spread already. */
  memcpy (&hash, id->bytes + 12, sizeof hash);
  return hash;
}

static gboolean
run_id_equal (gconstpointer a,
              gconstpointer b)
{
  return chime_run_id_equal (a, b);
}

static void
open_run_free (gpointer data)
{
  OpenRun *run = data;

  otlp_span_free (run->span);
  g_free (run);
}

OtlpTracer *
otlp_tracer_new (gboolean     capture_content,
                 OtlpSpanSink sink,
                 gpointer     user_data)
{
  OtlpTracer *self = g_new0 (OtlpTracer, 1);

  self->capture_content = capture_content;
  self->sink = sink;
  self->sink_data = user_data;
  self->open = g_hash_table_new_full (run_id_hash, run_id_equal, g_free, open_run_free);
  return self;
}

/* A span id is never all zeroes (OTLP: invalid); a UUIDv7's variant bits
 * make that impossible, this is for ids made otherwise. */
static void
span_id_of (const ChimeRunId *id,
            guint8            span_id[8])
{
  static const guint8 zero[8] = { 0 };

  memcpy (span_id, id->bytes + 8, 8);
  if (memcmp (span_id, zero, 8) == 0)
    span_id[7] = 1;
}

void
otlp_run_ids (const ChimeRunInfo *info,
              guint8              trace_id[16],
              guint8              span_id[8])
{
  const ChimeRunInfo *root = info;

  while (chime_run_info_get_parent (root) != NULL)
    root = chime_run_info_get_parent (root);
  memcpy (trace_id, chime_run_info_get_id (root)->bytes, 16);
  span_id_of (chime_run_info_get_id (info), span_id);
}

static void
start_run (OtlpTracer *self,
           ChimeEvent *event)
{
  const ChimeRunInfo *info = chime_event_get_run (event);
  const ChimeRunId *parent = chime_run_info_get_parent_id (info);
  const char * const *tags = chime_run_info_get_tags (info);
  char id_text[CHIME_RUN_ID_STRING_LEN];
  OpenRun *run = g_new0 (OpenRun, 1);
  OtlpSpan *span = otlp_span_new ();

  run->span = span;
  run->start_monotonic = chime_event_get_monotonic_time (event);
  otlp_run_ids (info, span->trace_id, span->span_id);
  if (parent != NULL)
    {
      span_id_of (parent, span->parent_span_id);
      span->has_parent = TRUE;
    }
  span->start_ns = chime_event_get_real_time (event) * 1000;
  span->name = g_strdup (chime_run_info_get_name (info));
  chime_run_id_to_string (chime_run_info_get_id (info), id_text);
  otlp_attributes_set_string (span->attributes, "chime.run.id", id_text);
  otlp_attributes_set_string (span->attributes, "chime.run.type", chime_run_info_get_run_type (info));
  if (tags[0] != NULL)
    otlp_attributes_set_strv (span->attributes, "chime.run.tags", tags);
  otlp_genai_start (span, event, self->capture_content);
  g_hash_table_replace (self->open, g_memdup2 (chime_run_info_get_id (info), sizeof (ChimeRunId)), run);
}

static OpenRun *
lookup_run (OtlpTracer *self,
            ChimeEvent *event)
{
  return g_hash_table_lookup (self->open, chime_run_info_get_id (chime_event_get_run (event)));
}

/* Ends the run's span and hands it to the sink. */
static void
end_run (OtlpTracer *self,
         ChimeEvent *event,
         OpenRun    *run)
{
  const ChimeRunId *id = chime_run_info_get_id (chime_event_get_run (event));
  gpointer key, value;

  run->span->end_ns = MAX (chime_event_get_real_time (event) * 1000, run->span->start_ns);
  if (!g_hash_table_steal_extended (self->open, id, &key, &value))
    return;
  g_free (key);
  self->sink (g_steal_pointer (&run->span), self->sink_data);
  g_free (run);
}

static void
first_chunk (OpenRun    *run,
             ChimeEvent *event)
{
  gint64 elapsed = chime_event_get_monotonic_time (event) - run->start_monotonic;

  if (run->got_first_chunk)
    return;
  run->got_first_chunk = TRUE;
  otlp_attributes_set_double (run->span->attributes, "gen_ai.response.time_to_first_chunk",
                              MAX (elapsed, 0) / (gdouble) G_USEC_PER_SEC);
}

void
otlp_tracer_handle (OtlpTracer *self,
                    ChimeEvent *event)
{
  ChimeEventType type = chime_event_get_event_type (event);
  OpenRun *run;

  switch (type)
    {
    case CHIME_EVENT_LLM_START:
    case CHIME_EVENT_CHAT_MODEL_START:
    case CHIME_EVENT_CHAIN_START:
    case CHIME_EVENT_TOOL_START:
    case CHIME_EVENT_RETRIEVER_START:
      start_run (self, event);
      return;
    default:
      break;
    }
  run = lookup_run (self, event);
  /* An event of a run whose start this handler did not see (ignore_*,
   * a drop policy): nothing to add it to. */
  if (run == NULL)
    return;
  switch (type)
    {
    case CHIME_EVENT_LLM_NEW_TOKEN:
      first_chunk (run, event);
      break;
    case CHIME_EVENT_RETRY:
      otlp_genai_retry (run->span, event);
      break;
    case CHIME_EVENT_LLM_END:
    case CHIME_EVENT_CHAIN_END:
    case CHIME_EVENT_TOOL_END:
    case CHIME_EVENT_RETRIEVER_END:
      otlp_genai_end (run->span, event, self->capture_content);
      end_run (self, event, run);
      break;
    case CHIME_EVENT_LLM_ERROR:
    case CHIME_EVENT_CHAIN_ERROR:
    case CHIME_EVENT_TOOL_ERROR:
    case CHIME_EVENT_RETRIEVER_ERROR:
      otlp_genai_end (run->span, event, self->capture_content);
      otlp_genai_error (run->span, event);
      end_run (self, event, run);
      break;
    default:
      break;
    }
}

void
otlp_tracer_free (OtlpTracer *self)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now_ns = g_get_real_time () * 1000;

  if (self == NULL)
    return;
  g_hash_table_iter_init (&iter, self->open);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      OpenRun *run = value;
      OtlpSpan *span = g_steal_pointer (&run->span);

      span->end_ns = MAX (now_ns, span->start_ns);
      span->status_code = OTLP_STATUS_ERROR;
      span->status_message = g_strdup ("the run had not ended when chime stopped");
      otlp_attributes_set_string (span->attributes, "error.type", "chime.run_not_ended");
      self->sink (span, self->sink_data);
    }
  g_hash_table_unref (self->open);
  g_free (self);
}
