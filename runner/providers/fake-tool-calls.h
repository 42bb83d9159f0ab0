/* The fake model's scripted tool calls (`tool_calls` in [model NAME]). */
#pragma once

#include "model.h"

typedef struct _ChimeFakeToolTurn ChimeFakeToolTurn;

/* The script: a JSON array with one item per turn, each an array of calls
 * [{"name", "args": OBJECT or TEXT, "id"}] or {"text", "calls": [...]}
 * (the turn's text before its calls). NULL when absent or invalid
 * (problems recorded). New reference. */
json_t            *chime_fake_tool_calls_read      (ChimeConfig *config,
                                                    const char  *section);
/* The turn of a stream on @messages (the number of ai messages in them);
 * NULL when that turn answers with text. */
ChimeFakeToolTurn *chime_fake_tool_turn_new        (json_t *script,
                                                    json_t *messages);
/* Piece @index of the turn's stream (its text) and in *@chunk the
 * tool_call_chunks it carries (borrowed, may be NULL); NULL past the end. */
const char        *chime_fake_tool_turn_get_piece  (ChimeFakeToolTurn *turn,
                                                    guint              index,
                                                    json_t           **chunk);
/* Sets the result's tool_calls and invalid_tool_calls (new references). */
void               chime_fake_tool_turn_fill_result (ChimeFakeToolTurn *turn,
                                                     ChimeModelResult  *result);
void               chime_fake_tool_turn_free       (ChimeFakeToolTurn *turn);
