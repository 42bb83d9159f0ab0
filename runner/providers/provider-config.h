/* The configuration of an HTTP chat model provider (provider-config.c):
 * its `[model NAME]` section, and the API key and request headers a
 * stream takes from it. */
#pragma once

#include <glib.h>

#include <chime/chime.h>
#include "provider-model.h"

/* The keys every HTTP provider reads (with `model`), NULL-terminated. */
#define CHIME_PROVIDER_COMMON_KEYS                                              \
  "model", "base_url", "api_key_env", "api_key_file", "temperature", "max_tokens", \
  "stop", "headers", "extra_body", "timeout_s", "connect_timeout_s", "max_retries", "tool_choice"

/* Reads the common keys into @model; FALSE when a problem was reported. */
gboolean chime_provider_model_read          (ChimeProviderModel     *model,
                                             const ChimeProviderOps *ops,
                                             ChimeConfig            *config,
                                             const char             *section);
void     chime_provider_model_clear         (ChimeProviderModel     *model);

/* The API key, read when a stream starts rather than at configuration,
 * so that checking a file needs no key; "" for `api_key_env =` (send
 * none). NULL with @error, whose message names where the key should be,
 * never the key. */
char    *chime_provider_model_load_api_key  (ChimeProviderModel     *model,
                                             GError                **error);
/* The request headers: the content type and Accept, the provider's
 * (add_headers), then the configured ones, each replacing a header of the
 * same name. NULL-terminated. */
char   **chime_provider_model_build_headers (ChimeProviderModel     *model,
                                             const char             *api_key);
