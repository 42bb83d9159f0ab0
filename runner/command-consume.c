/* chime consume: the events a `jetstream` handler published, handled by
 * this file's [handler NAME] sections.
 *
 * A durable pull consumer ([consume] durable = GROUP) fetches up to
 * `batch` messages, splits each into its events (a message carries one or
 * several, jetstream-message.c), rebuilds each event
 * (chime_event_from_transport()), gives them to the runtime in order
 * (chime_runtime_replay()) and then waits until every handler has
 * finished the batch (chime_runtime_flush(): the awaited fence). Only then
 * are the messages acked. When a handler failed (or timed out) on the
 * batch, its messages are nak'ed with nak_delay_ms, or terminated once
 * delivered max_deliver times; both are counted, in events. A message
 * that is not whole (a torn line, a count that does not match) is
 * terminated at once, none of its events handled, and counted. A
 * member of the group that dies leaves its un-acked messages to the
 * server, which gives them to another member after ack_wait_ms: every
 * event is handled at least once, and its id (chime_event_get_id())
 * tells a redelivered copy from a new event.
 *
 * The first SIGINT or SIGTERM stops the fetching: the batch in hand is
 * finished and acked, and chime exits 0 (again: at once).
 *
 * This file is the module chime-consume (consume-module.h says why), so
 * only this command loads libnats. */
#include "config.h"

#include <chime/chime.h>
#include <gmodule.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "consume-module.h"
#include "consume-settings.h"
#include "jetstream-connect.h"
#include "jetstream-message.h"

typedef struct {
  guint64 handled;
  guint64 acked;
  guint64 naked;
  guint64 terminated;
  guint64 malformed;
  guint64 messages;
} ConsumeStats;

typedef struct {
  const ChimeConsumeHost *host;
  ConsumeSettings  *settings;
  ChimeRuntime     *runtime;
  natsConnection   *connection;
  jsCtx            *js;
  natsSubscription *subscription;
  /* The connection's callbacks are given this: it lives as long as the
   * connection, not only while connecting. */
  JetstreamServer   server;
  ConsumeStats      stats;
  gint64            idle_exit_ms;
  /* Reads a message's lines; a run's tokens share its run. */
  ChimeTransportReader *reader;
} Consumer;

static void
log_connection (const char *message,
                gpointer    data)
{
  g_message ("consume: %s", message);
}

/* Failures and timeouts of every handler so far: a batch failed when the
 * sum grew while it was handled. */
static guint64
handler_failures (ChimeRuntime *runtime)
{
  guint64 total = 0;

  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    {
      ChimeHandlerStats stats = { 0 };

      chime_runtime_get_handler_stats (runtime, chime_runtime_get_handler_name (runtime, i), &stats, sizeof stats);
      total += stats.failed + stats.timed_out;
    }
  return total;
}

/* The stream sequence of @message, for messages about it (0: unknown). */
static guint64
stream_sequence (natsMsg *message)
{
  jsMsgMetaData *meta = NULL;
  guint64 sequence = natsMsg_GetMetaData (&meta, message) == NATS_OK ? meta->Sequence.Stream : 0;

  jsMsgMetaData_Destroy (meta);
  return sequence;
}

/* The @count events of @message's body, one a line; NULL with @error
 * when the lines are not @count or one is not an event. */
static GPtrArray *
read_events (Consumer *self,
             natsMsg  *message,
             guint     count,
             GError  **error)
{
  const char *line = natsMsg_GetData (message);
  const char *end = line + natsMsg_GetDataLength (message);
  g_autoptr (GPtrArray) events = NULL;
  guint n_lines = 1;

  for (const char *p = line; (p = memchr (p, '\n', (size_t) (end - p))) != NULL; p++)
    n_lines++;
  if (n_lines != count)
    {
      g_set_error (error, JETSTREAM_ERROR, 0, "it has %u events, not the %u its %s header says", n_lines, count,
                   JETSTREAM_COUNT_HEADER);
      return NULL;
    }
  events = g_ptr_array_new_full (count, (GDestroyNotify) chime_event_unref);
  for (guint i = 0; i < count; i++)
    {
      const char *newline = memchr (line, '\n', (size_t) (end - line));
      const char *stop = newline != NULL ? newline : end;
      g_autoptr (GError) why = NULL;
      ChimeEvent *event = chime_transport_reader_read (self->reader, line, (gsize) (stop - line), &why);

      if (event == NULL)
        {
          g_set_error (error, JETSTREAM_ERROR, 0, "line %u of %u is not a chime event: %s", i + 1, count,
                       why->message);
          return NULL;
        }
      g_ptr_array_add (events, event);
      line = stop + 1;
    }
  return g_steal_pointer (&events);
}

/* Hands @message's events to the handlers, in order; how many, or 0 when
 * it is not whole (terminated at once, none of its events handled: no
 * delivery would make it whole). */
static guint
replay (Consumer *self,
        natsMsg  *message)
{
  g_autoptr (GError) error = NULL;
  guint count = jetstream_message_get_count (message);
  g_autoptr (GPtrArray) events = NULL;

  self->stats.messages++;
  if (count == 0)
    g_set_error (&error, JETSTREAM_ERROR, 0, "its %s header is not a number from 1 to %u", JETSTREAM_COUNT_HEADER,
                 JETSTREAM_MAX_COUNT);
  else
    events = read_events (self, message, count, &error);
  if (events == NULL)
    {
      g_warning ("consume: message %" G_GUINT64_FORMAT " of stream %s (subject %s) is not whole: %s; terminated",
                 stream_sequence (message), self->settings->stream, natsMsg_GetSubject (message), error->message);
      natsMsg_Term (message, NULL);
      self->stats.malformed++;
      return 0;
    }
  /* A raise_error handler's failure is counted below, with the others. */
  for (guint i = 0; i < events->len; i++)
    chime_runtime_replay (self->runtime, events->pdata[i], NULL);
  return count;
}

/* A message whose batch failed: again later, or never after max_deliver. */
static void
refuse (Consumer *self,
        natsMsg  *message,
        guint     n_events)
{
  jsMsgMetaData *meta = NULL;
  guint64 delivered = natsMsg_GetMetaData (&meta, message) == NATS_OK ? meta->NumDelivered : 1;

  jsMsgMetaData_Destroy (meta);
  if ((gint64) delivered >= self->settings->max_deliver)
    {
      natsMsg_Term (message, NULL);
      self->stats.terminated += n_events;
    }
  else
    {
      /* The whole message comes again: its events that were handled are
       * handled twice (their ids tell; jsonl dedupe skips them). */
      natsMsg_NakWithDelay (message, self->settings->nak_delay_ms, NULL);
      self->stats.naked += n_events;
    }
}

static void
handle_batch (Consumer    *self,
              natsMsgList *batch)
{
  guint64 failures_before = handler_failures (self->runtime);
  guint *replayed = g_newa (guint, batch->Count);
  GMainContext *context = chime_runtime_get_main_context (self->runtime);
  gboolean failed;

  for (int i = 0; i < batch->Count; i++)
    replayed[i] = replay (self, batch->Msgs[i]);
  /* The fence: every handler has finished every event of the batch. */
  chime_runtime_flush (self->runtime);
  /* What handlers left for an idle main loop (a jetstream handler's last
   * message) goes before the acks. */
  while (g_main_context_iteration (context, FALSE))
    ;
  failed = handler_failures (self->runtime) != failures_before;
  for (int i = 0; i < batch->Count; i++)
    {
      if (replayed[i] == 0)
        continue;
      self->stats.handled += replayed[i];
      if (failed)
        refuse (self, batch->Msgs[i], replayed[i]);
      else if (natsMsg_Ack (batch->Msgs[i], NULL) == NATS_OK)
        self->stats.acked += replayed[i];
    }
}

static gboolean
subscribe (Consumer *self,
           GError  **error)
{
  const ConsumeSettings *settings = self->settings;
  jsSubOptions options;
  jsErrCode code = 0;
  natsStatus status;

  jsSubOptions_Init (&options);
  options.Stream = settings->stream;
  options.Config.Durable = settings->durable;
  options.Config.AckPolicy = js_AckExplicit;
  options.Config.AckWait = settings->ack_wait_ms * 1000000;
  options.Config.MaxAckPending = settings->max_ack_pending;
  options.Config.MaxDeliver = settings->max_deliver;
  options.Config.FilterSubject = settings->filter;
  status = js_PullSubscribe (&self->subscription, self->js, settings->filter, settings->durable, NULL, &options,
                             &code);
  if (status == NATS_OK)
    return TRUE;
  {
    g_autofree char *why = jetstream_describe_status (status);

    g_set_error (error, JETSTREAM_ERROR, 0,
                 "%s: cannot join consumer group '%s' on stream %s (filter %s): %s (error %d)",
                 settings->who, settings->durable, settings->stream, settings->filter, why, (int) code);
  }
  return FALSE;
}

static gboolean
consumer_start (Consumer *self,
                GError  **error)
{
  const ConsumeSettings *settings = self->settings;
  /* The prefix is the filter's business: any subject of the stream does. */
  JetstreamStream stream = { .name = settings->stream, .prefix = NULL };

  self->server = (JetstreamServer) {
    .urls = (const char * const *) settings->urls,
    .who = settings->who,
    .connect_timeout_ms = (guint) settings->connect_timeout_ms,
    .reconnect_wait_ms = (guint) settings->reconnect_wait_ms,
    .log = log_connection,
  };
  self->connection = jetstream_connect (&self->server, error);
  if (self->connection == NULL)
    return FALSE;
  if (natsConnection_JetStream (&self->js, self->connection, NULL) != NATS_OK)
    {
      g_set_error (error, JETSTREAM_ERROR, 0, "%s: cannot use JetStream", settings->who);
      return FALSE;
    }
  return jetstream_ensure_stream (self->js, &self->server, &stream, error) && subscribe (self, error);
}

/* Fetches and handles batches until a signal, or @idle_exit_ms without a
 * message (0: never). */
static void
consumer_run (Consumer *self)
{
  gint64 last_message = g_get_monotonic_time ();

  while (self->host->signals_received () == 0)
    {
      natsMsgList batch = { 0 };
      natsStatus status = natsSubscription_Fetch (&batch, self->subscription, (int) self->settings->batch,
                                                  self->settings->fetch_wait_ms, NULL);

      /* Async handlers' timers and I/O between batches too. */
      while (g_main_context_iteration (chime_runtime_get_main_context (self->runtime), FALSE))
        ;
      if (status == NATS_OK && batch.Count > 0)
        {
          handle_batch (self, &batch);
          last_message = g_get_monotonic_time ();
        }
      natsMsgList_Destroy (&batch);
      if (status != NATS_OK && status != NATS_TIMEOUT)
        g_usleep (100 * 1000);   /* reconnecting: libnats retries meanwhile */
      if (self->idle_exit_ms > 0 && g_get_monotonic_time () - last_message > self->idle_exit_ms * 1000)
        break;
    }
}

static void
consumer_stop (Consumer *self)
{
  const ConsumeStats *stats = &self->stats;
  gboolean connected = self->connection != NULL;

  if (connected)
    {
      /* The last acks leave before the connection closes. */
      natsConnection_FlushTimeout (self->connection, 5000);
      natsSubscription_Destroy (self->subscription);
      natsConnection_Close (self->connection);
    }
  if (self->js != NULL)
    jsCtx_Destroy (self->js);
  if (self->connection != NULL)
    natsConnection_Destroy (g_steal_pointer (&self->connection));
  if (self->runtime != NULL)
    chime_runtime_shutdown (self->runtime);
  /* Every connection is gone now, the handlers' (a jetstream handler of
   * the file) too: wait for libnats's threads, whose callbacks read
   * self->server, before self (on the caller's stack) goes. */
  if (connected)
    nats_CloseAndWait (2000);
  g_printerr ("chime: consume: %" G_GUINT64_FORMAT " events handled, %" G_GUINT64_FORMAT " acked, %"
              G_GUINT64_FORMAT " nak'ed, %" G_GUINT64_FORMAT " terminated after max_deliver; %" G_GUINT64_FORMAT
              " messages, %" G_GUINT64_FORMAT " not whole\n", stats->handled, stats->acked, stats->naked,
              stats->terminated, stats->messages, stats->malformed);
}

int
chime_consume_module_main (const ChimeConsumeHost *host,
                           int                     argc,
                           char                  **argv)
{
  gint idle_exit_ms = 0;
  const GOptionEntry entries[] = {
    { "idle-exit-ms", 0, 0, G_OPTION_ARG_INT, &idle_exit_ms,
      "exit (status 0) after MS milliseconds without a message", "MS" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONFIG - handle the events of a JetStream stream");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeConfig) config = NULL;
  g_autoptr (ConsumeSettings) settings = NULL;
  Consumer consumer = { 0 };
  int status = CLI_EXIT_OK;

  if (host == NULL || host->size != sizeof *host)
    {
      g_printerr ("chime: consume: its module was built for another chime; reinstall chime\n");
      return CLI_EXIT_RUN_FAILED;
    }
  consumer.host = host;
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
    "Joins the consumer group [consume] durable of the stream [consume] stream and gives\n"
    "every event to the file's [handler NAME] sections; acks a message once every handler\n"
    "has finished it. SIGINT/SIGTERM: finish the messages in hand, ack them, exit 0.\n\n"
    "Exit status: 0 stopped, 1 NATS unreachable, 2 bad command line, 3 bad configuration.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return cli_usage_error (context, "%s", error->message);
  if (argc != 2)
    return cli_usage_error (context, "consume needs exactly one CONFIG");
  if (idle_exit_ms < 0)
    return cli_usage_error (context, "--idle-exit-ms must be 0 or more");
  config = chime_config_new_from_file (argv[1], &error);
  if (config != NULL)
    settings = consume_settings_read (config);
  if (config != NULL)
    consumer.runtime = chime_runtime_new (config, &error);
  if (consumer.runtime == NULL)
    {
      cli_print_error (error);
      return CLI_EXIT_CONFIG;
    }
  consumer.settings = settings;
  consumer.idle_exit_ms = idle_exit_ms;
  consumer.reader = chime_transport_reader_new ();
  if (consumer_start (&consumer, &error))
    consumer_run (&consumer);
  else
    {
      cli_print_error (error);
      status = CLI_EXIT_RUN_FAILED;
    }
  consumer_stop (&consumer);
  chime_transport_reader_free (consumer.reader);
  chime_runtime_unref (consumer.runtime);
  return status;
}
