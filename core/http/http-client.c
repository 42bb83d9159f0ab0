/* HTTP on the main loop: libcurl's multi interface driven by GLib — the
 * per-context client, its GSource and the process-wide counters. One
 * transfer's own life is in http-transfer.c.
 *
 * One ChimeHttpClient per GMainContext owns a curl multi handle and one
 * GSource. curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION):
 * each becomes a unix fd tag on that source. curl tells us when it next
 * wants to run (CURLMOPT_TIMERFUNCTION): that is the source's ready time.
 * When the source dispatches, every ready socket and an expired timer go
 * to curl_multi_socket_action(), then finished transfers are reported.
 *
 * curl forbids calling the multi interface from inside its callbacks, and
 * consumers are called from inside them (the write callback). So every
 * operation on a transfer — starting it, resuming it, aborting it — is
 * only queued here; the source hands it back to the transfer at its next
 * dispatch, outside any curl callback. For the same reason on_done is only
 * ever called from the dispatch, never from within curl. */
#include "config.h"

#include "http-client-private.h"

/* ------------------------------------------------------------------
 * Counters
 * ---------------------------------------------------------------- */

static GMutex stats_lock;
static ChimeHttpStats stats;

void
chime_http_curl_get_stats (ChimeHttpStats *out)
{
  g_mutex_lock (&stats_lock);
  *out = stats;
  g_mutex_unlock (&stats_lock);
}

void
chime_http_curl_reset_stats (void)
{
  g_mutex_lock (&stats_lock);
  stats.started = stats.finished = stats.pauses = 0;
  stats.max_active = stats.active;
  stats.max_pending = 0;
  g_mutex_unlock (&stats_lock);
}

void
chime_http_count_start (void)
{
  g_mutex_lock (&stats_lock);
  stats.started++;
  stats.active++;
  stats.max_active = MAX (stats.max_active, stats.active);
  g_mutex_unlock (&stats_lock);
}

void
chime_http_count_finish (void)
{
  g_mutex_lock (&stats_lock);
  stats.finished++;
  stats.active--;
  g_mutex_unlock (&stats_lock);
}

void
chime_http_count_pause (gsize pending)
{
  g_mutex_lock (&stats_lock);
  stats.pauses++;
  stats.max_pending = MAX (stats.max_pending, pending);
  g_mutex_unlock (&stats_lock);
}

/* ------------------------------------------------------------------
 * The client
 * ---------------------------------------------------------------- */

struct _ChimeHttpClient {
  guint         ref_count;      /* guarded by clients_lock */
  GMainContext *context;
  CURLM        *multi;
  GSource      *source;
  GHashTable   *sockets;        /* fd -> tag from g_source_add_unix_fd() */
  GArray       *ready;          /* scratch: the sockets ready at a dispatch */
  gint64        curl_deadline;  /* monotonic µs of curl's timer, -1: none */
  GQueue        attention;      /* transfers with queued operations */
  gboolean      closing;
};

typedef struct {
  GSource          source;
  ChimeHttpClient *client;
} ClientSource;

typedef struct {
  curl_socket_t fd;
  int           flags;
} ReadySocket;

static void client_ref (ChimeHttpClient *client);
static void update_ready_time (ChimeHttpClient *client);

/* ------------------------------------------------------------------
 * curl's callbacks
 * ---------------------------------------------------------------- */

static int
on_curl_socket (CURL         *easy,
                curl_socket_t fd,
                int           what,
                void         *user_data,
                void         *socket_data)
{
  ChimeHttpClient *client = user_data;
  gpointer tag = socket_data;
  GIOCondition condition = 0;

  if (client->closing)
    return 0;
  if (what == CURL_POLL_REMOVE)
    {
      if (tag != NULL)
        g_source_remove_unix_fd (client->source, tag);
      g_hash_table_remove (client->sockets, GINT_TO_POINTER (fd));
      return 0;
    }
  if (what & CURL_POLL_IN)
    condition |= G_IO_IN;
  if (what & CURL_POLL_OUT)
    condition |= G_IO_OUT;
  if (tag != NULL)
    g_source_modify_unix_fd (client->source, tag, condition);
  else
    {
      tag = g_source_add_unix_fd (client->source, fd, condition);
      curl_multi_assign (client->multi, fd, tag);
      g_hash_table_insert (client->sockets, GINT_TO_POINTER (fd), tag);
    }
  return 0;
}

static int
on_curl_timer (CURLM *multi,
               long   timeout_ms,
               void  *user_data)
{
  ChimeHttpClient *client = user_data;

  client->curl_deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  update_ready_time (client);
  return 0;
}

/* ------------------------------------------------------------------
 * What the transfers ask of their client
 * ---------------------------------------------------------------- */

GMainContext *
chime_http_client_get_context (ChimeHttpClient *client)
{
  return client->context;
}

void
chime_http_client_queue (ChimeHttpClient     *client,
                         ChimeHttpClientItem *item)
{
  g_queue_push_tail_link (&client->attention, &item->link);
  g_source_set_ready_time (client->source, 0);
}

void
chime_http_client_unqueue (ChimeHttpClient     *client,
                           ChimeHttpClientItem *item)
{
  g_queue_unlink (&client->attention, &item->link);
}

CURLMcode
chime_http_client_add_handle (ChimeHttpClient *client,
                              CURL            *easy)
{
  return curl_multi_add_handle (client->multi, easy);
}

void
chime_http_client_remove_handle (ChimeHttpClient *client,
                                 CURL            *easy)
{
  curl_multi_remove_handle (client->multi, easy);
}

/* ------------------------------------------------------------------
 * How a transfer ended
 * ---------------------------------------------------------------- */

GError *
chime_http_error_from_curl (CURLcode    code,
                            const char *error_buffer,
                            guint       status)
{
  const char *message = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror (code);
  ChimeHttpError kind;

  switch (code)
    {
    case CURLE_OK:
      return NULL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      kind = CHIME_HTTP_ERROR_CONNECT;
      break;
    case CURLE_OPERATION_TIMEDOUT:
      /* No overall timeout is set: only the connection can time out. */
      kind = status == 0 ? CHIME_HTTP_ERROR_CONNECT_TIMEOUT : CHIME_HTTP_ERROR_FAILED;
      break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
      kind = CHIME_HTTP_ERROR_INVALID;
      break;
    default:
      kind = CHIME_HTTP_ERROR_FAILED;
      break;
    }
  return g_error_new_literal (CHIME_HTTP_CURL_ERROR, kind, message);
}

/* ------------------------------------------------------------------
 * A dispatch
 * ---------------------------------------------------------------- */

/* Carries out the operations queued before this dispatch; those queued
 * meanwhile wait for the next one, so a busy consumer cannot starve the
 * sockets. */
static void
process_attention (ChimeHttpClient *client)
{
  guint n = client->attention.length;

  while (n-- > 0 && client->attention.head != NULL)
    {
      GList *link = g_queue_pop_head_link (&client->attention);
      ChimeHttpClientItem *item = link->data;

      item->funcs->process (item);
    }
}

static void
process_sockets (ChimeHttpClient *client)
{
  GHashTableIter iter;
  gpointer key, tag;
  int running;

  /* Query every socket before acting on any: an action may close one
   * and free its tag. */
  g_array_set_size (client->ready, 0);
  g_hash_table_iter_init (&iter, client->sockets);
  while (g_hash_table_iter_next (&iter, &key, &tag))
    {
      GIOCondition revents = g_source_query_unix_fd (client->source, tag);
      ReadySocket ready = { GPOINTER_TO_INT (key), 0 };

      if (revents == 0)
        continue;
      if (revents & (G_IO_IN | G_IO_HUP))
        ready.flags |= CURL_CSELECT_IN;
      if (revents & G_IO_OUT)
        ready.flags |= CURL_CSELECT_OUT;
      if (revents & G_IO_ERR)
        ready.flags |= CURL_CSELECT_ERR;
      g_array_append_val (client->ready, ready);
    }
  for (guint i = 0; i < client->ready->len; i++)
    {
      ReadySocket *ready = &g_array_index (client->ready, ReadySocket, i);

      curl_multi_socket_action (client->multi, ready->fd, ready->flags, &running);
    }
}

static void
process_timer (ChimeHttpClient *client)
{
  int running;

  if (client->curl_deadline < 0 || g_get_monotonic_time () < client->curl_deadline)
    return;
  client->curl_deadline = -1;
  curl_multi_socket_action (client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

static void
process_finished (ChimeHttpClient *client)
{
  CURLMsg *message;
  int left;

  while ((message = curl_multi_info_read (client->multi, &left)) != NULL)
    {
      ChimeHttpClientItem *item;
      CURLcode result = message->data.result;
      char *private_data = NULL;

      if (message->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, &private_data);
      item = (ChimeHttpClientItem *) private_data;
      item->funcs->finished (item, result);
    }
}

/* ------------------------------------------------------------------
 * The client's source
 * ---------------------------------------------------------------- */

static void
update_ready_time (ChimeHttpClient *client)
{
  if (client->closing)
    return;
  g_source_set_ready_time (client->source,
                           client->attention.length > 0 ? 0 : client->curl_deadline);
}

static gboolean
client_dispatch (GSource    *source,
                 GSourceFunc callback,
                 gpointer    user_data)
{
  ChimeHttpClient *client = ((ClientSource *) source)->client;

  /* Consumers may drop every other reference from their callbacks. */
  client_ref (client);
  g_source_set_ready_time (source, -1);
  process_attention (client);
  process_sockets (client);
  process_timer (client);
  process_finished (client);
  update_ready_time (client);
  chime_http_curl_client_unref (client);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs client_source_funcs = {
  .dispatch = client_dispatch,
};

/* ------------------------------------------------------------------
 * Clients: one per main context
 * ---------------------------------------------------------------- */

static GMutex clients_lock;
static GHashTable *clients;   /* GMainContext* -> ChimeHttpClient* */

static void
ensure_curl (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      CURLcode code = curl_global_init (CURL_GLOBAL_DEFAULT);

      if (code != CURLE_OK)
        g_error ("curl_global_init failed: %s", curl_easy_strerror (code));
      g_once_init_leave (&initialized, 1);
    }
}

static ChimeHttpClient *
client_new (GMainContext *context)
{
  ChimeHttpClient *client = g_new0 (ChimeHttpClient, 1);

  client->ref_count = 1;
  client->context = g_main_context_ref (context);
  client->curl_deadline = -1;
  client->sockets = g_hash_table_new (NULL, NULL);
  client->ready = g_array_new (FALSE, FALSE, sizeof (ReadySocket));
  g_queue_init (&client->attention);

  client->multi = curl_multi_init ();
  curl_multi_setopt (client->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt (client->multi, CURLMOPT_SOCKETDATA, client);
  curl_multi_setopt (client->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt (client->multi, CURLMOPT_TIMERDATA, client);

  client->source = g_source_new (&client_source_funcs, sizeof (ClientSource));
  ((ClientSource *) client->source)->client = client;
  g_source_set_name (client->source, "chime http client");
  g_source_set_ready_time (client->source, -1);
  g_source_attach (client->source, context);
  return client;
}

static void
client_free (ChimeHttpClient *client)
{
  /* Every transfer holds a reference: none is left. */
  curl_multi_cleanup (client->multi);
  client->closing = TRUE;
  g_source_destroy (client->source);
  g_source_unref (client->source);
  g_hash_table_unref (client->sockets);
  g_array_unref (client->ready);
  g_main_context_unref (client->context);
  g_free (client);
}

static void
client_ref (ChimeHttpClient *client)
{
  g_mutex_lock (&clients_lock);
  client->ref_count++;
  g_mutex_unlock (&clients_lock);
}

ChimeHttpClient *
chime_http_curl_client_get_for_context (GMainContext *context)
{
  ChimeHttpClient *client;

  ensure_curl ();
  if (context == NULL)
    context = g_main_context_default ();
  g_mutex_lock (&clients_lock);
  if (clients == NULL)
    clients = g_hash_table_new (NULL, NULL);
  client = g_hash_table_lookup (clients, context);
  if (client != NULL)
    client->ref_count++;
  else
    {
      client = client_new (context);
      g_hash_table_insert (clients, context, client);
    }
  g_mutex_unlock (&clients_lock);
  return client;
}

void
chime_http_curl_client_unref (ChimeHttpClient *client)
{
  gboolean last;

  if (client == NULL)
    return;
  g_mutex_lock (&clients_lock);
  last = --client->ref_count == 0;
  if (last)
    g_hash_table_remove (clients, client->context);
  g_mutex_unlock (&clients_lock);
  if (last)
    client_free (client);
}
