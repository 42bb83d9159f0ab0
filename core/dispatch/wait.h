/* Waiting on the consumers' cursors (wait.c): what the ring needs to
 * wait for room, and construction to run chime_dispatcher_when_done.
 * wait.c also defines chime_dispatcher_is_done, _wait, _when_done and
 * _flush (dispatcher.h). */
#pragma once

#include "dispatch-types.h"

/* Whether position @pos may be claimed: every consumer's release cursor
 * has passed its previous occupant. Refreshes `gating`. */
gboolean chime_dispatcher_has_room            (ChimeDispatcher *d,
                                               guint64          pos);
/* Blocks until chime_dispatcher_has_room (@pos) (block policy). */
void     chime_dispatcher_wait_for_room       (ChimeDispatcher *d,
                                               guint64          pos);
/* The lowest release cursor (never above `head`). */
guint64  chime_dispatcher_min_release         (ChimeDispatcher *d);
/* The source that runs chime_dispatcher_when_done callbacks, not yet
 * attached. */
GSource *chime_dispatcher_progress_source_new (ChimeDispatcher *d);
