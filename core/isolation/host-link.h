/* A handler isolated in a process of its own: chime's side (host-link.c). */
#pragma once

#include "events/event-private.h"
#include "plugins/handler.h"

typedef struct _ChimeHostLink ChimeHostLink;

/* Starts the host of @handler (its settings.host_init, see
 * plugin-host.c) and waits until its instance is up; NULL with @error set
 * (the host's own reason) otherwise. A call that outlives the handler's
 * timeout_ms kills the host; after max_restarts crashes the handler gets
 * no more events. */
ChimeHostLink *chime_host_link_new  (ChimeHandler  *handler,
                                     GError       **error);

/* Delivers @event to the plugin in the host. For a start, end or error
 * (and every event of a raise_error handler), returns what its entry point
 * returned; for other events TRUE at once (the event may be only gathered,
 * see chime_host_link_flush()), and a failure is reported when the answer
 * comes. A host that crashed is restarted and gets the events it
 * had not answered again (at least once); one that crashes on an event
 * twice, or hangs, fails that event. */
gboolean       chime_host_link_call (ChimeHostLink  *link,
                                     ChimeEvent     *event,
                                     GError        **error);

/* Writes the events gathered for the host: the handler's queue is caught
 * up, and none may wait for a later one to be sent. */
void           chime_host_link_flush (ChimeHostLink *link);

/* TRUE once the host crashed more than max_restarts times. */
gboolean       chime_host_link_is_stopped (ChimeHostLink *link);

/* Lets the instance free itself (instance_free runs in the host), then
 * ends the host. */
void           chime_host_link_free (ChimeHostLink *link);
