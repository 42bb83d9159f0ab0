/* astream_events — the stream of LangChain's astream_events(version="v2")
 * as JSON lines.
 *
 * Each event the handler receives becomes at most one line:
 *
 *   {"event": "on_chat_model_stream", "name": "FakeChat", "run_id": "...",
 *    "parent_ids": ["<root run id>"], "tags": ["seq:step:2"],
 *    "metadata": {}, "data": {"chunk": {"content": "Why", ...}}}
 *
 * with the keys in that order. `chime run --events FILE` adds this handler
 * as `[handler chime-events]`; it can also be configured by hand:
 *
 *   [handler stream]
 *   plugin = astream_events
 *   path = events.jsonl   # relative to the INI file's folder; "-": stdout
 *
 * The mapping follows LangChain's _AstreamEventsCallbackHandler:
 *
 *   chain_start        on_{run_type}_start   {"input": inputs}
 *   chain_end          on_{run_type}_end     {"output": outputs, "input": inputs at start}
 *                                            (the root run's end has no "input")
 *   chat_model_start   on_chat_model_start   {"input": {"messages": messages}}
 *   llm_new_token      on_chat_model_stream  {"chunk": the AIMessageChunk}
 *                      on_llm_stream         {"chunk": the GenerationChunk}  (llm runs)
 *   llm_start          on_llm_start          {"input": {"prompts": prompts}}
 *   llm_end            on_chat_model_end     {"output": generations[0][0].message, "input": ...}
 *                      on_llm_end            {"output": {"generations", "llm_output"}, "input": ...}
 *   tool_start/end     on_tool_start/end     {"input": inputs} / {"output": output, "input": ...}
 *   retriever_*        on_retriever_start/end {"input": {"query": q}} / {"output": documents, "input": ...}
 *   custom_event       on_custom_event       name: the user's event name, data: the user's data
 *   custom_event named CHIME_STREAM_EVENT ("chime.stream", a chunk of a run's output stream)
 *                      on_{run_type}_stream  {"chunk": chunk}  (on_parser_stream, on_chain_stream)
 *
 * Error events, texts, retries and agent actions produce no line: LangChain
 * raises the error out of astream_events instead of streaming it, and has
 * no stream event for the others. `parent_ids` lists the run's ancestors,
 * root first ([] for a root run).
 *
 * On stdout every line is flushed as soon as it is written (and written in
 * one piece, so lines of other handlers printing on stdout never cut into
 * it). A file is flushed at every start, end and error event and when the
 * handler shuts down, after the last event: nothing is lost.
 */
#include <chime/plugin.h>

#include "stream-shapes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  json_t *inputs;     /* what the end event reports as "input"; may be NULL */
  char   *parent_id;  /* NULL for a root run */
} RunRecord;

typedef struct {
  ChimeHandlerContext *context;
  char                *path;       /* for messages; "-" for stdout */
  FILE                *file;
  gboolean             is_stdout;
  /* A write failed: it was reported once, and nothing more is written. */
  gboolean             broken;
  /* run id (string) -> RunRecord, from a run's start to its end or error */
  GHashTable          *runs;
} Streamer;

static const ChimeConfigKey astream_events_keys[] = {
  /* A string, not a path: "-" must stay "-". Relative paths are resolved
   * here, against the INI file's folder, as CHIME_CONFIG_PATH would. */
  { "path", CHIME_CONFIG_STRING, NULL,
    "where to write the astream_events v2 JSON lines: a file (relative to the INI file's folder, "
    "truncated at start) or '-' for stdout",
    CHIME_CONFIG_KEY_REQUIRED },
  { NULL }
};

static void
run_record_free (gpointer data)
{
  RunRecord *record = data;

  g_clear_pointer (&record->inputs, json_decref);
  g_free (record->parent_id);
  g_free (record);
}

/* ------------------------------------------------------------------
 * Setting up
 * ---------------------------------------------------------------- */

/* @path as CHIME_CONFIG_PATH resolves it: "~/" is the home folder, and a
 * relative path is relative to the INI file's folder (the current folder
 * for a configuration that came from no file). */
static char *
resolve_path (ChimeHandlerContext *context,
              const char          *path)
{
  const char *config_file = chime_handler_context_get_config_file (context);
  g_autofree char *expanded = NULL;
  g_autofree char *base = NULL;

  if (g_str_has_prefix (path, "~/"))
    expanded = g_build_filename (g_get_home_dir (), path + 2, NULL);
  else
    expanded = g_strdup (path);
  if (config_file != NULL)
    base = g_path_get_dirname (config_file);
  return g_canonicalize_filename (expanded, base);
}

/* Opens @path for writing, truncated, with close-on-exec so that
 * subprocesses the host spawns do not inherit the descriptor. */
static FILE *
open_output (const char *path,
             GError    **error)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  FILE *file;
  int saved_errno;

  if (fd < 0)
    {
      saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open %s for writing: %s", path, g_strerror (saved_errno));
      return NULL;
    }
  file = fdopen (fd, "w");
  if (file == NULL)
    {
      saved_errno = errno;
      close (fd);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open %s for writing: %s", path, g_strerror (saved_errno));
      return NULL;
    }
  return file;
}

static void streamer_free (gpointer instance);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Streamer, streamer_free)

static gpointer
streamer_new (ChimeHandlerContext *context,
              GError             **error)
{
  g_autoptr (Streamer) self = g_new0 (Streamer, 1);
  const char *path = chime_handler_context_get_string (context, "path");

  self->context = context;
  self->runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, run_record_free);
  if (path == NULL || path[0] == '\0')
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "'path' must name a file, or be '-' for stdout");
      return NULL;
    }
  if (g_str_equal (path, "-"))
    {
      self->path = g_strdup ("-");
      self->file = stdout;
      self->is_stdout = TRUE;
      return g_steal_pointer (&self);
    }
  self->path = resolve_path (context, path);
  self->file = open_output (self->path, error);
  if (self->file == NULL)
    return NULL;
  return g_steal_pointer (&self);
}

/* The last lines' flush at shutdown is the last chance to hear of a full
 * disk: a failure is reported (counted, not only logged), unless the
 * stream failed before and said so already. */
static void
report_errno (Streamer   *self,
              int         saved_errno,
              const char *verb)
{
  g_autoptr (GError) error = NULL;

  if (self->broken)
    return;
  self->broken = TRUE;
  g_set_error (&error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot %s %s: %s",
               verb, self->is_stdout ? "stdout" : self->path, g_strerror (saved_errno));
  chime_handler_context_report_error (self->context, error);
}

static void
streamer_free (gpointer instance)
{
  Streamer *self = instance;

  if (self->file != NULL && !self->broken && fflush (self->file) != 0)
    report_errno (self, errno, "write to");
  if (self->file != NULL && !self->is_stdout && fclose (self->file) != 0)
    report_errno (self, errno, "close");
  g_clear_pointer (&self->runs, g_hash_table_unref);
  g_free (self->path);
  g_free (self);
}

/* ------------------------------------------------------------------
 * Runs
 * ---------------------------------------------------------------- */

static void
id_string (const ChimeRunId *id,
           char              out[CHIME_RUN_ID_STRING_LEN])
{
  chime_run_id_to_string (id, out);
}

/* The run's ancestors, root first; [] for a root run. The run facts carry
 * the chain of parents; where a parent is known by id only (a manager
 * given a parent run id), the runs this handler saw starting fill in the
 * rest, as LangChain's parent_map does. */
static json_t *
parent_ids_of (Streamer           *self,
               const ChimeRunInfo *info)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  json_t *array = json_array ();
  const ChimeRunInfo *current = info;
  char text[CHIME_RUN_ID_STRING_LEN];
  const char *key;

  for (;;)
    {
      const ChimeRunInfo *parent = chime_run_info_get_parent (current);

      if (parent == NULL)
        break;
      id_string (chime_run_info_get_id (parent), text);
      g_ptr_array_add (ids, g_strdup (text));
      current = parent;
    }
  {
    const ChimeRunId *parent_id = chime_run_info_get_parent_id (current);

    /* Continue by id: from the unknown parent, or, for a run without a
     * parent (a custom event emitted with an enclosing run's id), from the
     * run itself. */
    if (parent_id != NULL)
      {
        id_string (parent_id, text);
        g_ptr_array_add (ids, g_strdup (text));
      }
    else
      id_string (chime_run_info_get_id (current), text);
  }
  key = text;
  /* A bounded walk: a cycle would be a bug in the emitter, not a hang. */
  for (guint hops = 0; hops < 10000; hops++)
    {
      RunRecord *record = g_hash_table_lookup (self->runs, key);

      if (record == NULL || record->parent_id == NULL)
        break;
      g_ptr_array_add (ids, g_strdup (record->parent_id));
      key = record->parent_id;
    }
  for (guint i = ids->len; i > 0; i--)
    json_array_append_new (array, json_string (g_ptr_array_index (ids, i - 1)));
  return array;
}

/* Remembers a run from its start event on, with what its end reports as
 * "input". */
static void
remember_run (Streamer           *self,
              const ChimeRunInfo *info,
              json_t             *inputs)
{
  RunRecord *record = g_new0 (RunRecord, 1);
  const ChimeRunId *parent_id = chime_run_info_get_parent_id (info);
  char text[CHIME_RUN_ID_STRING_LEN];

  record->inputs = inputs != NULL ? json_incref (inputs) : NULL;
  if (parent_id != NULL)
    {
      id_string (parent_id, text);
      record->parent_id = g_strdup (text);
    }
  id_string (chime_run_info_get_id (info), text);
  g_hash_table_replace (self->runs, g_strdup (text), record);
}

static RunRecord *
lookup_run (Streamer           *self,
            const ChimeRunInfo *info)
{
  char text[CHIME_RUN_ID_STRING_LEN];

  id_string (chime_run_info_get_id (info), text);
  return g_hash_table_lookup (self->runs, text);
}

static void
forget_run (Streamer           *self,
            const ChimeRunInfo *info)
{
  char text[CHIME_RUN_ID_STRING_LEN];

  id_string (chime_run_info_get_id (info), text);
  g_hash_table_remove (self->runs, text);
}

/* The "input" of an end event: what the start stored, else {}. New
 * reference. */
static json_t *
stored_inputs (Streamer           *self,
               const ChimeRunInfo *info)
{
  RunRecord *record = lookup_run (self, info);

  return record != NULL && record->inputs != NULL ? json_incref (record->inputs) : json_object ();
}

static gboolean
is_chat_model (const ChimeRunInfo *info)
{
  const char *run_type = chime_run_info_get_run_type (info);

  return run_type != NULL && g_str_equal (run_type, "chat_model");
}

/* @value (a new reference), or @fallback (taken) when @value is NULL. */
static json_t *
json_or (json_t *value,
         json_t *fallback)
{
  if (value != NULL)
    {
      json_decref (fallback);
      return json_incref (value);
    }
  return fallback;
}

/* ------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------- */

static gboolean
write_line (Streamer   *self,
            const char *event_name,
            const char *name,
            ChimeEvent *event,
            json_t     *data,        /* taken */
            gboolean    flush_file,
            GError    **error)
{
  const ChimeRunInfo *info = chime_event_get_run (event);
  g_autoptr (json_t) line = json_object ();
  g_autofree char *text = NULL;
  json_t *tags = json_array ();
  char id[CHIME_RUN_ID_STRING_LEN];
  gboolean ok;
  int saved_errno = 0;

  for (const char * const *tag = chime_run_info_get_tags (info); *tag != NULL; tag++)
    json_array_append_new (tags, json_string (*tag));
  id_string (chime_run_info_get_id (info), id);

  json_object_set_new (line, "event", json_string (event_name));
  json_object_set_new (line, "name", json_string (name != NULL ? name : "Unnamed"));
  json_object_set_new (line, "run_id", json_string (id));
  json_object_set_new (line, "parent_ids", parent_ids_of (self, info));
  json_object_set_new (line, "tags", tags);
  json_object_set (line, "metadata", chime_run_info_get_metadata (info));
  json_object_set_new (line, "data", data != NULL ? data : json_object ());

  /* Said once: after a failed write nothing more is written. */
  if (self->broken)
    return TRUE;
  /* Compact JSON escapes newlines inside strings: one event, one line. */
  text = json_dumps (line, JSON_COMPACT);
  if (text == NULL)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "cannot serialize the %s event to JSON", event_name);
      return FALSE;
    }
  /* One locked write per line, so other threads printing on the same
   * stream never cut into it. */
  flockfile (self->file);
  ok = fputs (text, self->file) != EOF && putc_unlocked ('\n', self->file) != EOF &&
       ((!self->is_stdout && !flush_file) || fflush (self->file) == 0);
  if (!ok)
    {
      saved_errno = errno;
      clearerr (self->file);
    }
  funlockfile (self->file);
  if (!ok)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write to %s: %s", self->is_stdout ? "stdout" : self->path,
                   g_strerror (saved_errno));
      self->broken = TRUE;
      return FALSE;
    }
  return TRUE;
}

static gboolean
flush_output (Streamer  *self,
              GError   **error)
{
  if (!self->broken && fflush (self->file) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write to %s: %s", self->is_stdout ? "stdout" : self->path,
                   g_strerror (saved_errno));
      clearerr (self->file);
      self->broken = TRUE;
      return FALSE;
    }
  return TRUE;
}

/* on_chain_start, on_prompt_start, on_parser_start, ... */
static char *
chain_event_name (const ChimeRunInfo *info,
                  const char         *stage)
{
  const char *run_type = chime_run_info_get_run_type (info);

  return g_strdup_printf ("on_%s_%s", run_type != NULL ? run_type : "chain", stage);
}

/* LangChain leaves "input" out of a start whose inputs are the placeholder
 * {"input": ""} (the input is not known yet); the root's is always there. */
static gboolean
is_placeholder_input (json_t *inputs)
{
  json_t *input = json_object_get (inputs, "input");

  return json_is_object (inputs) && json_object_size (inputs) == 1 &&
         json_is_string (input) && json_string_length (input) == 0;
}

static gboolean
astream_on_event (gpointer     instance,
                  ChimeEvent  *event,
                  GError     **error)
{
  Streamer *self = instance;
  const ChimeRunInfo *info = chime_event_get_run (event);
  const char *name = chime_run_info_get_name (info);
  gboolean is_root = chime_run_info_get_parent_id (info) == NULL;
  g_autofree char *event_name = NULL;
  json_t *data = NULL;
  json_t *inputs;
  gboolean ok;

  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_CHAIN_START:
      inputs = chime_event_get_inputs (event);
      data = json_object ();
      if (inputs != NULL && (is_root || !is_placeholder_input (inputs)))
        {
          json_object_set (data, "input", inputs);
          remember_run (self, info, inputs);
        }
      else
        remember_run (self, info, NULL);
      event_name = chain_event_name (info, "start");
      return write_line (self, event_name, name, event, data, TRUE, error);

    case CHIME_EVENT_CHAIN_END:
      data = json_object ();
      json_object_set_new (data, "output", json_or (chime_event_get_outputs (event), json_null ()));
      /* v2 deletes "input" from the root run's end event. */
      if (!is_root)
        json_object_set_new (data, "input",
                             chime_event_get_inputs (event) != NULL
                               ? json_incref (chime_event_get_inputs (event))
                               : stored_inputs (self, info));
      event_name = chain_event_name (info, "end");
      ok = write_line (self, event_name, name, event, data, TRUE, error);
      forget_run (self, info);
      return ok;

    case CHIME_EVENT_CHAT_MODEL_START:
      inputs = json_pack ("{s:o}", "messages", json_or (chime_event_get_messages (event), json_array ()));
      remember_run (self, info, inputs);
      data = json_pack ("{s:o}", "input", inputs);
      return write_line (self, "on_chat_model_start", name, event, data, TRUE, error);

    case CHIME_EVENT_LLM_START:
      inputs = json_pack ("{s:o}", "prompts", json_or (chime_event_get_prompts (event), json_array ()));
      remember_run (self, info, inputs);
      data = json_pack ("{s:o}", "input", inputs);
      return write_line (self, "on_llm_start", name, event, data, TRUE, error);

    case CHIME_EVENT_LLM_NEW_TOKEN:
      if (is_chat_model (info))
        return write_line (self, "on_chat_model_stream", name, event,
                           json_pack ("{s:o}", "chunk", astream_chat_stream_chunk (event)), FALSE, error);
      return write_line (self, "on_llm_stream", name, event,
                         json_pack ("{s:o}", "chunk", astream_llm_stream_chunk (event)), FALSE, error);

    case CHIME_EVENT_LLM_END:
      {
        json_t *response = chime_event_get_response (event);
        gboolean chat = is_chat_model (info);

        data = json_pack ("{s:o, s:o}",
                          "output", chat ? astream_chat_end_output (response) : astream_llm_end_output (response),
                          "input", stored_inputs (self, info));
        ok = write_line (self, chat ? "on_chat_model_end" : "on_llm_end", name, event, data, TRUE, error);
        forget_run (self, info);
        return ok;
      }

    case CHIME_EVENT_TOOL_START:
      inputs = chime_event_get_inputs (event);
      remember_run (self, info, inputs);
      data = json_pack ("{s:o}", "input", json_or (inputs, json_object ()));
      return write_line (self, "on_tool_start", name, event, data, TRUE, error);

    case CHIME_EVENT_TOOL_END:
      data = json_pack ("{s:o, s:o}",
                        "output", json_or (chime_event_get_outputs (event), json_null ()),
                        "input", stored_inputs (self, info));
      ok = write_line (self, "on_tool_end", name, event, data, TRUE, error);
      forget_run (self, info);
      return ok;

    case CHIME_EVENT_RETRIEVER_START:
      inputs = json_pack ("{s:s}", "query", chime_event_get_text (event) != NULL ? chime_event_get_text (event) : "");
      remember_run (self, info, inputs);
      data = json_pack ("{s:o}", "input", inputs);
      return write_line (self, "on_retriever_start", name, event, data, TRUE, error);

    case CHIME_EVENT_RETRIEVER_END:
      data = json_pack ("{s:o, s:o}",
                        "output", json_or (chime_event_get_data (event), json_array ()),
                        "input", stored_inputs (self, info));
      ok = write_line (self, "on_retriever_end", name, event, data, TRUE, error);
      forget_run (self, info);
      return ok;

    case CHIME_EVENT_CUSTOM_EVENT:
      if (g_strcmp0 (chime_event_get_custom_name (event), CHIME_STREAM_EVENT) == 0)
        {
          /* A chunk of the run's output stream: on_parser_stream,
           * on_chain_stream, ... with {"chunk": ...}. */
          event_name = chain_event_name (info, "stream");
          return write_line (self, event_name, name, event,
                             json_or (chime_event_get_data (event), json_object ()), FALSE, error);
        }
      data = json_or (chime_event_get_data (event), json_null ());
      return write_line (self, "on_custom_event", chime_event_get_custom_name (event), event, data,
                         FALSE, error);

    case CHIME_EVENT_LLM_ERROR:
    case CHIME_EVENT_CHAIN_ERROR:
    case CHIME_EVENT_TOOL_ERROR:
    case CHIME_EVENT_RETRIEVER_ERROR:
      /* No stream event (LangChain raises instead); the run is over, and
       * whatever streamed before the failure is made visible now. */
      forget_run (self, info);
      return flush_output (self, error);

    case CHIME_EVENT_TEXT:
    case CHIME_EVENT_RETRY:
    case CHIME_EVENT_AGENT_ACTION:
    case CHIME_EVENT_AGENT_FINISH:
    case CHIME_EVENT_N_TYPES:
    default:
      return TRUE;
    }
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "astream_events",
  .description = "writes LangChain's astream_events v2 stream as JSON lines "
                 "{event, name, run_id, parent_ids, tags, metadata, data}: on_{run_type}_start/end for chains, "
                 "prompts and parsers, on_chat_model_start/stream/end, on_llm_*, on_tool_*, on_retriever_*, "
                 "on_custom_event; errors end the stream without an event (chime run --events FILE)",
  .version = CHIME_VERSION_STRING,
  /* The steps' output chunks, as CHIME_STREAM_EVENT custom events. */
  .flags = CHIME_PLUGIN_WANTS_STREAM,
  .config_keys = astream_events_keys,
  .instance_new = streamer_new,
  .instance_free = streamer_free,
  .on_event = astream_on_event,
);
