/* Output parsers that transform a stream, as LangChain's transform():
 * each text chunk of the model in, at most one output chunk out. */
#pragma once

#include "output-parser.h"

typedef struct _ChimeParserStream ChimeParserStream;

ChimeParserStream *chime_parser_stream_new  (ChimeOutputParserKind kind);
void               chime_parser_stream_free (ChimeParserStream *stream);

/* Takes the next chunk of the model's text; returns what the parser
 * yields for it (new reference), or NULL for nothing. str: the chunk
 * itself, as a JSON string, every time (an empty chunk too, as LangChain
 * does). json: the value parsed from all the text so far, completed as
 * LangChain's parse_partial_json does, when it differs from the last one
 * yielded. */
json_t            *chime_parser_stream_feed (ChimeParserStream *stream,
                                             const char        *text);

/* The partial JSON value in @text (a ```json fence allowed), completed:
 * open strings, objects and arrays closed, an unfinished tail dropped.
 * NULL when nothing parses yet. New reference. */
json_t            *chime_parse_partial_json (const char *text);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeParserStream, chime_parser_stream_free)
