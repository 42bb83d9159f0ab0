/* The ChimeModelProvider stream methods of the HTTP chat model providers
 * (provider-stream.c): a provider's ChimeModelProvider points at these. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

ChimeModelStream *chime_provider_stream        (ChimeModel                *model,
                                                json_t                    *messages,
                                                json_t                    *tools,
                                                const ChimeModelCallbacks *callbacks,
                                                gpointer                   user_data,
                                                GMainContext              *context);
void              chime_provider_stream_resume (ChimeModelStream *stream);
void              chime_provider_stream_cancel (ChimeModelStream *stream);
