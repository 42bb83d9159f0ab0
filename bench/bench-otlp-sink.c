/* An OTLP/HTTP collector for bench/run's otlp row: the tests' loopback
 * receiver (tests/otlp-receiver.c), decoding every request as a collector
 * would, in a process of its own so that its work is not chime's.
 *
 *   bench-otlp-sink      prints "URL http://127.0.0.1:PORT/v1/traces",
 *                        serves until SIGTERM, then prints "SPANS N"
 */
#include "otlp-receiver.h"

#include <glib-unix.h>
#include <stdio.h>

static gboolean
on_term (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (void)
{
  OtlpReceiver *receiver = otlp_receiver_new ();
  GMainLoop *loop = g_main_loop_new (NULL, FALSE);
  json_t *spans;

  /* A collector keeps nothing on disk either. */
  otlp_receiver_keep_bodies (receiver, FALSE);
  printf ("URL %s\n", otlp_receiver_get_url (receiver));
  fflush (stdout);
  g_unix_signal_add (SIGTERM, on_term, loop);
  g_main_loop_run (loop);
  spans = otlp_receiver_spans (receiver);
  printf ("SPANS %zu\n", json_array_size (spans));
  json_decref (spans);
  otlp_receiver_free (receiver);
  g_main_loop_unref (loop);
  return 0;
}
