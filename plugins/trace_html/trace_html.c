/* trace_html — the run tree as one self-contained HTML page.
 *
 *   [handler trace]
 *   plugin = trace_html
 *   # relative to the INI file's folder
 *   path = trace.html
 *   # the page's heading (default: "chime run")
 *   title = Jokes
 *
 * `chime run --trace FILE.html` adds this handler as `[handler
 * chime-trace]`. The page shows every run as a bar on one time axis (a
 * waterfall), nested under its parent and coloured by run type, with its
 * name, duration, tokens, time to first token and status; a click shows
 * its inputs, outputs, tags, metadata and error; an LLM run's bar carries
 * the sparkline of its tokens' arrival. A batch is one page with every
 * root run. The page needs nothing but itself: its style and script are
 * inside it (trace-page.html), and so is the run tree, as JSON in a
 * <script id="chime-trace" type="application/json"> element (the format
 * is in trace-runs.h).
 *
 * The file is written once, when the handler shuts down after the last
 * event (at the end of the run, or of a cancelled one: what was seen by
 * then, unfinished runs marked running), into a temporary file renamed
 * onto PATH, so a reader never sees half a page. Payloads go through
 * trace_redact(): a key naming a secret (api_key, authorization, ...)
 * shows "[redacted]". A page that cannot be written is reported (the run
 * ends with status 4); a missing folder is refused at start.
 */
#include <chime/config.h>
#include <chime/plugin.h>

#include "trace-page.h"
#include "trace-runs.h"

typedef struct {
  ChimeHandlerContext *context;
  char                *path;
  char                *title;
  TraceRuns           *runs;
  /* No page without an event: `chime check` starts and frees every
   * handler, and must not replace the last run's page with an empty one. */
  gboolean             saw_event;
} TraceWriter;

static const ChimeConfigKey trace_html_keys[] = {
  { "path", CHIME_CONFIG_PATH, NULL, "the HTML file to write at the end of the run",
    CHIME_CONFIG_KEY_REQUIRED },
  { "title", CHIME_CONFIG_STRING, "chime run", "the page's heading" },
  { NULL }
};

static void trace_writer_free (gpointer instance);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TraceWriter, trace_writer_free)

/* The page is written at the end of the run: a folder that is not there
 * must fail now, not after the whole run. */
static gboolean
check_folder (const char *path,
              GError    **error)
{
  g_autofree char *folder = g_path_get_dirname (path);

  if (g_file_test (folder, G_FILE_TEST_IS_DIR))
    return TRUE;
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
               "cannot write %s: the folder %s does not exist (create it, or set 'path' elsewhere)",
               path, folder);
  return FALSE;
}

static gpointer
trace_writer_new (ChimeHandlerContext *context,
                  GError             **error)
{
  g_autoptr (TraceWriter) self = g_new0 (TraceWriter, 1);

  self->context = context;
  self->path = g_strdup (chime_handler_context_get_string (context, "path"));
  self->title = g_strdup (chime_handler_context_get_string (context, "title"));
  self->runs = trace_runs_new ();
  if (!check_folder (self->path, error))
    return NULL;
  return g_steal_pointer (&self);
}

static void
write_page (TraceWriter *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) trace = trace_runs_to_json (self->runs, self->title);
  g_autoptr (GString) page = trace_page_render (trace);

  /* Into the named file as -o writes: a symlink followed, only a regular
   * file replaced atomically. */
  if (!chime_file_set_contents (self->path, page->str, (gssize) page->len, &error))
    chime_handler_context_report_error (self->context, error);
}

static void
trace_writer_free (gpointer instance)
{
  TraceWriter *self = instance;

  if (self->saw_event)
    write_page (self);
  g_clear_pointer (&self->runs, trace_runs_free);
  g_free (self->path);
  g_free (self->title);
  g_free (self);
}

static gboolean
trace_writer_on_event (gpointer     instance,
                       ChimeEvent  *event,
                       GError     **error)
{
  TraceWriter *self = instance;
  json_t *update = trace_runs_apply (self->runs, event);

  self->saw_event = TRUE;
  if (update != NULL)
    json_decref (update);
  return TRUE;
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "trace_html",
  .description = "writes the run tree as one self-contained HTML page (a waterfall)",
  .version = CHIME_VERSION_STRING,
  .config_keys = trace_html_keys,
  .instance_new = trace_writer_new,
  .instance_free = trace_writer_free,
  .on_event = trace_writer_on_event,
);
