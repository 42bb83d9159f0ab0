/* Compact JSON without jansson's per-code-point string escaping
 * (json-compact.h). */
#include "config.h"

#include "json-compact.h"

#include <string.h>

/* Bytes that stand for themselves in a JSON string as jansson writes it
 * by default: all but the quote, the backslash and control characters
 * (no JSON_ESCAPE_SLASH, no JSON_ENSURE_ASCII: UTF-8 is copied). */
static gboolean
needs_escape (guchar c)
{
  return c < 0x20 || c == '"' || c == '\\';
}

/* Whether any of the 8 bytes of @word needs an escape: a byte below 0x20,
 * a quote or a backslash (the "has a zero byte" test of bit hacks, on
 * the word itself and on its XORs with the two characters). */
static inline gboolean
word_needs_escape (guint64 word)
{
  const guint64 ones = G_GUINT64_CONSTANT (0x0101010101010101);
  const guint64 highs = G_GUINT64_CONSTANT (0x8080808080808080);
  guint64 quote = word ^ (ones * '"');
  guint64 backslash = word ^ (ones * '\\');
  guint64 below_space = (word - ones * 0x20) & ~word;

  return ((below_space | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & highs) != 0;
}

static void
append_string (GString    *out,
               const char *text,
               gsize       length)
{
  const char *end = text + length;
  const char *p = text;

  g_string_append_c (out, '"');
  while (p < end)
    {
      const char *run = p;
      guchar c;
      guint64 word, word2;

      /* Sixteen, then eight bytes at a time while none needs an escape:
       * the output of a run is mostly such bytes (the whole response, three
       * times over), and two words tested together cost one branch. */
      while (end - p >= 16 && (memcpy (&word, p, 8), memcpy (&word2, p + 8, 8),
                               !(word_needs_escape (word) | word_needs_escape (word2))))
        p += 16;
      while (end - p >= 8 && (memcpy (&word, p, 8), !word_needs_escape (word)))
        p += 8;
      while (p < end && !needs_escape ((guchar) *p))
        p++;
      g_string_append_len (out, run, p - run);
      if (p == end)
        break;
      c = (guchar) *p++;
      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default: g_string_append_printf (out, "\\u%04X", c); break;
        }
    }
  g_string_append_c (out, '"');
}

/* Reals are rare in a result and jansson's shortest round-trip format is
 * its own: it writes them. */
static void
append_real (GString      *out,
             const json_t *value)
{
  char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);

  g_string_append (out, text);
  free (text);
}

void
chime_json_append_compact (GString      *out,
                           const json_t *value)
{
  const char *key;
  json_t *member;
  gsize i;
  gboolean first = TRUE;

  switch (json_typeof (value))
    {
    case JSON_OBJECT:
      g_string_append_c (out, '{');
      json_object_foreach ((json_t *) value, key, member)
        {
          if (!first)
            g_string_append_c (out, ',');
          first = FALSE;
          append_string (out, key, strlen (key));
          g_string_append_c (out, ':');
          chime_json_append_compact (out, member);
        }
      g_string_append_c (out, '}');
      break;
    case JSON_ARRAY:
      g_string_append_c (out, '[');
      json_array_foreach ((json_t *) value, i, member)
        {
          if (i > 0)
            g_string_append_c (out, ',');
          chime_json_append_compact (out, member);
        }
      g_string_append_c (out, ']');
      break;
    case JSON_STRING:
      append_string (out, json_string_value (value), json_string_length (value));
      break;
    case JSON_INTEGER:
      g_string_append_printf (out, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
      break;
    case JSON_REAL:
      append_real (out, value);
      break;
    case JSON_TRUE:
      g_string_append (out, "true");
      break;
    case JSON_FALSE:
      g_string_append (out, "false");
      break;
    case JSON_NULL:
      g_string_append (out, "null");
      break;
    }
}

char *
chime_json_dump_compact (const json_t *value,
                         gsize        *length)
{
  GString *out = g_string_sized_new (4096);

  chime_json_append_compact (out, value);
  if (length != NULL)
    *length = out->len;
  return g_string_free (out, FALSE);
}
