/* The sync route (sync-route.c): what construction needs to set it up. */
#pragma once

#include "dispatch-types.h"

/* The route of sync consumers: a drain task on the dispatcher's pool. */
extern const ChimeRouteFuncs chime_sync_route;

/* The pool's task function: drains the consumer @data (RUNNING). */
void chime_sync_route_run (gpointer data,
                           gpointer user_data);
