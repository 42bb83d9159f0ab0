/* jsonl — the event ids a file holds, for dedupe = true.
 *
 * With dedupe, each line carries the event's id ("event_id", see
 * chime_event_get_id()) and a line is written only when no line of the
 * file has that id yet. Writers of one file (the members of a `chime
 * consume` group on one machine, a restarted consumer appending to its
 * old file) take an flock(2) around the check and the write, and each
 * reads the lines the others appended since its last look: an event
 * redelivered to another member is written once. The ids are kept in
 * memory (about 60 bytes per event). */
#include "jsonl-dedupe.h"

#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_KEY "\"event_id\":\""
#define READ_CHUNK (64 * 1024)

struct _JsonlSeen {
  GHashTable *ids;
  /* Everything before this offset has been read (it ends a line). */
  goffset     scanned;
  GString    *partial;
};

JsonlSeen *
jsonl_seen_new (void)
{
  JsonlSeen *self = g_new0 (JsonlSeen, 1);

  self->ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->partial = g_string_new (NULL);
  return self;
}

void
jsonl_seen_free (JsonlSeen *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->ids);
  g_string_free (self->partial, TRUE);
  g_free (self);
}

/* The id of one whole line, noted. Ids hold no quote or backslash. */
static void
note_line (JsonlSeen  *self,
           const char *line,
           gsize       length)
{
  const char *start = g_strstr_len (line, length, ID_KEY);
  const char *end;

  if (start == NULL)
    return;
  start += strlen (ID_KEY);
  end = memchr (start, '"', length - (start - line));
  if (end != NULL)
    g_hash_table_add (self->ids, g_strndup (start, end - start));
}

/* Reads from self->scanned to @size, line by line. */
static gboolean
catch_up (JsonlSeen  *self,
          int         fd,
          goffset     size,
          const char *path,
          GError    **error)
{
  g_autofree char *buffer = g_malloc (READ_CHUNK);
  goffset offset = self->scanned;

  g_string_truncate (self->partial, 0);
  while (offset < size)
    {
      gssize n = pread (fd, buffer, MIN (READ_CHUNK, size - offset), offset);
      const char *p = buffer, *newline;

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot read %s: %s", path,
                       n < 0 ? g_strerror (errno) : "it got shorter");
          return FALSE;
        }
      offset += n;
      while ((newline = memchr (p, '\n', buffer + n - p)) != NULL)
        {
          g_string_append_len (self->partial, p, newline - p);
          note_line (self, self->partial->str, self->partial->len);
          self->scanned += self->partial->len + 1;
          g_string_truncate (self->partial, 0);
          p = newline + 1;
        }
      g_string_append_len (self->partial, p, buffer + n - p);
    }
  return TRUE;
}

gboolean
jsonl_seen_lock (JsonlSeen   *self,
                 int          fd,
                 const char  *path,
                 GError     **error)
{
  struct stat info;

  while (flock (fd, LOCK_EX) != 0)
    if (errno != EINTR)
      {
        g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot lock %s: %s", path,
                     g_strerror (errno));
        return FALSE;
      }
  if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode))
    return TRUE;
  /* Truncated by someone: start again. */
  if (info.st_size < self->scanned)
    {
      g_hash_table_remove_all (self->ids);
      self->scanned = 0;
    }
  if (!catch_up (self, fd, info.st_size, path, error))
    {
      flock (fd, LOCK_UN);
      return FALSE;
    }
  /* Writers write a whole line under the lock: bytes after the last
   * newline are what a writer killed mid-write left. */
  if (self->scanned < info.st_size && ftruncate (fd, self->scanned) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "cannot cut the half-written last line of %s: %s", path, g_strerror (errno));
      flock (fd, LOCK_UN);
      return FALSE;
    }
  return TRUE;
}

gboolean
jsonl_seen_contains (JsonlSeen  *self,
                     const char *id)
{
  return g_hash_table_contains (self->ids, id);
}

void
jsonl_seen_add (JsonlSeen  *self,
                const char *id,
                gsize       length)
{
  g_hash_table_add (self->ids, g_strdup (id));
  self->scanned += length;
}

void
jsonl_seen_unlock (JsonlSeen *self,
                   int        fd)
{
  flock (fd, LOCK_UN);
}
