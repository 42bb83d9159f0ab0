/* jetstream — connecting to NATS and finding (or making) the stream,
 * shared by the `jetstream` plugin and `chime consume` (jetstream-connect.c). */
#pragma once

#include <glib.h>
#include <nats/nats.h>

#define JETSTREAM_ERROR (jetstream_error_quark ())
GQuark jetstream_error_quark (void);

/* How a connection logs its disconnections and reconnections (called on
 * a libnats thread). */
typedef void (*JetstreamLogFunc) (const char *message,
                                  gpointer    data);

typedef struct {
  /* NULL-terminated nats:// URLs: one server, or the members of a cluster. */
  const char * const *urls;
  /* Who asks, for messages: "[handler bus]", "[consume]". */
  const char         *who;
  guint               connect_timeout_ms;
  guint               reconnect_wait_ms;
  JetstreamLogFunc    log;
  gpointer            log_data;
} JetstreamServer;

/* Connects to one of @server's URLs, reconnecting for ever afterwards
 * (publishes made meanwhile are buffered). NULL with @error saying which
 * servers could not be reached and how to start one. */
natsConnection *jetstream_connect (const JetstreamServer *server,
                                   GError               **error);

typedef struct {
  const char *name;
  /* Subjects go to the stream when they start with "PREFIX." (NULL: any
   * subject of the stream will do). */
  const char *prefix;
  gboolean    create;
  /* With @create: how long messages are kept, and how long the server
   * remembers a Nats-Msg-Id to drop a duplicate. */
  guint64     max_age_s;
  guint64     duplicate_window_ms;
} JetstreamStream;

/* Checks that @stream exists and takes "PREFIX.>", or creates it when
 * asked to; FALSE with @error naming the stream and how to fix it. */
gboolean jetstream_ensure_stream (jsCtx                 *js,
                                  const JetstreamServer *server,
                                  const JetstreamStream *stream,
                                  GError               **error);

/* libnats's text for @status, with its last error's detail when it has one. */
char *jetstream_describe_status (natsStatus status);
