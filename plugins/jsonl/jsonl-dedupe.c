/* jsonl — the event ids a file holds, for dedupe = true.
 *
 * With dedupe, each line carries the event's id ("event_id", see
 * chime_event_get_id()) and a line is written only when no line of the
 * file has that id yet. Writers of one file (the members of a `chime
 * consume` group on one machine, a restarted consumer appending to its
 * old file) take an flock(2) around the check and the write, and each
 * reads the lines the others appended since its last look: an event
 * redelivered to another member is written once.
 *
 * An id is RUN_ID:SEQUENCE, and a run numbers its events 1, 2, 3 ...
 * (with a gap where an emitting thread left a run for another), so the
 * ids are kept per run as ranges of sequence numbers: a run of any length
 * costs a few dozen bytes, not 60 per event. The runs are bounded too: past
 * max_runs, the run seen least recently is forgotten, as a broker forgets
 * message ids after its duplicate window. */
#include "jsonl-dedupe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_KEY "\"event_id\":\""
#define READ_CHUNK (64 * 1024)
/* Longer than any run id (36 characters): a longer one is not chime's. */
#define RUN_ID_MAX 64

typedef struct {
  guint64 first;
  guint64 last;
} SequenceRange;

/* The sequence numbers of one run's events the file holds. */
typedef struct _JsonlSeenRun {
  char   *run_id;
  GArray *ranges;  /* SequenceRange, sorted, neither overlapping nor touching */
  GList   link;    /* in JsonlSeen.recent, data = this */
} SeenRun;

struct _JsonlSeen {
  GHashTable *runs;    /* run id -> SeenRun */
  GQueue      recent;  /* SeenRun, the one seen last at the head */
  guint       max_runs;
  /* Everything before this offset has been read (it ends a line). */
  goffset     scanned;
  GString    *partial;
};

static void
seen_run_free (gpointer data)
{
  SeenRun *run = data;

  g_array_unref (run->ranges);
  g_free (run->run_id);
  g_free (run);
}

/* Splits "RUN_ID:SEQUENCE" at its last colon. FALSE for anything else
 * (a line some other program wrote). */
static gboolean
split_id (const char *id,
          gsize       length,
          gsize      *run_length,
          guint64    *sequence)
{
  const char *colon = length > 0 ? g_strrstr_len (id, length, ":") : NULL;
  guint64 value = 0;

  if (colon == NULL || colon == id || colon + 1 == id + length || colon - id >= RUN_ID_MAX)
    return FALSE;
  for (const char *p = colon + 1; p < id + length; p++)
    {
      if (*p < '0' || *p > '9' || value > (G_MAXUINT64 - 9) / 10)
        return FALSE;
      value = value * 10 + (guint64) (*p - '0');
    }
  *run_length = colon - id;
  *sequence = value;
  return TRUE;
}

/* The index of the first range that ends at or after @sequence. */
static guint
find_range (GArray  *ranges,
            guint64  sequence)
{
  guint low = 0, high = ranges->len;

  while (low < high)
    {
      guint middle = low + (high - low) / 2;

      if (g_array_index (ranges, SequenceRange, middle).last < sequence)
        low = middle + 1;
      else
        high = middle;
    }
  return low;
}

/* Whether the range at @i (find_range()'s for @sequence) holds it. */
static gboolean
run_has_at (SeenRun *run,
            guint    i,
            guint64  sequence)
{
  return i < run->ranges->len && g_array_index (run->ranges, SequenceRange, i).first <= sequence;
}

/* Adds @sequence, whose find_range() is @i, growing or joining the ranges
 * it touches. */
static void
run_add_at (SeenRun *run,
            guint    i,
            guint64  sequence)
{
  GArray *ranges = run->ranges;
  SequenceRange *next = i < ranges->len ? &g_array_index (ranges, SequenceRange, i) : NULL;
  SequenceRange *previous = i > 0 ? &g_array_index (ranges, SequenceRange, i - 1) : NULL;
  gboolean after_previous = previous != NULL && previous->last + 1 == sequence;
  gboolean before_next = next != NULL && sequence + 1 == next->first;
  SequenceRange single = { sequence, sequence };

  if (next != NULL && next->first <= sequence)
    return;
  if (after_previous && before_next)
    {
      previous->last = next->last;
      g_array_remove_index (ranges, i);
    }
  else if (after_previous)
    previous->last = sequence;
  else if (before_next)
    next->first = sequence;
  else
    g_array_insert_val (ranges, i, single);
}

/* The run of @run_id (@length bytes), made the most recent; NULL when
 * it is not known. */
static SeenRun *
lookup_run (JsonlSeen  *self,
            const char *run_id,
            gsize       length)
{
  char key[RUN_ID_MAX];
  SeenRun *run;

  memcpy (key, run_id, length);
  key[length] = '\0';
  run = g_hash_table_lookup (self->runs, key);
  if (run != NULL)
    {
      g_queue_unlink (&self->recent, &run->link);
      g_queue_push_head_link (&self->recent, &run->link);
    }
  return run;
}

/* A new run, not known yet, the most recent; the least recent one is
 * forgotten past max_runs. */
static SeenRun *
new_run (JsonlSeen  *self,
         const char *run_id,
         gsize       length)
{
  SeenRun *run;

  if (g_hash_table_size (self->runs) >= self->max_runs)
    {
      GList *oldest = g_queue_pop_tail_link (&self->recent);

      g_hash_table_remove (self->runs, ((SeenRun *) oldest->data)->run_id);
    }
  run = g_new0 (SeenRun, 1);
  run->run_id = g_strndup (run_id, length);
  run->ranges = g_array_new (FALSE, FALSE, sizeof (SequenceRange));
  run->link.data = run;
  g_hash_table_insert (self->runs, run->run_id, run);
  g_queue_push_head_link (&self->recent, &run->link);
  return run;
}

/* Where @id (@length bytes) is or would go. FALSE for an id that is not
 * RUN:SEQUENCE (@place->run_length is 0 then). */
static gboolean
find_place (JsonlSeen      *self,
            const char     *id,
            gsize           length,
            JsonlSeenPlace *place)
{
  *place = (JsonlSeenPlace) { .id = id };
  if (!split_id (id, length, &place->run_length, &place->sequence))
    {
      place->run_length = 0;
      return FALSE;
    }
  place->run = lookup_run (self, id, place->run_length);
  if (place->run != NULL)
    place->range = find_range (place->run->ranges, place->sequence);
  return TRUE;
}

/* Notes the id at @place; one that is not RUN:SEQUENCE is ignored. */
static void
note_place (JsonlSeen      *self,
            JsonlSeenPlace *place)
{
  if (place->run_length == 0)
    return;
  /* A new run has no range: the sequence goes at index 0. */
  if (place->run == NULL)
    place->run = new_run (self, place->id, place->run_length);
  run_add_at (place->run, place->range, place->sequence);
}

/* Notes the id @id of @length bytes, read from the file. */
static void
note_id (JsonlSeen  *self,
         const char *id,
         gsize       length)
{
  JsonlSeenPlace place;

  if (find_place (self, id, length, &place))
    note_place (self, &place);
}

JsonlSeen *
jsonl_seen_new (guint max_runs)
{
  JsonlSeen *self = g_new0 (JsonlSeen, 1);

  self->runs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, seen_run_free);
  self->max_runs = MAX (max_runs, 1);
  self->partial = g_string_new (NULL);
  return self;
}

void
jsonl_seen_free (JsonlSeen *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->runs);
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
    note_id (self, start, end - start);
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
      g_hash_table_remove_all (self->runs);
      g_queue_init (&self->recent);
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
jsonl_seen_contains (JsonlSeen      *self,
                     const char     *id,
                     JsonlSeenPlace *place)
{
  return find_place (self, id, strlen (id), place) && place->run != NULL &&
         run_has_at (place->run, place->range, place->sequence);
}

void
jsonl_seen_add (JsonlSeen      *self,
                JsonlSeenPlace *place,
                gsize           length)
{
  note_place (self, place);
  self->scanned += length;
}

void
jsonl_seen_unlock (JsonlSeen *self,
                   int        fd)
{
  flock (fd, LOCK_UN);
}
