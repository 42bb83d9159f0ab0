/* Events across a process boundary (event-wire.c). */
#pragma once

#include "event-private.h"

/* Every field of @event a handler can read, ancestors included. */
json_t     *chime_event_to_wire   (ChimeEvent *event);

/* The event @wire describes (a new reference), or NULL with @error set
 * when @wire is not what chime_event_to_wire() makes. */
ChimeEvent *chime_event_from_wire (json_t   *wire,
                                   GError  **error);
