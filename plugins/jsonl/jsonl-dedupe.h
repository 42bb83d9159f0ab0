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
/* Whether a line of the file has the id @id. */
gboolean   jsonl_seen_contains  (JsonlSeen   *seen,
                                 const char  *id);
/* Notes the line of @length bytes just appended, with the id @id. */
void       jsonl_seen_add       (JsonlSeen   *seen,
                                 const char  *id,
                                 gsize        length);
void       jsonl_seen_unlock    (JsonlSeen   *seen,
                                 int          fd);
