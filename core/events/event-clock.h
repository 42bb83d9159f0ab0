/* The time events are stamped with (event-clock.c). */
#pragma once

#include <glib.h>

/* Now on the monotonic clock, in µs, as g_get_monotonic_time() (the same
 * clock), for stamping events: cheaper, and never less than what it
 * returned before on this thread. */
gint64 chime_event_clock_now (void);

/* Begins measuring the rate chime_event_clock_now() extrapolates at, if
 * it has not begun: a runtime calls it when it is made, so that the
 * measurement (a millisecond or more) is over by its first tokens. */
void chime_event_clock_start (void);
