/* The events a fresh ring's slots start with, made in one block
 * (event-slab.c). */
#pragma once

#include "event-private.h"

typedef struct _ChimeEventSlab ChimeEventSlab;

/* Makes up to @n blank events in one block (fewer when @n is larger than
 * a block holds: chime_event_slab_get_size). A blank event is a token of
 * no run whose only reference is the caller's, to take with
 * chime_event_slab_get_event; the token path makes it a token of a run
 * in place (chime_event_remake_token). The block is freed once the slab
 * has been unreffed and each of its events released. */
ChimeEventSlab *chime_event_slab_new       (guint64         n);
guint64         chime_event_slab_get_size  (ChimeEventSlab *slab);
ChimeEvent     *chime_event_slab_get_event (ChimeEventSlab *slab,
                                            guint64         i);
void            chime_event_slab_unref     (ChimeEventSlab *slab);

/* The end of an event of a slab (chime_event_release): the block goes
 * when its last event and the slab itself have. */
void            chime_event_slab_release_event (ChimeEvent *event);
