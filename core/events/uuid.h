/* UUIDv7 run ids (RFC 9562): 48-bit Unix milliseconds, then a 12-bit
 * counter that keeps ids created in the same millisecond ordered, then
 * random bits. */
#pragma once

#include <chime/event.h>

void chime_run_id_generate (ChimeRunId *out);
