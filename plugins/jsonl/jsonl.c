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
 *   # true: each line has the event's id, and an event the file has is
 *   # not written again (a redelivery by `chime consume`)
 *   dedupe = false
 *   # with dedupe: how many runs' ids are remembered
 *   dedupe_runs = 100000
 *
 * Every line is written with one write(2) as soon as it is made: the file
 * ends with a whole line whatever happens to the process next (another
 * handler that crashes it, say), and a reader following the file sees
 * every event as it is handled. fsync = true adds durability against a
 * crash of the machine.
 *
 * A write that fails (a full disk, a closed pipe) is reported once, with
 * the file and errno's reason, and the handler writes nothing more: the
 * runtime counts the failure and `chime run` ends with status 4.
 *
 * Without append, the file is truncated when the first line is written,
 * not when the handler starts: `chime check` starts every handler (which
 * proves the file can be opened) and must not wipe the last run's trace.
 */
#include <chime/plugin.h>

#include "jsonl-dedupe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  ChimeHandlerContext *context;
  char                *path;
  int                  fd;
  gboolean             fsync_every_line;
  gboolean             truncate_at_first_line;
  /* A write failed: it was reported, and nothing more is written. */
  gboolean             broken;
  /* The line being written, kept between events to spare an allocation
   * per event. */
  char                *line;
  gsize                line_size;
  /* dedupe = true: the ids the file holds (jsonl-dedupe.c). */
  JsonlSeen           *seen;
  guint64              n_duplicates;
} JsonlWriter;

static const ChimeConfigKey jsonl_keys[] = {
  { "path", CHIME_CONFIG_PATH, NULL, "the file to write, one JSON object per line",
    CHIME_CONFIG_KEY_REQUIRED },
  { "append", CHIME_CONFIG_BOOL, "false", "append to the file instead of truncating it at the first event" },
  { "fsync", CHIME_CONFIG_BOOL, "false", "fsync() after every line, not only write it at once" },
  { "dedupe", CHIME_CONFIG_BOOL, "false",
    "write each event's id (event_id) and skip an event whose id the file has already, "
    "even when another process wrote it (use append = true to share a file)" },
  { "dedupe_runs", CHIME_CONFIG_INT, "100000",
    "with dedupe: the ids of this many runs are remembered, the ones seen last" },
  { NULL }
};

/* Sets @error to "cannot VERB PATH: reason" from errno. */
static void
set_errno_error (GError    **error,
                 int         saved_errno,
                 const char *verb,
                 const char *path)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               "cannot %s %s: %s", verb, path, g_strerror (saved_errno));
}

/* Opens @path for writing with close-on-exec, so that subprocesses the
 * host spawns do not inherit the descriptor. Never truncates: see
 * truncate_once(). */
static int
open_output (const char *path,
             gboolean    append,
             gboolean    readable,
             GError    **error)
{
  /* dedupe reads the lines back (other writers' too). */
  int fd = open (path, (readable ? O_RDWR : O_WRONLY) | O_CREAT | O_CLOEXEC | (append ? O_APPEND : 0), 0666);

  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open %s for writing: %s", path, g_strerror (saved_errno));
    }
  return fd;
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
  self->fd = open_output (self->path, !self->truncate_at_first_line,
                          chime_handler_context_get_bool (context, "dedupe"), error);
  if (self->fd < 0)
    return NULL;
  if (chime_handler_context_get_bool (context, "dedupe"))
    {
      gint64 max_runs = chime_handler_context_get_int (context, "dedupe_runs");

      if (max_runs < 1 || max_runs > G_MAXINT32)
        {
          g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                       "key 'dedupe_runs' of [handler %s] is %" G_GINT64_FORMAT ": give a number from 1 to %d",
                       chime_handler_context_get_name (context), max_runs, G_MAXINT32);
          return NULL;
        }
      self->seen = jsonl_seen_new ((guint) max_runs);
    }
  return g_steal_pointer (&self);
}

static void
jsonl_writer_free (gpointer instance)
{
  JsonlWriter *self = instance;

  /* Every line was written already; close() is the last chance to hear
   * of a failed write-back (NFS, say), so it is reported, not ignored. */
  if (self->fd >= 0 && close (self->fd) != 0 && !self->broken)
    {
      g_autoptr (GError) error = NULL;

      set_errno_error (&error, errno, "close", self->path);
      chime_handler_context_report_error (self->context, error);
    }
  if (self->n_duplicates > 0)
    chime_handler_log (self->context, G_LOG_LEVEL_MESSAGE, "%" G_GUINT64_FORMAT " duplicate events skipped (dedupe)",
                       self->n_duplicates);
  jsonl_seen_free (self->seen);
  g_free (self->line);
  g_free (self->path);
  g_free (self);
}

/* Drops the previous run's lines before the first of this one. Nothing has
 * been written yet, so the file is still at offset 0. Only a regular file
 * has lines to drop: a device (/dev/full, /dev/null) or a pipe refuses
 * ftruncate() with EINVAL, which is not their writes' failure to report. */
static gboolean
truncate_once (JsonlWriter *self,
               GError     **error)
{
  struct stat info;

  if (!self->truncate_at_first_line)
    return TRUE;
  self->truncate_at_first_line = FALSE;
  if (fstat (self->fd, &info) == 0 && !S_ISREG (info.st_mode))
    return TRUE;
  if (ftruncate (self->fd, 0) == 0)
    return TRUE;
  set_errno_error (error, errno, "truncate", self->path);
  return FALSE;
}

/* @json in compact form and a newline into self->line; its length. Compact
 * JSON escapes newlines inside strings, so one event is one line. */
static gsize
format_line (JsonlWriter *self,
             json_t      *json)
{
  gsize length = json_dumpb (json, self->line, self->line_size, JSON_COMPACT);

  if (length + 1 > self->line_size)
    {
      self->line_size = MAX (length + 1, 2 * self->line_size);
      self->line = g_realloc (self->line, self->line_size);
      length = json_dumpb (json, self->line, self->line_size, JSON_COMPACT);
    }
  self->line[length] = '\n';
  return length + 1;
}

/* Writes all of @length bytes, going on after a short write or a signal. */
static gboolean
write_all (JsonlWriter *self,
           const char  *bytes,
           gsize        length,
           GError     **error)
{
  while (length > 0)
    {
      gssize written = write (self->fd, bytes, length);

      if (written < 0 && errno == EINTR)
        continue;
      if (written < 0)
        {
          set_errno_error (error, errno, "write", self->path);
          return FALSE;
        }
      bytes += written;
      length -= written;
    }
  if (self->fsync_every_line && fsync (self->fd) != 0)
    {
      set_errno_error (error, errno, "fsync", self->path);
      return FALSE;
    }
  return TRUE;
}

/* dedupe = true: the line written under the file's lock, unless a line
 * has the event's id already. */
static gboolean
write_once (JsonlWriter *self,
            ChimeEvent  *event,
            json_t      *json,
            GError     **error)
{
  char id[CHIME_EVENT_ID_LEN];
  JsonlSeenPlace place;
  gsize length;
  gboolean ok = TRUE;

  chime_event_get_id (event, id);
  if (!truncate_once (self, error) || !jsonl_seen_lock (self->seen, self->fd, self->path, error))
    return FALSE;
  if (jsonl_seen_contains (self->seen, id, &place))
    self->n_duplicates++;
  else
    {
      json_object_set_new (json, "event_id", json_string (id));
      length = format_line (self, json);
      ok = write_all (self, self->line, length, error);
      if (ok)
        jsonl_seen_add (self->seen, &place, length);
    }
  jsonl_seen_unlock (self->seen, self->fd);
  return ok;
}

static gboolean
jsonl_on_event (gpointer     instance,
                ChimeEvent  *event,
                GError     **error)
{
  JsonlWriter *self = instance;
  g_autoptr (json_t) json = NULL;
  gsize length;
  gboolean ok;

  /* Said once: the events after a failed write are not written, and
   * their failures would only repeat the first. */
  if (self->broken)
    return TRUE;
  json = chime_event_to_json (event);
  if (self->seen != NULL)
    ok = write_once (self, event, json, error);
  else
    {
      length = format_line (self, json);
      ok = truncate_once (self, error) && write_all (self, self->line, length, error);
    }
  if (!ok)
    self->broken = TRUE;
  return ok;
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
