/* The chat model providers that call a real API over HTTP. Each is a
 * ChimeModelProvider for chime_model_providers[] (model.c). */
#pragma once

#include "model.h"

/* `provider = openai`: OpenAI Chat Completions, and the servers that
 * speak it (set base_url). */
extern const ChimeModelProvider chime_openai_model_provider;
/* `provider = anthropic`: the Anthropic Messages API. */
extern const ChimeModelProvider chime_anthropic_model_provider;
