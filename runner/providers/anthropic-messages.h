/* The request side of `provider = anthropic` (anthropic-messages.c):
 * chime's messages and tools (model.h's shapes) in the Messages API's
 * wire shape. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

/* The "messages" array for @messages; the text of system messages is
 * added to @system (borrowed from @messages) instead, as the API takes
 * it at the top level. NULL with @error when one cannot be sent. New
 * reference. */
json_t  *chime_anthropic_messages  (json_t     *messages,
                                    GPtrArray  *system,
                                    GError    **error);
/* Adds "tools" and "tool_choice" to @body when @tools offers any; FALSE
 * with @error when a tool or the choice is wrong. */
gboolean chime_anthropic_add_tools (ChimeProviderModel *model,
                                    json_t             *body,
                                    json_t             *tools,
                                    GError            **error);
