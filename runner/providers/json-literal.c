/* JSON string literals decoded without jansson, exactly as jansson would
 * decode them, or not at all (json-literal.h). */
#include "config.h"

#include "json-literal.h"
#include "string-append.h"

static gboolean
read_hex4 (const char **p,
           const char  *end,
           gunichar    *value)
{
  *value = 0;
  if (end - *p < 4)
    return FALSE;
  for (guint i = 0; i < 4; i++)
    {
      int digit = g_ascii_xdigit_value ((*p)[i]);

      if (digit < 0)
        return FALSE;
      *value = *value * 16 + (gunichar) digit;
    }
  *p += 4;
  return TRUE;
}

/* The code point of a \u escape whose four digits start at *@p, joining a
 * surrogate pair; 0 when jansson would refuse it or keep it out of a C
 * string (\u0000, a lone surrogate). */
static gunichar
read_unicode_escape (const char **p,
                     const char  *end)
{
  gunichar high, low;

  if (!read_hex4 (p, end, &high) || high == 0 || (high >= 0xdc00 && high < 0xe000))
    return 0;
  if (high < 0xd800 || high >= 0xdc00)
    return high;
  if (end - *p < 2 || (*p)[0] != '\\' || (*p)[1] != 'u')
    return 0;
  *p += 2;
  if (!read_hex4 (p, end, &low) || low < 0xdc00 || low >= 0xe000)
    return 0;
  return 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
}

/* What each byte is inside a literal: 0 ends the run copied as it is (a
 * quote, a backslash, a control character), 1 is ASCII, 0x80 is part of a
 * UTF-8 sequence. One load a byte, not three comparisons: this is the
 * loop every streamed token goes through. */
static const guchar literal_byte[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};

/* Decodes the JSON string literal whose opening quote is at @p into @out.
 * Returns the byte after its closing quote, or NULL when it is not one that
 * jansson would turn into the same C string: unterminated before @end, a raw
 * control character, a bad escape, \u0000, a lone surrogate, invalid UTF-8.
 * Those are left to jansson. */
const char *
chime_json_decode_string_literal (const char *p,
                                  const char *end,
                                  GString    *out)
{
  static const char simple_escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
  /* The bytes copied as they are, OR'ed: ASCII needs no UTF-8 check (what
   * escapes add is valid by construction). */
  guchar copied = 0;

  out->len = 0;
  out->str[0] = '\0';
  for (p++; p < end;)
    {
      const char *run = p;
      const char *escape;
      guchar kind;

      while (p < end && (kind = literal_byte[(guchar) *p]) != 0)
        {
          copied |= kind;
          p++;
        }
      chime_string_append_bytes (out, run, p - run);
      if (p == end || (guchar) *p < 0x20)
        return NULL;
      if (*p == '"')
        return copied < 0x80 || g_utf8_validate_len (out->str, out->len, NULL) ? p + 1 : NULL;
      if (++p == end)
        return NULL;
      if (*p == 'u')
        {
          gunichar c;

          p++;
          c = read_unicode_escape (&p, end);
          if (c == 0)
            return NULL;
          g_string_append_unichar (out, c);
          continue;
        }
      for (escape = simple_escapes; *escape != '\0' && *escape != *p; escape += 2)
        ;
      if (*escape == '\0')
        return NULL;
      g_string_append_c (out, escape[1]);
      p++;
    }
  return NULL;
}
