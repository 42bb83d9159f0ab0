/* Appending bytes to a GString on the token path.
 *
 * GLib before 2.76 has no inline fast path for g_string_append_len():
 * every call goes through g_string_insert_len(), whose checks for an
 * insertion inside the string and for source bytes overlapping it cost
 * about 60 instructions, more than copying a token. A streamed token is
 * appended three or four times on its way (the SSE data, the decoded
 * token, the run's text), so this does only what an append needs. */
#pragma once

#include <glib.h>
#include <string.h>

G_BEGIN_DECLS

/* Appends @length bytes at @bytes (which must not be inside @string) to
 * @string, keeping it NUL-terminated. */
static inline void
chime_string_append_bytes (GString    *string,
                           const char *bytes,
                           gsize       length)
{
  gsize old = string->len;

  if (G_LIKELY (old + length < string->allocated_len))
    {
      string->len = old + length;
      string->str[string->len] = '\0';
    }
  else
    g_string_set_size (string, old + length);
  if (length <= 8)
    {
      /* A token is a few bytes: copied here, without the call of memcpy
       * (16 instructions and the call for one byte, bench row 5a). The
       * loop's constant bound keeps the compiler from making it memcpy. */
      char *to = string->str + old;

      for (gsize i = 0; i < 8; i++)
        {
          if (i == length)
            return;
          to[i] = bytes[i];
        }
      return;
    }
  memcpy (string->str + old, bytes, length);
}

G_END_DECLS
