/* What the HTTP chat model providers share of tool calling on the
 * request side (provider-tools.c): the tools offered (model.h's
 * [{"name", "description", "parameters"}]) checked once for both wire
 * shapes, the `tool_choice` key resolved against them, and a call's
 * arguments as the text the APIs take back. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

/* A tool name both APIs take: 1 to 64 letters, digits, _ and -. */
gboolean    chime_provider_is_tool_name    (const char *name);
/* Each of @tools is an object with a valid "name", a string
 * "description" or none, and an object "parameters" or none; FALSE with
 * a CHIME_PIPELINE_ERROR_MODEL @error naming the tool otherwise. */
gboolean    chime_provider_check_tools     (ChimeProviderModel *model,
                                            json_t             *tools,
                                            GError            **error);
/* Checks @tools (chime_provider_check_tools()) and resolves the
 * model's tool_choice for them: *@choice is NULL when nothing is to be
 * sent (no tools, or the key not set), else "auto", "none", "required"
 * or a tool's name. FALSE with @error when a tool is wrong or the
 * choice names a tool not offered. */
gboolean    chime_provider_prepare_tools   (ChimeProviderModel *model,
                                            json_t             *tools,
                                            const char        **choice,
                                            GError            **error);
/* Adds "tools" (each of @tools made by @wire_tool) and "tool_choice"
 * (made by @wire_choice from "auto", "none", "required" or a name, when
 * set) to @body, when @tools offers any; FALSE with @error as
 * chime_provider_prepare_tools(). */
gboolean    chime_provider_add_tools       (ChimeProviderModel *model,
                                            json_t             *body,
                                            json_t             *tools,
                                            json_t           *(*wire_tool)   (json_t     *tool),
                                            json_t           *(*wire_choice) (const char *choice),
                                            GError            **error);
/* A tool's JSON Schema: its "parameters", or an object schema without
 * properties for a tool that takes none. New reference. */
json_t     *chime_provider_tool_parameters (json_t *tool);
/* The arguments of a call as compact JSON text ({} when absent); a
 * string stays as it is (an invalid call's raw arguments). */
char       *chime_provider_tool_args_text  (json_t *args);
