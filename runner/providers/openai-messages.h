/* The request side of `provider = openai` (openai-messages.c): chime's
 * messages and tools (model.h's shapes) in the Chat Completions wire
 * shape. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

/* The "messages" array for @messages; NULL with @error when one cannot
 * be sent. New reference. */
json_t *chime_openai_messages (ChimeProviderModel *model,
                               json_t             *messages,
                               GError            **error);
/* Adds "tools" and "tool_choice" to @body when @tools offers any; FALSE
 * with @error when a tool or the choice is wrong. */
gboolean chime_openai_add_tools (ChimeProviderModel *model,
                                 json_t             *body,
                                 json_t             *tools,
                                 GError            **error);
