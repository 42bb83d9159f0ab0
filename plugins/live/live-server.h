/* The live plugin's HTTP/1.1 responder, on a GSocketService in the
 * handler's main context: GET / answers the page, GET /events a stream of
 * Server-Sent Events (one `data:` line of JSON each); anything else is
 * refused. It is only as much HTTP as a browser needs for these two.
 *
 * A stream starts with the message the server's snapshot callback makes
 * (the whole tree so far), then gets every message broadcast. Each stream
 * has a bounded buffer: a browser that falls further behind than
 * max_buffer bytes is disconnected and counted (its EventSource
 * reconnects, and starts again from a snapshot), so a slow reader never
 * blocks the run nor grows its memory. Writes never block: they go out
 * when the socket can take them. */
#pragma once

#include <gio/gio.h>

typedef struct _LiveServer LiveServer;

/* The message a new stream starts with (a newly allocated string). */
typedef char *(*LiveSnapshotFunc) (gpointer user_data);

typedef struct {
  GInetSocketAddress *address;     /* where to listen; port 0: any free port */
  GMainContext       *context;     /* where the server runs */
  GBytes             *page;        /* the body of GET / (text/html) */
  LiveSnapshotFunc    snapshot;
  gpointer            user_data;
  gsize               max_buffer;  /* bytes a stream may fall behind */
  guint               max_clients; /* connections at once; more get 503 */
} LiveServerOptions;

/* Listens on options->address; NULL with @error when it cannot. */
LiveServer *live_server_new  (const LiveServerOptions *options,
                              GError                 **error);
/* Ends every stream (with an `event: end`, when its socket takes it at
 * once) and stops listening. */
void        live_server_free (LiveServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LiveServer, live_server_free)

/* The port it listens on (the chosen one for port 0). */
guint16     live_server_get_port (LiveServer *server);

/* Sends @json_line as one event to every stream. Call on the server's
 * context. */
void        live_server_broadcast (LiveServer *server,
                                   const char *json_line);

/* How many streams were disconnected for falling behind. */
guint       live_server_get_n_dropped (LiveServer *server);
