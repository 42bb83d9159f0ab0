/* Token templates: taking the token straight out of a streamed event
 * that looks like the last one that yielded a token (token-template.h
 * says why, and when that is safe). The one JSON parsing done here is of
 * string literals, kept to exactly what jansson would decode the same
 * way; anything else is left to jansson. */
#include "config.h"

#include "token-template.h"

#include <string.h>

struct _ChimeTokenTemplate {
  gboolean  valid;
  GString  *data;         /* the event the template was learned from */
  char     *event_type;
  gsize     start;        /* the token literal's opening quote in data */
  gsize     end;          /* just after its closing quote */
  GString  *token;        /* the last token decoded */
};

ChimeTokenTemplate *
chime_token_template_new (void)
{
  ChimeTokenTemplate *template = g_new0 (ChimeTokenTemplate, 1);

  template->data = g_string_new (NULL);
  template->token = g_string_new (NULL);
  return template;
}

void
chime_token_template_free (ChimeTokenTemplate *template)
{
  if (template == NULL)
    return;
  g_string_free (template->data, TRUE);
  g_string_free (template->token, TRUE);
  g_free (template->event_type);
  g_free (template);
}

void
chime_token_template_forget (ChimeTokenTemplate *template)
{
  template->valid = FALSE;
}

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

/* Decodes the JSON string literal whose opening quote is at @p into @out.
 * Returns the byte after its closing quote, or NULL when it is not one that
 * jansson would turn into the same C string: unterminated before @end, a raw
 * control character, a bad escape, \u0000, a lone surrogate, invalid UTF-8.
 * Those are left to jansson. */
static const char *
decode_string_literal (const char *p,
                       const char *end,
                       GString    *out)
{
  static const char simple_escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";

  g_string_truncate (out, 0);
  for (p++; p < end;)
    {
      const char *run = p;
      const char *escape;

      while (p < end && *p != '"' && *p != '\\' && (guchar) *p >= 0x20)
        p++;
      g_string_append_len (out, run, p - run);
      if (p == end || (guchar) *p < 0x20)
        return NULL;
      if (*p == '"')
        return g_utf8_validate_len (out->str, out->len, NULL) ? p + 1 : NULL;
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

gboolean
chime_token_template_learn (ChimeTokenTemplate *template,
                            const char         *event_type,
                            const char         *data,
                            gsize               length,
                            const char         *token)
{
  const char *end = data + length;
  const char *p = data;
  gsize token_len = strlen (token);
  guint matches = 0;

  template->valid = FALSE;
  /* The data is a JSON text jansson accepted, so outside string literals
   * there is no quote: each quote found starts a literal. */
  while ((p = memchr (p, '"', end - p)) != NULL)
    {
      const char *after = decode_string_literal (p, end, template->token);

      if (after == NULL)
        return FALSE;
      if (template->token->len == token_len && memcmp (template->token->str, token, token_len) == 0)
        {
          /* The same text twice (a token that is also the model's name):
           * which one was the token cannot be told. */
          if (++matches > 1)
            return FALSE;
          template->start = p - data;
          template->end = after - data;
        }
      p = after;
    }
  if (matches != 1)
    return FALSE;
  g_string_truncate (template->data, 0);
  g_string_append_len (template->data, data, length);
  if (g_strcmp0 (template->event_type, event_type) != 0)
    {
      g_free (template->event_type);
      template->event_type = g_strdup (event_type);
    }
  template->valid = TRUE;
  return TRUE;
}

const char *
chime_token_template_match (ChimeTokenTemplate *template,
                            const char         *event_type,
                            const char         *data,
                            gsize               length)
{
  const char *old = template->data->str;
  gsize suffix_len = template->data->len - template->end;
  const char *literal_end = data + length - suffix_len;

  if (!template->valid || length < template->start + suffix_len + 2 ||
      data[template->start] != '"' ||
      memcmp (data, old, template->start) != 0 ||
      memcmp (literal_end, old + template->end, suffix_len) != 0 ||
      strcmp (event_type, template->event_type) != 0)
    return NULL;
  /* The whole middle must be one literal: `"a","b"` ends early. */
  if (decode_string_literal (data + template->start, literal_end, template->token) != literal_end ||
      template->token->len == 0)
    return NULL;
  return template->token->str;
}
