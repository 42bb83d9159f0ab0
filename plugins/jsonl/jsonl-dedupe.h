/* jsonl — the event ids a file holds, for dedupe = true (jsonl-dedupe.c). */
#pragma once

#include <glib.h>

typedef struct _JsonlSeen JsonlSeen;

/* Remembers the ids of at most @max_runs runs, the ones seen last. */
JsonlSeen *jsonl_seen_new  (guint max_runs);
void       jsonl_seen_free (JsonlSeen *seen);

/* Takes the file's lock and reads what was appended since the last call,
 * by this process or another, noting the lines' ids; a half-written last
 * line (its writer died) is cut off. FALSE with @error (the lock is not
 * held then). */
gboolean   jsonl_seen_lock      (JsonlSeen   *seen,
                                 int          fd,
                                 const char  *path,
                                 GError     **error);
/* Where an id is, or would go, among the ones a JsonlSeen holds: what
 * jsonl_seen_contains() found, so that jsonl_seen_add() notes the id
 * without splitting it or looking its run up again. Valid until the next
 * call on the JsonlSeen; @id must live as long. */
typedef struct {
  const char           *id;
  gsize                 run_length;  /* 0: not RUN:SEQUENCE, never noted */
  guint64               sequence;
  struct _JsonlSeenRun *run;         /* NULL: a run not known yet */
  guint                 range;       /* the first of its ranges ending at or after sequence */
} JsonlSeenPlace;

/* Whether a line of the file has the id @id; @place is where it is or
 * would go, for jsonl_seen_add(). */
gboolean   jsonl_seen_contains  (JsonlSeen      *seen,
                                 const char     *id,
                                 JsonlSeenPlace *place);
/* Notes the line of @length bytes just appended, with the id that
 * jsonl_seen_contains() found not there at @place. */
void       jsonl_seen_add       (JsonlSeen      *seen,
                                 JsonlSeenPlace *place,
                                 gsize           length);
void       jsonl_seen_unlock    (JsonlSeen   *seen,
                                 int          fd);
