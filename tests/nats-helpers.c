/* A real nats-server with JetStream for the jetstream tests. */
#include "nats-helpers.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

const char *
nats_server_missing (void)
{
  if (NATS_SERVER_PATH[0] == '\0' || !g_file_test (NATS_SERVER_PATH, G_FILE_TEST_IS_EXECUTABLE))
    return "nats-server is not installed (apt-get install nats-server, or ./autogen.sh, which does), "
           "so the jetstream tests cannot start one";
  return NULL;
}

guint
nats_free_port (void)
{
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
spawn (NatsServer *self)
{
  g_autofree char *port = g_strdup_printf ("%u", self->port);
  const char *argv[] = { NATS_SERVER_PATH, "-js", "-a", "127.0.0.1", "-p", port, "-sd", self->store_dir, NULL };
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr (GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_unlink (self->log_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, self->log_path);
  self->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (self->process == NULL)
    fail_msg ("cannot start %s: %s", NATS_SERVER_PATH, error->message);
  while (g_get_monotonic_time () < deadline)
    {
      g_autofree char *log = NULL;

      if (g_file_get_contents (self->log_path, &log, NULL, NULL) && strstr (log, "Server is ready") != NULL)
        return;
      g_usleep (20 * 1000);
    }
  fail_msg ("nats-server did not get ready within 10 s (log: %s)", self->log_path);
}

NatsServer *
nats_server_start (const char *dir)
{
  NatsServer *self = g_new0 (NatsServer, 1);

  self->port = nats_free_port ();
  self->url = g_strdup_printf ("nats://127.0.0.1:%u", self->port);
  self->store_dir = g_build_filename (dir, "nats-store", NULL);
  self->log_path = g_build_filename (dir, "nats-server.log", NULL);
  spawn (self);
  return self;
}

void
nats_server_kill (NatsServer *self)
{
  if (self->process == NULL)
    return;
  g_subprocess_send_signal (self->process, SIGKILL);
  g_subprocess_wait (self->process, NULL, NULL);
  g_clear_object (&self->process);
}

void
nats_server_restart (NatsServer *self)
{
  nats_server_kill (self);
  spawn (self);
}

void
nats_server_free (NatsServer *self)
{
  if (self == NULL)
    return;
  nats_server_kill (self);
  g_free (self->url);
  g_free (self->store_dir);
  g_free (self->log_path);
  g_free (self);
}
