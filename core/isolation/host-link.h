/* A handler isolated in a process of its own: chime's side (host-link.c). */
#pragma once

#include "events/event-private.h"

typedef struct _ChimeHostLink ChimeHostLink;

/* Starts the host for handler @name (plugin @plugin_name) with @init (the
 * handler's section, see plugin-host.c) and waits until its instance is
 * up; NULL with @error set (the host's own reason) otherwise. A call that
 * outlives @timeout_ms (0: none) kills the host; after @max_restarts
 * crashes the handler gets no more events. */
ChimeHostLink *chime_host_link_new  (const char *name,
                                     const char *plugin_name,
                                     json_t     *init,
                                     gint64      timeout_ms,
                                     guint       max_restarts,
                                     GError    **error);

/* Delivers @event to the plugin in the host and returns what its entry
 * point returned. A host that crashed is restarted and gets the event
 * again (at least once); one that crashes on it twice, or hangs, fails
 * the call. */
gboolean       chime_host_link_call (ChimeHostLink  *link,
                                     ChimeEvent     *event,
                                     GError        **error);

/* TRUE once the host crashed more than max_restarts times. */
gboolean       chime_host_link_is_stopped (ChimeHostLink *link);

/* How many events were delivered again after a crash. */
guint64        chime_host_link_get_redelivered (ChimeHostLink *link);

/* Lets the instance free itself (instance_free runs in the host), then
 * ends the host. */
void           chime_host_link_free (ChimeHostLink *link);
