/* usage — LangChain's UsageMetadataCallbackHandler: token usage per model.
 *
 * On every llm_end it reads the first generation's message of the LLMResult,
 *
 *   {"generations": [[{"text": ..., "message": {"type": "ai", ...,
 *       "usage_metadata": {"input_tokens": 8, "output_tokens": 10,
 *                          "total_tokens": 18, "input_token_details": {...}},
 *       "response_metadata": {"model_name": "..."}}}]], ...}
 *
 * (or the same message serialized by LangChain's dumpd, its fields under
 * "kwargs"), and adds the usage to that model's total the way LangChain's
 * add_usage does: integers are summed key by key, nested detail objects
 * recursively. At shutdown it writes {model: usage} to `path`, or prints it
 * to stderr as one line prefixed "usage: ". It also counts the model
 * requests (LLM and chat model runs) and those that failed, and, with a
 * price table (`prices`: {model: {"input": USD, "output": USD}} per
 * million tokens), what the tokens cost, as LangChain's
 * get_openai_callback() does; on stderr a second line says them when
 * there is something to say (a price table, a failed request, or no
 * usage reported at all), instead of a bare "{}".
 *
 *   [handler usage]
 *   plugin = usage
 *   path = usage.json   # optional
 *   prices = prices.json # optional
 *
 * The plugin is thread-safe, so it may run with run_inline = true and be
 * called from several emitting threads at once.
 */
#include <chime/config.h>
#include <chime/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* LangChain's _dict_int_op gives up at this depth, too. */
#define MAX_USAGE_DEPTH 100

typedef struct {
  ChimeHandlerContext *context;
  char                *path;      /* NULL: print to stderr */
  /* @path, opened as the handler starts: a folder that does not exist
   * fails the run (and `chime check`) before its work, not at the end. */
  GOutputStream       *out;
  /* Guards @by_model: run_inline calls may come from several threads. */
  GMutex               lock;
  json_t              *by_model;  /* model name -> summed usage */
  json_t              *prices;    /* model -> {"input", "output"} USD per 1M tokens, or NULL */
  guint64              requests;  /* LLM and chat model runs started */
  guint64              failed;    /* ... that ended in llm_error */
} UsageTotals;

static const ChimeConfigKey usage_keys[] = {
  { "path", CHIME_CONFIG_PATH, NULL,
    "write {model: usage} as JSON here at shutdown (default: print it to stderr)" },
  { "prices", CHIME_CONFIG_PATH, NULL,
    "a JSON price table, {model: {\"input\": USD, \"output\": USD}} per million tokens, for the cost" },
  { NULL }
};

/* The price table at @path: {model: {"input": n, "output": n}}, USD per
 * million tokens, each number 0 or more. */
static json_t *
read_prices (const char *path,
             GError    **error)
{
  g_autofree char *text = NULL;
  gsize length;
  json_error_t parse_error;
  g_autoptr (json_t) prices = NULL;
  const char *model;
  json_t *price;

  if (!chime_file_get_contents (path, CHIME_CONFIG_MAX_FILE_SIZE, &text, &length, error))
    return NULL;
  prices = json_loadb (text, length, 0, &parse_error);
  if (!json_is_object (prices))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "prices %s is not a JSON object of models: %s", path,
                   prices == NULL ? parse_error.text : "write {\"MODEL\": {\"input\": 2.5, \"output\": 10}}");
      return NULL;
    }
  json_object_foreach (prices, model, price)
    {
      json_t *input = json_object_get (price, "input");
      json_t *output = json_object_get (price, "output");

      if (!json_is_number (input) || !json_is_number (output) ||
          json_number_value (input) < 0 || json_number_value (output) < 0)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "prices %s: model '%s' needs {\"input\": USD, \"output\": USD} per million "
                       "tokens, numbers of 0 or more", path, model);
          return NULL;
        }
    }
  return g_steal_pointer (&prices);
}

static gpointer
usage_totals_new (ChimeHandlerContext *context,
                  GError             **error)
{
  UsageTotals *self = g_new0 (UsageTotals, 1);
  const char *prices = chime_handler_context_get_string (context, "prices");

  if (prices != NULL)
    {
      self->prices = read_prices (prices, error);
      if (self->prices == NULL)
        {
          g_free (self);
          return NULL;
        }
    }

  self->context = context;
  self->path = g_strdup (chime_handler_context_get_string (context, "path"));
  if (self->path != NULL)
    {
      self->out = chime_file_open_output (self->path, error);
      if (self->out == NULL)
        {
          g_clear_pointer (&self->prices, json_decref);
          g_free (self->path);
          g_free (self);
          return NULL;
        }
    }
  g_mutex_init (&self->lock);
  self->by_model = json_object ();
  return self;
}

/* What the tokens of @model cost by the price table; FALSE when it has
 * no price for @model. */
static gboolean
model_cost (UsageTotals *self,
            const char  *model,
            json_t      *usage,
            gdouble     *cost)
{
  json_t *price = json_object_get (self->prices, model);

  if (price == NULL)
    return FALSE;
  *cost = (json_integer_value (json_object_get (usage, "input_tokens")) *
             json_number_value (json_object_get (price, "input")) +
           json_integer_value (json_object_get (usage, "output_tokens")) *
             json_number_value (json_object_get (price, "output"))) / 1e6;
  return TRUE;
}

/* "2 requests, 1 failed, cost $0.000123" (the cost with a price table),
 * or "no token usage reported (1 request, 1 failed)"; NULL when the JSON
 * line says it all (usage reported, nothing failed, no prices). */
static char *
usage_summary (UsageTotals *self)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (GString) unpriced = g_string_new (NULL);
  gdouble total = 0;
  const char *model;
  json_t *usage;

  if (self->prices == NULL && self->failed == 0 && json_object_size (self->by_model) > 0)
    return NULL;
  if (json_object_size (self->by_model) == 0)
    g_string_append (text, "no token usage reported (");
  g_string_append_printf (text, "%" G_GUINT64_FORMAT " %s, %" G_GUINT64_FORMAT " failed", self->requests,
                          self->requests == 1 ? "request" : "requests", self->failed);
  if (json_object_size (self->by_model) == 0)
    g_string_append_c (text, ')');
  if (self->prices == NULL || json_object_size (self->by_model) == 0)
    return g_string_free (g_steal_pointer (&text), FALSE);
  json_object_foreach (self->by_model, model, usage)
    {
      gdouble cost;

      if (model_cost (self, model, usage, &cost))
        total += cost;
      else
        g_string_append_printf (unpriced, "%s'%s'", unpriced->len > 0 ? ", " : "", model);
    }
  {
    char cost_text[G_ASCII_DTOSTR_BUF_SIZE];

    /* Not printf: the host's LC_NUMERIC must not matter. */
    g_string_append_printf (text, ", cost $%s", g_ascii_formatd (cost_text, sizeof cost_text, "%.6f", total));
  }
  if (unpriced->len > 0)
    g_string_append_printf (text, " (no price for %s)", unpriced->str);
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* A report that cannot be written is counted as the handler's failure,
 * so the program running it hears of it and not only a log line. */
static void
usage_totals_report (UsageTotals *self)
{
  g_autofree char *json = NULL;
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;

  /* jansson allocates with malloc(), which g_free() accepts. */
  if (self->path == NULL)
    {
      g_autofree char *summary = usage_summary (self);

      json = json_dumps (self->by_model, JSON_COMPACT);
      if ((json_object_size (self->by_model) > 0 && fprintf (stderr, "usage: %s\n", json) < 0) ||
          (summary != NULL && fprintf (stderr, "usage: %s\n", summary) < 0) || fflush (stderr) != 0)
        {
          int saved_errno = errno;

          clearerr (stderr);
          g_set_error (&error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "cannot write to stderr: %s", g_strerror (saved_errno));
          chime_handler_context_report_error (self->context, error);
        }
      return;
    }

  json = json_dumps (self->by_model, JSON_INDENT (2));
  contents = g_strconcat (json, "\n", NULL);
  /* Into the file named: a regular file is replaced atomically (a reader
   * never sees half a report), a symlink followed, a FIFO written to. */
  if (!g_output_stream_write_all (self->out, contents, strlen (contents), NULL, NULL, &error) ||
      !g_output_stream_close (self->out, NULL, &error))
    {
      g_prefix_error (&error, "cannot write usage to %s: ", self->path);
      chime_handler_context_report_error (self->context, error);
      chime_file_output_abandon (self->out);
    }
}

static void
usage_totals_free (gpointer instance)
{
  UsageTotals *self = instance;

  usage_totals_report (self);
  json_decref (self->by_model);
  g_clear_pointer (&self->prices, json_decref);
  g_mutex_clear (&self->lock);
  g_clear_object (&self->out);
  g_free (self->path);
  g_free (self);
}

/* LangChain counts a generation only when its message is an AIMessage:
 * {"type": "ai"} as chime emits it, an AIMessageChunk, or dumpd's
 * {"lc": 1, "type": "constructor", "id": [..., "AIMessage"], ...}. */
static gboolean
message_is_ai (json_t *message)
{
  const char *type = json_string_value (json_object_get (message, "type"));
  json_t *id = json_object_get (message, "id");
  const char *class_name;

  if (g_strcmp0 (type, "constructor") == 0)
    {
      class_name = json_string_value (json_array_get (id, json_array_size (id) - 1));
      return g_strcmp0 (class_name, "AIMessage") == 0 ||
             g_strcmp0 (class_name, "AIMessageChunk") == 0;
    }
  return g_strcmp0 (type, "ai") == 0 || g_strcmp0 (type, "AIMessageChunk") == 0;
}

/* A field of a message, plain or dumpd-serialized (under "kwargs"). */
static json_t *
message_get (json_t     *message,
             const char *field)
{
  json_t *value = json_object_get (message, field);

  if (value == NULL)
    value = json_object_get (json_object_get (message, "kwargs"), field);
  return value;
}

/* The usage and model of an LLMResult's first generation, as LangChain
 * reads them (later generations are not counted). FALSE when it has no
 * usage or no model name. */
static gboolean
response_get_usage (json_t      *response,
                    json_t     **out_usage,
                    const char **out_model)
{
  json_t *generations = json_object_get (response, "generations");
  json_t *generation = json_array_get (json_array_get (generations, 0), 0);
  json_t *message = json_object_get (generation, "message");
  json_t *usage;
  const char *model;

  if (!message_is_ai (message))
    return FALSE;
  usage = message_get (message, "usage_metadata");
  model = json_string_value (json_object_get (message_get (message, "response_metadata"),
                                              "model_name"));
  /* Python's truthiness: an empty usage or model name counts as none. */
  if (!json_is_object (usage) || json_object_size (usage) == 0 || model == NULL || model[0] == '\0')
    return FALSE;
  *out_usage = usage;
  *out_model = model;
  return TRUE;
}

/* Adds @addend into @total, LangChain's add_usage: integers are summed
 * key by key, nested objects are added recursively, and a key present on
 * one side only counts as 0 or {} on the other. */
static gboolean
usage_add (json_t  *total,
           json_t  *addend,
           guint    depth,
           GError **error)
{
  const char *key;
  json_t *value;

  if (depth >= MAX_USAGE_DEPTH)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "usage_metadata is nested more than %d levels deep", MAX_USAGE_DEPTH);
      return FALSE;
    }

  json_object_foreach (addend, key, value)
    {
      json_t *current = json_object_get (total, key);

      if (json_is_integer (value) && (current == NULL || json_is_integer (current)))
        {
          json_int_t sum = json_integer_value (value) +
                           (current != NULL ? json_integer_value (current) : 0);
          json_object_set_new (total, key, json_integer (sum));
        }
      else if (json_is_object (value) && (current == NULL || json_is_object (current)))
        {
          if (current == NULL)
            {
              current = json_object ();
              json_object_set_new (total, key, current);
            }
          if (!usage_add (current, value, depth + 1, error))
            return FALSE;
        }
      else
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "cannot add usage_metadata key '%s': only integers and objects "
                       "of integers are summed", key);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
usage_on_llm_end (gpointer     instance,
                  ChimeEvent  *event,
                  GError     **error)
{
  UsageTotals *self = instance;
  json_t *usage;
  const char *model;
  /* Declared first, so released last: the reference to the new total is
   * dropped under the lock. Another thread may replace that total (its
   * deep copy read it) the moment the lock is free, and jansson's last
   * json_decref() frees without an acquire: the lock orders that free
   * after the copy, jansson's reference count does not. */
  g_autoptr (GMutexLocker) locker = NULL;
  g_autoptr (json_t) sum = NULL;

  if (!response_get_usage (chime_event_get_response (event), &usage, &model))
    return TRUE;

  locker = g_mutex_locker_new (&self->lock);
  /* Summed into a copy, so that a usage that cannot be added leaves the
   * total as it was. */
  sum = json_object_get (self->by_model, model) != NULL
          ? json_deep_copy (json_object_get (self->by_model, model))
          : json_object ();
  if (!usage_add (sum, usage, 0, error))
    {
      g_prefix_error (error, "model %s: ", model);
      return FALSE;
    }
  json_object_set (self->by_model, model, sum);
  return TRUE;
}

/* llm_start and chat_model_start: one model request. */
static gboolean
usage_on_request (gpointer     instance,
                  ChimeEvent  *event,
                  GError     **error)
{
  UsageTotals *self = instance;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  self->requests++;
  return TRUE;
}

static gboolean
usage_on_llm_error (gpointer     instance,
                    ChimeEvent  *event,
                    GError     **error)
{
  UsageTotals *self = instance;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  self->failed++;
  return TRUE;
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "usage",
  .description = "sums the token usage of every LLM run per model",
  .version = CHIME_VERSION_STRING,
  .flags = CHIME_PLUGIN_THREAD_SAFE,
  .config_keys = usage_keys,
  .instance_new = usage_totals_new,
  .instance_free = usage_totals_free,
  .on_llm_start = usage_on_request,
  .on_chat_model_start = usage_on_request,
  .on_llm_end = usage_on_llm_end,
  .on_llm_error = usage_on_llm_error,
);
