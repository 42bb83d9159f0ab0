/* The async route (async-route.c): what construction needs to set it up. */
#pragma once

#include "dispatch-types.h"

/* The route of async consumers: a GSource each on the main context. */
extern const ChimeRouteFuncs chime_async_route;

/* Frees a completion the dispatcher kept after its call timed out. */
void chime_completion_free (ChimeCompletion *completion);
