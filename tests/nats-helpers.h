/* A real nats-server with JetStream for the jetstream tests, on a free
 * loopback port with its store in a test folder (nats-helpers.c). */
#pragma once

#include <gio/gio.h>

typedef struct {
  GSubprocess *process;
  guint        port;
  char        *url;
  char        *store_dir;
  char        *log_path;
} NatsServer;

/* Why the tests cannot run here (no nats-server), or NULL. */
const char *nats_server_missing (void);

/* Starts nats-server -js in @dir and waits until it is ready; fails the
 * test when it does not start within 10 s. */
NatsServer *nats_server_start   (const char *dir);
/* SIGKILLs it and waits for it to end. */
void        nats_server_kill    (NatsServer *server);
/* Starts it again on the same port and store (after nats_server_kill). */
void        nats_server_restart (NatsServer *server);
void        nats_server_free    (NatsServer *server);

/* A loopback port nothing listens on (bound and released). */
guint       nats_free_port      (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NatsServer, nats_server_free)
