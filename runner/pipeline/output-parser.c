/* Output parsers. */
#include "config.h"

#include "output-parser.h"
#include "pipeline-error.h"

#include <string.h>

const char *
chime_output_parser_name (ChimeOutputParserKind kind)
{
  return kind == CHIME_OUTPUT_PARSER_JSON ? "JsonOutputParser" : "StrOutputParser";
}

char *
chime_output_parser_json_body (const char *text)
{
  const char *start = strstr (text, "```");
  const char *body, *end;

  if (start == NULL)
    return g_strstrip (g_strdup (text));
  body = strchr (start + 3, '\n');
  if (body == NULL)
    return NULL;
  end = strstr (body + 1, "```");
  if (end == NULL)
    end = body + strlen (body);
  return g_strstrip (g_strndup (body + 1, end - body - 1));
}

json_t *
chime_output_parser_parse (ChimeOutputParserKind kind,
                           const char           *text,
                           GError              **error)
{
  g_autofree char *body = NULL;
  json_error_t json_error;
  json_t *value;

  if (kind == CHIME_OUTPUT_PARSER_STR)
    return json_string (text);

  body = chime_output_parser_json_body (text);
  if (body == NULL)
    body = g_strstrip (g_strdup (text));   /* a fence with nothing in it: not JSON */
  value = json_loads (body, JSON_DECODE_ANY, &json_error);
  if (value == NULL)
    {
      g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_PARSE,
                   "JsonOutputParser: the model's output is not valid JSON (%s at position %d): %.200s",
                   json_error.text, json_error.position, text);
      return NULL;
    }
  return value;
}
