/* Output parsers that transform a stream: the str parser passes each
 * chunk through, the json parser yields the growing object, as
 * LangChain's JsonOutputParser does (not in diff mode). */
#include "config.h"

#include "parser-stream.h"

#include <string.h>

struct _ChimeParserStream {
  ChimeOutputParserKind kind;
  GString              *text;   /* everything so far (json) */
  json_t               *last;   /* the last value yielded (json) */
};

ChimeParserStream *
chime_parser_stream_new (ChimeOutputParserKind kind)
{
  ChimeParserStream *stream = g_new0 (ChimeParserStream, 1);

  stream->kind = kind;
  stream->text = g_string_new (NULL);
  return stream;
}

void
chime_parser_stream_free (ChimeParserStream *stream)
{
  if (stream == NULL)
    return;
  g_string_free (stream->text, TRUE);
  g_clear_pointer (&stream->last, json_decref);
  g_free (stream);
}

static json_t *
loads (const char *text,
       gsize       length)
{
  return json_loadb (text, length, JSON_DECODE_ANY, NULL);
}

/* LangChain's parse_partial_json: close what is open, and while that does
 * not parse, drop the last character. One pass to find what is open; the
 * drops only ever eat the unfinished tail. */
static json_t *
parse_partial (const char *text)
{
  g_autoptr (GString) fixed = g_string_sized_new (strlen (text) + 16);
  g_autoptr (GString) closers = g_string_new (NULL);
  gboolean in_string = FALSE, escaped = FALSE;
  json_t *value;

  if ((value = loads (text, strlen (text))) != NULL)
    return value;
  for (const char *p = text; *p != '\0'; p++)
    {
      char c = *p;

      if (in_string)
        {
          if (c == '"' && !escaped)
            in_string = FALSE;
          else if (c == '\n' && !escaped)
            {
              g_string_append (fixed, "\\n");
              continue;
            }
          escaped = c == '\\' ? !escaped : FALSE;
        }
      else if (c == '"')
        {
          in_string = TRUE;
          escaped = FALSE;
        }
      else if (c == '{')
        g_string_prepend_c (closers, '}');
      else if (c == '[')
        g_string_prepend_c (closers, ']');
      else if (c == '}' || c == ']')
        {
          if (closers->len == 0 || closers->str[0] != c)
            return NULL;   /* mismatched: not JSON at all */
          g_string_erase (closers, 0, 1);
        }
      g_string_append_c (fixed, c);
    }
  if (in_string)
    {
      if (escaped)
        g_string_truncate (fixed, fixed->len - 1);
      g_string_append_c (fixed, '"');
    }
  while (fixed->len > 0)
    {
      gsize length = fixed->len;

      g_string_append_len (fixed, closers->str, closers->len);
      value = loads (fixed->str, fixed->len);
      if (value != NULL)
        return value;
      g_string_truncate (fixed, length - 1);
    }
  return NULL;
}

json_t *
chime_parse_partial_json (const char *text)
{
  g_autofree char *body = chime_output_parser_json_body (text);

  if (body == NULL || body[0] == '\0')
    return NULL;
  return parse_partial (body);
}

json_t *
chime_parser_stream_feed (ChimeParserStream *stream,
                          const char        *text)
{
  json_t *value;

  if (stream->kind == CHIME_OUTPUT_PARSER_STR)
    return json_string (text);
  g_string_append (stream->text, text);
  value = chime_parse_partial_json (stream->text->str);
  if (value == NULL || (stream->last != NULL && json_equal (value, stream->last)))
    {
      g_clear_pointer (&value, json_decref);
      return NULL;
    }
  g_clear_pointer (&stream->last, json_decref);
  stream->last = json_deep_copy (value);
  return value;
}
