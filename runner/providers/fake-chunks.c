/* The fake model's packed chunk list (fake-chunks.h). */
#include "config.h"

#include "fake-chunks.h"
#include "json-literal.h"

#include <string.h>

void
chime_fake_chunks_append (ChimeFakeChunks *chunks,
                          const char      *chunk,
                          gsize            length)
{
  if (chunks->length + length + 1 > chunks->capacity)
    {
      chunks->capacity = MAX (chunks->capacity * 2, chunks->length + length + 1);
      chunks->text = g_realloc (chunks->text, chunks->capacity);
    }
  memcpy (chunks->text + chunks->length, chunk, length);
  chunks->text[chunks->length + length] = '\0';
  chunks->length += length + 1;
  chunks->n++;
}

void
chime_fake_chunks_clear (ChimeFakeChunks *chunks)
{
  g_clear_pointer (&chunks->text, g_free);
  chunks->length = chunks->capacity = 0;
  chunks->n = 0;
}

static const char *
skip_space (const char *p,
            const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* @text as a JSON array of strings into @chunks, or FALSE (and @chunks
 * emptied) for anything jansson might read otherwise or refuse. The text
 * is at most the packed size: one block, sized once. */
static gboolean
pack_json_strings (ChimeFakeChunks *chunks,
                   const char      *text,
                   gsize            length)
{
  const char *end = text + length;
  const char *p = skip_space (text, end);
  g_autoptr (GString) chunk = g_string_new (NULL);

  chunks->capacity = length + 1;
  chunks->text = g_malloc (chunks->capacity);
  if (p == end || *p++ != '[')
    goto refused;
  p = skip_space (p, end);
  if (p < end && *p == ']')
    {
      if (skip_space (p + 1, end) == end)
        return TRUE;
      goto refused;
    }
  for (;;)
    {
      if (p == end || *p != '"' || (p = chime_json_decode_string_literal (p, end, chunk)) == NULL)
        goto refused;
      /* A literal decodes to at most its own length, quotes excluded. */
      memcpy (chunks->text + chunks->length, chunk->str, chunk->len + 1);
      chunks->length += chunk->len + 1;
      chunks->n++;
      p = skip_space (p, end);
      if (p < end && *p == ',')
        {
          p = skip_space (p + 1, end);
          continue;
        }
      if (p < end && *p == ']' && skip_space (p + 1, end) == end)
        break;
      goto refused;
    }
  chunks->capacity = chunks->length;
  chunks->text = g_realloc (chunks->text, chunks->capacity);
  return TRUE;

refused:
  chime_fake_chunks_clear (chunks);
  return FALSE;
}

gboolean
chime_fake_chunks_read_json (ChimeFakeChunks *chunks,
                             ChimeConfig     *config,
                             const char      *section,
                             const char      *key,
                             const char      *example)
{
  g_autofree char *text = chime_config_read_raw (config, section, key);
  g_auto (GStrv) strings = NULL;

  chime_fake_chunks_clear (chunks);
  if (text != NULL && g_utf8_validate (text, -1, NULL) && pack_json_strings (chunks, text, strlen (text)))
    return TRUE;
  g_clear_pointer (&text, g_free);
  strings = chime_config_read_json_strings (config, section, key, example);
  if (strings == NULL)
    return FALSE;
  for (guint i = 0; strings[i] != NULL; i++)
    chime_fake_chunks_append (chunks, strings[i], strlen (strings[i]));
  return TRUE;
}
