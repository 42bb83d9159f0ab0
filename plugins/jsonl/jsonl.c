/* jsonl — every event as one line of JSON in a file.
 *
 * Each line is chime_event_to_json() in compact form, so the file can be
 * read with `jq`, a JSON Lines reader, or line by line with any JSON parser.
 *
 *   [handler trace]
 *   plugin = jsonl
 *   # relative to the INI file's folder
 *   path = trace.jsonl
 *   # false: start a fresh file each run
 *   append = false
 *   # true: fsync() after every line
 *   fsync = false
 *
 * Lines are buffered and flushed at every start, end and error event (the
 * events the fenced delivery waits on), so a reader following the file
 * sees whole runs without paying a write() per token; fsync = true trades
 * speed for durability. The file is flushed and closed at shutdown, after
 * the last event, so nothing is lost.
 *
 * Without append, the file is truncated when the first line is written,
 * not when the handler starts: `chime check` starts every handler (which
 * proves the file can be opened) and must not wipe the last run's trace.
 */
#include <chime/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

typedef struct {
  ChimeHandlerContext *context;
  char                *path;
  FILE                *file;
  gboolean             fsync_every_line;
  gboolean             truncate_at_first_line;
} JsonlWriter;

static const ChimeConfigKey jsonl_keys[] = {
  { "path", CHIME_CONFIG_PATH, NULL, "the file to write, one JSON object per line",
    CHIME_CONFIG_KEY_REQUIRED },
  { "append", CHIME_CONFIG_BOOL, "false", "append to the file instead of truncating it at the first event" },
  { "fsync", CHIME_CONFIG_BOOL, "false", "fsync() after every line, not only flush at run boundaries" },
  { NULL }
};

/* Opens @path for writing with close-on-exec, so that subprocesses the
 * host spawns do not inherit the descriptor. Never truncates: see
 * truncate_once(). */
static FILE *
open_output (const char *path,
             gboolean    append,
             GError    **error)
{
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : 0);
  int fd;
  FILE *file;

  fd = open (path, flags, 0666);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open %s for writing: %s", path, g_strerror (saved_errno));
      return NULL;
    }
  file = fdopen (fd, append ? "a" : "w");
  if (file == NULL)
    {
      int saved_errno = errno;

      close (fd);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open %s for writing: %s", path, g_strerror (saved_errno));
      return NULL;
    }
  return file;
}

static void
jsonl_writer_free (gpointer instance);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JsonlWriter, jsonl_writer_free)

static gpointer
jsonl_writer_new (ChimeHandlerContext *context,
                  GError             **error)
{
  g_autoptr (JsonlWriter) self = g_new0 (JsonlWriter, 1);

  self->context = context;
  self->path = g_strdup (chime_handler_context_get_string (context, "path"));
  self->fsync_every_line = chime_handler_context_get_bool (context, "fsync");
  self->truncate_at_first_line = !chime_handler_context_get_bool (context, "append");
  self->file = open_output (self->path, !self->truncate_at_first_line, error);
  if (self->file == NULL)
    return NULL;
  return g_steal_pointer (&self);
}

static void
jsonl_writer_free (gpointer instance)
{
  JsonlWriter *self = instance;

  if (self->file != NULL)
    {
      /* fclose() flushes; its error is the last chance to hear about a
       * full disk, so report it rather than lose lines silently. */
      if (fflush (self->file) != 0 ||
          (self->fsync_every_line && fsync (fileno (self->file)) != 0))
        chime_handler_log (self->context, G_LOG_LEVEL_WARNING, "cannot write to %s: %s",
                           self->path, g_strerror (errno));
      if (fclose (self->file) != 0)
        chime_handler_log (self->context, G_LOG_LEVEL_WARNING, "cannot close %s: %s",
                           self->path, g_strerror (errno));
    }
  g_free (self->path);
  g_free (self);
}

/* Start, end and error events: the ends of a run's output, where a reader
 * following the file wants to see everything written so far. */
static gboolean
is_run_boundary (ChimeEventType type)
{
  switch (type)
    {
    case CHIME_EVENT_LLM_NEW_TOKEN:
    case CHIME_EVENT_TEXT:
    case CHIME_EVENT_RETRY:
    case CHIME_EVENT_CUSTOM_EVENT:
    case CHIME_EVENT_AGENT_ACTION:
    case CHIME_EVENT_AGENT_FINISH:
      return FALSE;
    default:
      return TRUE;
    }
}

/* Drops the previous run's lines before the first of this one. Nothing has
 * been written yet, so the stream is still at offset 0. */
static gboolean
truncate_once (JsonlWriter *self)
{
  if (!self->truncate_at_first_line)
    return TRUE;
  self->truncate_at_first_line = FALSE;
  return ftruncate (fileno (self->file), 0) == 0;
}

static gboolean
jsonl_on_event (gpointer     instance,
                ChimeEvent  *event,
                GError     **error)
{
  JsonlWriter *self = instance;
  g_autoptr (json_t) json = chime_event_to_json (event);
  gboolean sync_now = self->fsync_every_line;
  gboolean flush_now = sync_now || is_run_boundary (chime_event_get_event_type (event));

  /* Compact JSON escapes newlines inside strings, so one event is one line. */
  if (!truncate_once (self) ||
      json_dumpf (json, self->file, JSON_COMPACT) != 0 ||
      fputc ('\n', self->file) == EOF ||
      (flush_now && fflush (self->file) != 0) ||
      (sync_now && fsync (fileno (self->file)) != 0))
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write to %s: %s", self->path, g_strerror (saved_errno));
      clearerr (self->file);
      return FALSE;
    }
  return TRUE;
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "jsonl",
  .description = "writes every event as one line of JSON to a file",
  .version = CHIME_VERSION_STRING,
  .config_keys = jsonl_keys,
  .instance_new = jsonl_writer_new,
  .instance_free = jsonl_writer_free,
  .on_event = jsonl_on_event,
);
