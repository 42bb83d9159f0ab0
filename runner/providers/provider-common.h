/* What the HTTP chat model providers (OpenAI, Anthropic) share: the keys
 * of a `[model NAME]` section they both read, the API key, the streaming
 * request with its retries, back-pressure and cancellation, and error
 * messages. A provider adds only its wire format: the request body and
 * headers, and what each server-sent event means (ChimeProviderOps).
 *
 * One header for the providers (and their tests) to include; each part
 * has its own:
 *   provider-model.h          ChimeProviderModel, ChimeProviderOps
 *   provider-config.h         reading a [model NAME] section, the API key
 *   provider-errors.h         error messages, and when to retry
 *   provider-fields.h         event members read with their types checked
 *   provider-json.h           usage metadata, invocation params
 *   provider-stream.h         the ChimeModelProvider stream methods
 *   provider-stream-events.h  what handle_event may call
 *   token-template.h          taking tokens out of look-alike events */
#pragma once

#include "provider-model.h"
#include "provider-config.h"
#include "provider-errors.h"
#include "provider-fields.h"
#include "provider-json.h"
#include "provider-stream.h"
#include "provider-stream-events.h"
#include "token-template.h"
