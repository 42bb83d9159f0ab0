/* Token templates: taking the token straight out of a streamed event
 * that looks like the last one that yielded a token (token-template.h
 * says why, and when that is safe). The one JSON parsing done here is of
 * string literals (json-literal.c), kept to exactly what jansson would
 * decode the same way; anything else is left to jansson. */
#include "config.h"

#include "token-template.h"
#include "json-literal.h"

#include <string.h>

struct _ChimeTokenTemplate {
  gboolean  valid;
  GString  *data;         /* the event the template was learned from */
  char     *event_type;
  gboolean  is_message;   /* event_type is "message", which raw events are */
  gboolean  raw_valid;    /* valid and is_message: raw events may match */
  gsize     start;        /* the token literal's opening quote in data */
  gsize     end;          /* just after its closing quote */
  gsize     suffix_len;   /* bytes of data after the literal */
  gsize     min_length;   /* the shortest data that may match: "" as token */
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

gsize
chime_token_template_get_token_length (const ChimeTokenTemplate *template)
{
  return template->token->len;
}

void
chime_token_template_forget (ChimeTokenTemplate *template)
{
  template->valid = FALSE;
  template->raw_valid = FALSE;
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
  template->raw_valid = FALSE;
  /* The data is a JSON text jansson accepted, so outside string literals
   * there is no quote: each quote found starts a literal. */
  while ((p = memchr (p, '"', end - p)) != NULL)
    {
      const char *after = chime_json_decode_string_literal (p, end, template->token);

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
  /* Asked of every raw event: once here, not per token. */
  template->is_message = g_strcmp0 (event_type, "message") == 0;
  template->suffix_len = length - template->end;
  template->min_length = template->start + template->suffix_len + 2;
  template->valid = TRUE;
  template->raw_valid = template->is_message;
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
  if (chime_json_decode_string_literal (data + template->start, literal_end, template->token) != literal_end ||
      template->token->len == 0)
    return NULL;
  return template->token->str;
}

const char *
chime_token_template_match_raw (ChimeTokenTemplate *template,
                                const char         *data,
                                const char         *end,
                                const char        **data_end)
{
  const char *old = template->data->str;
  gsize suffix_len = template->suffix_len;
  const char *literal_end;

  if (!template->raw_valid || (gsize) (end - data) < template->min_length ||
      data[template->start] != '"' || memcmp (data, old, template->start) != 0)
    return NULL;
  /* The literal ends at its first unescaped quote; what follows must be
   * the remembered suffix, and the data ends there (the caller checks
   * that a line end follows). A line is the same bytes as the data that
   * match() would be given, so the answer is the same. */
  literal_end = chime_json_decode_string_literal (data + template->start, end, template->token);
  if (literal_end == NULL || template->token->len == 0 ||
      (gsize) (end - literal_end) < suffix_len ||
      memcmp (literal_end, old + template->end, suffix_len) != 0)
    return NULL;
  *data_end = literal_end + suffix_len;
  return template->token->str;
}
