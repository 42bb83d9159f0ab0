/* Refusing two handlers that write one file (shared-outputs.c). */
#pragma once

#include "runtime-config.h"

/* File written -> the section of the handler writing it. */
typedef GHashTable ChimeSharedOutputs;

ChimeSharedOutputs *chime_shared_outputs_new   (void);
/* Adds a problem to @config when @spec's `path` names a file an earlier
 * handler writes. */
void                chime_shared_outputs_check (ChimeSharedOutputs     *outputs,
                                                ChimeConfig            *config,
                                                const char             *section,
                                                const ChimeHandlerSpec *spec);
