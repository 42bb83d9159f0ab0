/* JSON the HTTP chat model providers make (provider-json.c). */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

/* The invocation parameters both providers report: model, stream,
 * temperature, max_tokens, stop, timeouts, retries, extra_body, never a
 * key or a header. New reference. */
json_t  *chime_provider_invocation_params   (ChimeProviderModel *model,
                                             const char         *type);
/* LangChain's usage_metadata {"input_tokens", "output_tokens",
 * "total_tokens", "input_token_details", "output_token_details"}, taking
 * the two detail objects (NULL: left out). New reference. */
json_t  *chime_provider_usage_metadata      (gint64  input_tokens,
                                             gint64  output_tokens,
                                             gint64  total_tokens,
                                             json_t *input_token_details,
                                             json_t *output_token_details);
/* Sets @key of @object to @value unless @value is negative (unknown). */
void     chime_provider_json_set_count      (json_t     *object,
                                             const char *key,
                                             gint64      value);
/* A JSON array of the strings of @strv. New reference. */
json_t  *chime_provider_strv_to_json        (const char * const *strv);
