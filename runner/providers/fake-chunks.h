/* The fake model's chunks, packed: each NUL-terminated, back to back in
 * one block, read in order with a cursor.
 *
 * A 50,000-chunk response was 50,000 allocations (32 bytes of heap for a
 * one-byte token) and a pointer each, and reading it from its JSON array
 * built a jansson tree of 50,000 strings on top, then copied it: most of
 * a 50,000-token run's peak memory. */
#pragma once

#include <chime/config.h>
#include <string.h>

G_BEGIN_DECLS

typedef struct {
  char  *text;     /* the chunks, each followed by its NUL */
  gsize  length;   /* bytes of text, the NULs included */
  gsize  capacity; /* bytes allocated */
  guint  n;        /* how many chunks */
} ChimeFakeChunks;

/* [@section] @key, a JSON array of strings, into @chunks. A well-formed
 * array is read in place; anything else goes through
 * chime_config_read_json_strings(), which reports the problem (FALSE). */
gboolean    chime_fake_chunks_read_json  (ChimeFakeChunks *chunks,
                                          ChimeConfig     *config,
                                          const char      *section,
                                          const char      *key,
                                          const char      *example);
/* Appends one chunk of @length bytes (no NUL among them). */
void        chime_fake_chunks_append     (ChimeFakeChunks *chunks,
                                          const char      *chunk,
                                          gsize            length);
void        chime_fake_chunks_clear      (ChimeFakeChunks *chunks);

/* The chunk at byte @offset of the text, its length in *@length and, in
 * *@next, the offset of the one after it. Inline: once per token. */
static inline const char *
chime_fake_chunks_at (const ChimeFakeChunks *chunks,
                      gsize                  offset,
                      gsize                 *next,
                      gsize                 *length)
{
  const char *chunk = chunks->text + offset;
  gsize n = 0;

  /* Chunks are tokens, a few bytes: a bounded scan to the NUL costs less
   * than a call of strlen (13 instructions and the call, bench row 5a);
   * the bound keeps the compiler from making it strlen again. */
  while (n < 16 && chunk[n] != '\0')
    n++;
  if (G_UNLIKELY (n == 16))
    n += strlen (chunk + 16);
  *length = n;
  *next = offset + n + 1;
  return chunk;
}

G_END_DECLS
