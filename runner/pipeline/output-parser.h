/* Output parsers: what the last step of a pipeline makes of the model's
 * message (LangChain's StrOutputParser and JsonOutputParser). */
#pragma once

#include <glib.h>
#include <jansson.h>

typedef enum {
  CHIME_OUTPUT_PARSER_STR,
  CHIME_OUTPUT_PARSER_JSON,
} ChimeOutputParserKind;

/* "StrOutputParser" or "JsonOutputParser", the run name LangChain uses. */
const char *chime_output_parser_name (ChimeOutputParserKind kind);

/* The text of the JSON in @text, as LangChain's parse_json_markdown finds
 * it: the body of a ```json (or ```) fenced block, to its closing fence or
 * the end, else the whole text; stripped. NULL while the fence's first
 * line is not complete. */
char       *chime_output_parser_json_body (const char *text);

/* Parses the model's text. str: the text as a JSON string. json: the JSON
 * value in the text, also inside a ```json fenced block, as LangChain's
 * parse_json_markdown; an error quotes the text when it is not JSON. */
json_t     *chime_output_parser_parse (ChimeOutputParserKind kind,
                                       const char           *text,
                                       GError              **error);
