/* Batch runs: a bounded pool of pipeline runs fed from a JSON Lines file.
 *
 * Lines are read asynchronously, one at a time, only when a run can
 * start: at most `concurrency` runs are in flight, and a run starts only
 * while fewer than REORDER_WINDOW_FACTOR × concurrency results wait for
 * an earlier, slower input to finish — results are written in input
 * order, and this bounds what is held back for it. */
#include "config.h"

#include "batch.h"
#include "batch-input.h"
#include "json-compact.h"
#include "pipeline-error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define REORDER_WINDOW_FACTOR 8

typedef struct {
  ChimePipeline    *pipeline;
  GHashTable       *defaults;
  const char       *inputs_path;
  ChimeBatchInput  *in;            /* NULL until opened */
  GOutputStream    *out;
  GCancellable     *cancellable;
  GMainLoop        *loop;
  guint             concurrency;
  guint64           window;
  guint64           next_index;    /* index of the next input read */
  guint64           next_write;    /* index of the next result to write */
  guint             running;
  gboolean          reading;       /* opening, or reading a line */
  gboolean          eof;
  GHashTable       *finished;      /* index -> result line (json_t *) not yet written */
  int               failed;
  GError           *error;         /* reading or writing failed: stop */
} Batch;

typedef struct {
  Batch  *batch;
  guint64 index;
} BatchRun;

static void pump (Batch *batch);

static gboolean
is_over (Batch *batch)
{
  return (batch->eof || batch->error != NULL || g_cancellable_is_cancelled (batch->cancellable)) &&
         batch->running == 0 && !batch->reading;
}

static void
write_line (Batch  *batch,
            json_t *line)
{
  g_autoptr (GString) text = NULL;

  if (batch->error != NULL)
    return;
  text = g_string_sized_new (4096);
  chime_json_append_compact (text, line);
  g_string_append_c (text, '\n');
  if (batch->out != NULL)
    {
      g_output_stream_write_all (batch->out, text->str, text->len, NULL, NULL, &batch->error);
      return;
    }
  /* Through stdio, like everything else the runner prints. */
  if (fputs (text->str, stdout) < 0 || fflush (stdout) != 0)
    g_set_error (&batch->error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot write the results: %s",
                 g_strerror (errno));
}

/* Records the result of input @index and writes every result that is
 * now next in line. Takes @line. */
static void
add_result (Batch  *batch,
            guint64 index,
            json_t *line)
{
  json_t *next;

  if (json_object_get (line, "error") != NULL)
    batch->failed++;
  g_hash_table_insert (batch->finished, g_memdup2 (&index, sizeof index), line);
  while ((next = g_hash_table_lookup (batch->finished, &batch->next_write)) != NULL)
    {
      write_line (batch, next);
      g_hash_table_remove (batch->finished, &batch->next_write);
      batch->next_write++;
    }
}

/* An input's error line: the error as events carry it, its domain named
 * for a reader ("chime-config-error", not GLib's quark string
 * "chime-config-error-quark"). */
static void
add_failure (Batch        *batch,
             guint64       index,
             const GError *error)
{
  json_t *json = chime_error_to_json (error);
  const char *domain = json_string_value (json_object_get (json, "domain"));

  if (domain != NULL && g_str_has_suffix (domain, "-quark"))
    json_object_set_new (json, "domain", json_stringn (domain, strlen (domain) - strlen ("-quark")));
  add_result (batch, index, json_pack ("{s:I, s:o}", "index", (json_int_t) index, "error", json));
}

static void
on_run_done (json_t  *output,
             GError  *failure,
             gpointer data)
{
  BatchRun *run = data;
  Batch *batch = run->batch;
  g_autoptr (GError) error = failure;

  batch->running--;
  if (output == NULL)
    add_failure (batch, run->index, error);
  else
    {
      json_t *line = json_pack ("{s:I}", "index", (json_int_t) run->index);

      json_object_update (line, output);
      json_decref (output);
      add_result (batch, run->index, line);
    }
  g_free (run);
  pump (batch);
}

/* The variables of one input: @defaults, then the line's members. */
static GHashTable *
input_variables (Batch      *batch,
                 const char *line,
                 GError    **error)
{
  g_autoptr (GHashTable) variables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (json_t) object = NULL;
  json_error_t json_error;
  const char *key;
  json_t *value;

  if (batch->defaults != NULL)
    {
      GHashTableIter iter;
      gpointer name, text;

      g_hash_table_iter_init (&iter, batch->defaults);
      while (g_hash_table_iter_next (&iter, &name, &text))
        g_hash_table_replace (variables, g_strdup (name), g_strdup (text));
    }
  object = json_loads (line, 0, &json_error);
  if (!json_is_object (object))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                   "the input is not a JSON object of variables: %s",
                   object == NULL ? json_error.text : "another JSON value");
      return NULL;
    }
  json_object_foreach (object, key, value)
    {
      char *text;

      if (json_is_string (value))
        text = g_strdup (json_string_value (value));
      else if (json_is_number (value) || json_is_boolean (value))
        {
          char *dumped = json_dumps (value, JSON_ENCODE_ANY);

          text = g_strdup (dumped);
          free (dumped);
        }
      else
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                       "variable '%s' of the input must be a string, a number or a boolean", key);
          return NULL;
        }
      g_hash_table_replace (variables, g_strdup (key), text);
    }
  return g_steal_pointer (&variables);
}

/* The command line's hint (--input, --var) is wrong here: the variables
 * come from the line. */
static gboolean
check_input_variables (Batch      *batch,
                       GHashTable *variables,
                       GError    **error)
{
  const GPtrArray *used = chime_pipeline_get_variables (batch->pipeline);
  g_autoptr (GString) missing = g_string_new (NULL);
  guint n_missing = 0;

  for (guint i = 0; i < used->len; i++)
    if (!g_hash_table_contains (variables, used->pdata[i]))
      g_string_append_printf (missing, "%s\"%s\"", n_missing++ > 0 ? ", " : "", (char *) used->pdata[i]);
  if (n_missing == 0)
    return TRUE;
  g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_VARIABLES,
               "the input has no %s, which the prompt uses; add %s to the line, or give every "
               "line a value with --var NAME=VALUE", missing->str, n_missing > 1 ? "them" : "it");
  return FALSE;
}

/* A line that is not text is that input's failure, as bad JSON is:
 * jansson would stop at a NUL byte and take what comes before it. */
static gboolean
check_text (Batch      *batch,
            const char *line,
            gsize       length,
            GError    **error)
{
  const char *nul = memchr (line, '\0', length);
  const char *end = NULL;
  guint64 number = chime_batch_input_get_line_number (batch->in);

  if (nul != NULL)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                   "line %" G_GUINT64_FORMAT " of %s has a NUL byte (byte %" G_GSIZE_FORMAT "); a JSON "
                   "Lines file is text", number, batch->inputs_path, (gsize) (nul - line) + 1);
      return FALSE;
    }
  if (!g_utf8_validate_len (line, length, &end))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                   "line %" G_GUINT64_FORMAT " of %s is not UTF-8 text (byte %" G_GSIZE_FORMAT " is "
                   "0x%02X); save the file as UTF-8", number, batch->inputs_path,
                   (gsize) (end - line) + 1, (guint) (guchar) *end);
      return FALSE;
    }
  return TRUE;
}

static void
start_input (Batch      *batch,
             const char *line,
             gsize       length)
{
  guint64 index = batch->next_index++;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) variables = NULL;
  BatchRun *run;

  if (check_text (batch, line, length, &error))
    variables = input_variables (batch, line, &error);
  if (variables == NULL || !check_input_variables (batch, variables, &error))
    {
      add_failure (batch, index, error);
      return;
    }
  run = g_new0 (BatchRun, 1);
  run->batch = batch;
  run->index = index;
  batch->running++;
  chime_pipeline_run_async (batch->pipeline, variables, batch->cancellable, on_run_done, run);
}

static void
stop_on_error (Batch  *batch,
               GError *error)
{
  if (batch->error == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    batch->error = g_steal_pointer (&error);
  g_clear_error (&error);
}

static void
on_line (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  Batch *batch = data;
  GError *error = NULL;
  gsize length = 0;
  g_autofree char *line = chime_batch_input_read_line_finish (batch->in, result, &length, &error);

  batch->reading = FALSE;
  if (error != NULL)
    stop_on_error (batch, error);
  else if (line == NULL)
    batch->eof = TRUE;
  else if (!chime_jsonl_line_is_blank (line, length))
    start_input (batch, line, length);
  pump (batch);
}

static void
on_opened (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  Batch *batch = data;
  GError *error = NULL;

  batch->in = chime_batch_input_open_finish (result, &error);
  batch->reading = FALSE;
  if (batch->in == NULL)
    stop_on_error (batch, error);
  pump (batch);
}

/* Reads the next input if a run may start; ends the loop when all is
 * done. */
static void
pump (Batch *batch)
{
  if (is_over (batch))
    {
      g_main_loop_quit (batch->loop);
      return;
    }
  if (batch->reading || batch->eof || batch->error != NULL ||
      g_cancellable_is_cancelled (batch->cancellable) ||
      batch->running >= batch->concurrency ||
      batch->next_index - batch->next_write >= batch->window)
    return;
  batch->reading = TRUE;
  if (batch->in == NULL)
    chime_batch_input_open_async (batch->inputs_path, batch->cancellable, on_opened, batch);
  else
    chime_batch_input_read_line_async (batch->in, batch->cancellable, on_line, batch);
}

static gboolean
on_start (gpointer data)
{
  pump (data);
  return G_SOURCE_REMOVE;
}

int
chime_batch_run (ChimePipeline *pipeline,
                 const char    *inputs_path,
                 GHashTable    *defaults,
                 guint          concurrency,
                 GCancellable  *cancellable,
                 GOutputStream *out,
                 GError       **error)
{
  g_autoptr (GCancellable) own_cancellable = NULL;
  g_autoptr (GMainContext) context = g_main_context_ref_thread_default ();
  g_autoptr (GSource) start = g_idle_source_new ();
  Batch batch = { 0 };

  g_return_val_if_fail (pipeline != NULL && inputs_path != NULL, -1);

  if (cancellable == NULL)
    cancellable = own_cancellable = g_cancellable_new ();
  batch.pipeline = pipeline;
  batch.defaults = defaults;
  batch.inputs_path = inputs_path;
  batch.out = out;
  batch.cancellable = cancellable;
  batch.concurrency = MAX (concurrency, 1);
  batch.window = (guint64) batch.concurrency * REORDER_WINDOW_FACTOR;
  batch.finished = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                          (GDestroyNotify) json_decref);
  batch.loop = g_main_loop_new (context, FALSE);

  g_source_set_callback (start, on_start, &batch, NULL);
  g_source_attach (start, context);
  g_main_loop_run (batch.loop);
  g_source_destroy (start);

  g_main_loop_unref (batch.loop);
  g_hash_table_unref (batch.finished);
  chime_batch_input_free (batch.in);
  if (batch.error != NULL)
    {
      g_propagate_prefixed_error (error, batch.error, "batch %s: ", inputs_path);
      return -1;
    }
  return batch.failed;
}
