/* HTTP on the main loop: libcurl's multi interface driven by GLib.
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
 * only queued; the source carries it out at its next dispatch, outside
 * any curl callback. For the same reason on_done is only ever called from
 * the dispatch, never from within curl.
 *
 * Pausing: when the consumer refuses bytes, the write callback keeps what
 * it was given but not used (at most one write callback's worth, 16 KiB)
 * and the next write callback returns CURL_WRITEFUNC_PAUSE, which makes
 * curl keep that buffer itself and stop reading the socket. Resuming first
 * offers the kept bytes, then unpauses curl, which delivers its own. */
#include "config.h"

#include "http-client.h"

#include <curl/curl.h>
#include <string.h>

#define USER_AGENT "chime/" PACKAGE_VERSION
/* ChimeHttpRequest.connect_timeout_s left at 0. */
#define DEFAULT_CONNECT_TIMEOUT_S 10


/* ------------------------------------------------------------------
 * Counters
 * ---------------------------------------------------------------- */

static GMutex stats_lock;
static ChimeHttpStats stats;

void
chime_http_get_stats (ChimeHttpStats *out)
{
  g_mutex_lock (&stats_lock);
  *out = stats;
  g_mutex_unlock (&stats_lock);
}

void
chime_http_reset_stats (void)
{
  g_mutex_lock (&stats_lock);
  stats.started = stats.finished = stats.pauses = 0;
  stats.max_active = stats.active;
  stats.max_pending = 0;
  g_mutex_unlock (&stats_lock);
}

static void
count_start (void)
{
  g_mutex_lock (&stats_lock);
  stats.started++;
  stats.active++;
  stats.max_active = MAX (stats.max_active, stats.active);
  g_mutex_unlock (&stats_lock);
}

static void
count_finish (void)
{
  g_mutex_lock (&stats_lock);
  stats.finished++;
  stats.active--;
  g_mutex_unlock (&stats_lock);
}

static void
count_pause (gsize pending)
{
  g_mutex_lock (&stats_lock);
  stats.pauses++;
  stats.max_pending = MAX (stats.max_pending, pending);
  g_mutex_unlock (&stats_lock);
}

/* ------------------------------------------------------------------
 * Types
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
  GSource            source;
  ChimeHttpTransfer *transfer;
} WatchdogSource;

typedef struct {
  curl_socket_t fd;
  int           flags;
} ReadySocket;

enum {
  OP_START  = 1 << 0,
  OP_RESUME = 1 << 1,
  OP_ABORT  = 1 << 2,
};

struct _ChimeHttpTransfer {
  ChimeHttpClient          *client;
  CURL                     *easy;
  struct curl_slist        *request_headers;
  char                     *body;
  char                      error_buffer[CURL_ERROR_SIZE];
  const ChimeHttpCallbacks *callbacks;
  gpointer                  user_data;

  guint                     status;
  GPtrArray                *response_headers;  /* "name: value" of the last response */

  /* Bytes taken from curl that the paused consumer has not used yet. */
  GByteArray               *pending;
  gsize                     pending_offset;

  guint                     ops;
  GList                     link;              /* in client->attention while ops != 0 */
  GError                   *abort_error;

  gboolean                  in_multi;
  gboolean                  paused;            /* by the consumer */
  gboolean                  curl_paused;       /* curl holds bytes we refused */
  gboolean                  finished;          /* curl is done; the result waits for resume */
  CURLcode                  result;
  gboolean                  done;              /* on_done has been called */

  GSource                  *watchdog;
  gint64                    idle_us;
  gint64                    last_activity;
};

static void client_ref (ChimeHttpClient *client);
static void update_ready_time (ChimeHttpClient *client);

/* ------------------------------------------------------------------
 * Queued operations
 * ---------------------------------------------------------------- */

static void
queue_op (ChimeHttpTransfer *transfer,
          guint              op)
{
  ChimeHttpClient *client = transfer->client;

  if (transfer->ops == 0)
    g_queue_push_tail_link (&client->attention, &transfer->link);
  transfer->ops |= op;
  g_source_set_ready_time (client->source, 0);
}

static void
abort_transfer (ChimeHttpTransfer *transfer,
                GError            *error)
{
  if (transfer->abort_error != NULL || transfer->done)
    {
      g_error_free (error);
      return;
    }
  transfer->abort_error = error;
  queue_op (transfer, OP_ABORT);
}

/* ------------------------------------------------------------------
 * The idle timeout
 * ---------------------------------------------------------------- */

static void
arm_watchdog (ChimeHttpTransfer *transfer)
{
  transfer->last_activity = g_get_monotonic_time ();
  if (transfer->watchdog != NULL)
    g_source_set_ready_time (transfer->watchdog, transfer->last_activity + transfer->idle_us);
}

/* Byte arrival only records the time: the watchdog re-arms itself when it
 * wakes up early, so no GSource is touched per chunk. */
static inline void
touch (ChimeHttpTransfer *transfer)
{
  transfer->last_activity = g_get_monotonic_time ();
}

static gboolean
watchdog_dispatch (GSource    *source,
                   GSourceFunc callback,
                   gpointer    user_data)
{
  ChimeHttpTransfer *transfer = ((WatchdogSource *) source)->transfer;
  gint64 deadline = transfer->last_activity + transfer->idle_us;

  if (transfer->paused || transfer->done || transfer->abort_error != NULL)
    g_source_set_ready_time (source, -1);   /* resume re-arms it */
  else if (g_get_monotonic_time () < deadline)
    g_source_set_ready_time (source, deadline);
  else
    {
      g_source_set_ready_time (source, -1);
      abort_transfer (transfer, g_error_new (CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_IDLE_TIMEOUT,
                                             "nothing received for %g s",
                                             (double) transfer->idle_us / G_USEC_PER_SEC));
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs watchdog_funcs = {
  .dispatch = watchdog_dispatch,
};

/* ------------------------------------------------------------------
 * curl's callbacks
 * ---------------------------------------------------------------- */

static size_t
on_curl_header (char  *data,
                size_t size,
                size_t n,
                void  *user_data)
{
  ChimeHttpTransfer *transfer = user_data;
  gsize length = size * n;
  long code = 0;

  touch (transfer);
  if (length >= 5 && memcmp (data, "HTTP/", 5) == 0)
    {
      /* A new response (after a 100 Continue, say) starts afresh. */
      g_ptr_array_set_size (transfer->response_headers, 0);
      return length;
    }
  if (length > 0 && (data[0] == '\r' || data[0] == '\n'))
    {
      curl_easy_getinfo (transfer->easy, CURLINFO_RESPONSE_CODE, &code);
      if (code >= 200 && transfer->status == 0)
        {
          transfer->status = (guint) code;
          if (transfer->callbacks->on_response != NULL)
            transfer->callbacks->on_response (transfer, transfer->status, transfer->user_data);
        }
      return length;
    }
  {
    g_autofree char *line = g_strndup (data, length);

    g_ptr_array_add (transfer->response_headers, g_strchomp (g_steal_pointer (&line)));
  }
  return length;
}

static size_t
on_curl_write (char  *data,
               size_t size,
               size_t n,
               void  *user_data)
{
  ChimeHttpTransfer *transfer = user_data;
  gsize length = size * n;
  gsize consumed = 0;

  touch (transfer);
  if (transfer->abort_error != NULL)
    return length;   /* going away: drop the bytes */
  if (transfer->paused || transfer->pending->len > transfer->pending_offset)
    {
      /* curl keeps these bytes and stops reading until unpaused. */
      transfer->curl_paused = TRUE;
      return CURL_WRITEFUNC_PAUSE;
    }
  if (transfer->callbacks->on_data (transfer, data, length, &consumed, transfer->user_data))
    return length;

  transfer->paused = TRUE;
  consumed = MIN (consumed, length);
  count_pause (length - consumed);
  if (consumed == 0)
    {
      transfer->curl_paused = TRUE;
      return CURL_WRITEFUNC_PAUSE;
    }
  /* curl cannot take back part of a buffer: keep the rest ourselves. */
  g_byte_array_set_size (transfer->pending, 0);
  transfer->pending_offset = 0;
  g_byte_array_append (transfer->pending, (const guint8 *) data + consumed, length - consumed);
  return length;
}

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
 * Finishing a transfer
 * ---------------------------------------------------------------- */

static GError *
error_from_curl (ChimeHttpTransfer *transfer,
                 CURLcode           code)
{
  const char *message = transfer->error_buffer[0] != '\0' ? transfer->error_buffer
                                                           : curl_easy_strerror (code);
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
      kind = transfer->status == 0 ? CHIME_HTTP_ERROR_CONNECT_TIMEOUT : CHIME_HTTP_ERROR_FAILED;
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
  return g_error_new_literal (CHIME_HTTP_ERROR, kind, message);
}

static void
transfer_free (ChimeHttpTransfer *transfer)
{
  ChimeHttpClient *client = transfer->client;

  if (transfer->watchdog != NULL)
    {
      g_source_destroy (transfer->watchdog);
      g_source_unref (transfer->watchdog);
    }
  if (transfer->in_multi)
    curl_multi_remove_handle (client->multi, transfer->easy);
  curl_easy_cleanup (transfer->easy);
  curl_slist_free_all (transfer->request_headers);
  g_ptr_array_unref (transfer->response_headers);
  g_byte_array_unref (transfer->pending);
  g_clear_error (&transfer->abort_error);
  g_free (transfer->body);
  g_free (transfer);
  chime_http_client_unref (client);
}

/* Reports the end and frees the transfer. Only from the dispatch. */
static void
complete (ChimeHttpTransfer *transfer,
          GError            *error)
{
  ChimeHttpClient *client = transfer->client;

  transfer->done = TRUE;
  if (transfer->watchdog != NULL)
    g_source_set_ready_time (transfer->watchdog, -1);
  count_finish ();
  /* Headers stay readable: the handle leaves the multi only afterwards. */
  transfer->callbacks->on_done (transfer, error, transfer->user_data);
  g_clear_error (&error);
  if (transfer->ops != 0)
    g_queue_unlink (&client->attention, &transfer->link);
  transfer_free (transfer);
}

/* Offers the kept bytes again; FALSE when the consumer paused again. */
static gboolean
deliver_pending (ChimeHttpTransfer *transfer)
{
  while (transfer->pending->len > transfer->pending_offset)
    {
      const char *data = (const char *) transfer->pending->data + transfer->pending_offset;
      gsize length = transfer->pending->len - transfer->pending_offset;
      gsize consumed = 0;
      gboolean go_on = transfer->callbacks->on_data (transfer, data, length, &consumed,
                                                     transfer->user_data);

      transfer->pending_offset += go_on ? length : MIN (consumed, length);
      if (!go_on)
        {
          transfer->paused = TRUE;
          count_pause (transfer->pending->len - transfer->pending_offset);
          return FALSE;
        }
    }
  g_byte_array_set_size (transfer->pending, 0);
  transfer->pending_offset = 0;
  return TRUE;
}

static void
start_now (ChimeHttpTransfer *transfer)
{
  CURLMcode code = curl_multi_add_handle (transfer->client->multi, transfer->easy);

  if (code != CURLM_OK)
    {
      complete (transfer, g_error_new (CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_FAILED,
                                       "cannot start the request: %s", curl_multi_strerror (code)));
      return;
    }
  transfer->in_multi = TRUE;
  arm_watchdog (transfer);
}

static void
resume_now (ChimeHttpTransfer *transfer)
{
  if (!transfer->paused)
    return;
  transfer->paused = FALSE;
  if (!deliver_pending (transfer) || transfer->abort_error != NULL)
    return;
  if (transfer->finished)
    {
      complete (transfer, error_from_curl (transfer, transfer->result));
      return;
    }
  arm_watchdog (transfer);
  if (transfer->curl_paused)
    {
      transfer->curl_paused = FALSE;
      /* May call the write callback at once with the bytes curl kept. */
      curl_easy_pause (transfer->easy, CURLPAUSE_CONT);
    }
}

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
      ChimeHttpTransfer *transfer = link->data;
      guint ops = transfer->ops;

      transfer->ops = 0;
      if (ops & OP_ABORT)
        {
          complete (transfer, g_steal_pointer (&transfer->abort_error));
          continue;
        }
      if (ops & OP_START)
        start_now (transfer);
      if ((ops & OP_RESUME) && !transfer->done)
        resume_now (transfer);
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
      ChimeHttpTransfer *transfer;
      CURLcode result = message->data.result;
      char *private_data = NULL;

      if (message->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, &private_data);
      transfer = (ChimeHttpTransfer *) private_data;
      if (transfer->done || transfer->abort_error != NULL)
        continue;   /* on its way out already */
      if (transfer->paused)
        {
          /* The consumer has not taken everything yet. */
          transfer->finished = TRUE;
          transfer->result = result;
          continue;
        }
      complete (transfer, error_from_curl (transfer, result));
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
  chime_http_client_unref (client);
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
chime_http_client_get_for_context (GMainContext *context)
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
chime_http_client_unref (ChimeHttpClient *client)
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

/* ------------------------------------------------------------------
 * Transfers
 * ---------------------------------------------------------------- */

static struct curl_slist *
build_headers (const char *const *headers)
{
  /* No "Expect: 100-continue" round trip before the body. */
  struct curl_slist *list = curl_slist_append (NULL, "Expect:");

  for (guint i = 0; headers != NULL && headers[i] != NULL; i++)
    list = curl_slist_append (list, headers[i]);
  return list;
}

static void
set_options (ChimeHttpTransfer      *transfer,
             const ChimeHttpRequest *request)
{
  CURL *easy = transfer->easy;

  curl_easy_setopt (easy, CURLOPT_URL, request->url);
  curl_easy_setopt (easy, CURLOPT_POST, 1L);
  curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) request->body_length);
  curl_easy_setopt (easy, CURLOPT_POSTFIELDS, transfer->body);
  curl_easy_setopt (easy, CURLOPT_HTTPHEADER, transfer->request_headers);
  curl_easy_setopt (easy, CURLOPT_USERAGENT, USER_AGENT);
  curl_easy_setopt (easy, CURLOPT_PRIVATE, transfer);
  curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, on_curl_write);
  curl_easy_setopt (easy, CURLOPT_WRITEDATA, transfer);
  curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, on_curl_header);
  curl_easy_setopt (easy, CURLOPT_HEADERDATA, transfer);
  curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, transfer->error_buffer);
  /* Signals would interrupt the whole process for one timeout. */
  curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS,
                    request->connect_timeout_s > 0
                      ? (long) MAX (1.0, request->connect_timeout_s * 1000.0)
                      : (long) (DEFAULT_CONNECT_TIMEOUT_S * 1000));
  /* Long streams go quiet while a model thinks: keep NATs from
   * forgetting the connection. */
  curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt (easy, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt (easy, CURLOPT_TCP_KEEPINTVL, 15L);
  /* What the official SDKs speak; each stream gets its own connection,
   * so pausing one never holds up another. */
  curl_easy_setopt (easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
  curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
  /* Whatever a URL says, only HTTP(S) is spoken. */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt (easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

ChimeHttpTransfer *
chime_http_transfer_start (GMainContext             *context,
                           const ChimeHttpRequest   *request,
                           const ChimeHttpCallbacks *callbacks,
                           gpointer                  user_data)
{
  ChimeHttpTransfer *transfer;

  g_return_val_if_fail (request != NULL && request->url != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL && callbacks->on_data != NULL && callbacks->on_done != NULL,
                        NULL);

  transfer = g_new0 (ChimeHttpTransfer, 1);
  transfer->client = chime_http_client_get_for_context (context);
  transfer->callbacks = callbacks;
  transfer->user_data = user_data;
  transfer->link.data = transfer;
  transfer->body = g_memdup2 (request->body != NULL ? request->body : "", request->body_length + 1);
  transfer->request_headers = build_headers (request->headers);
  transfer->response_headers = g_ptr_array_new_with_free_func (g_free);
  transfer->pending = g_byte_array_new ();
  transfer->easy = curl_easy_init ();
  set_options (transfer, request);

  if (request->idle_timeout_s > 0)
    {
      transfer->idle_us = (gint64) (request->idle_timeout_s * G_USEC_PER_SEC);
      transfer->watchdog = g_source_new (&watchdog_funcs, sizeof (WatchdogSource));
      ((WatchdogSource *) transfer->watchdog)->transfer = transfer;
      g_source_set_name (transfer->watchdog, "chime http idle timeout");
      g_source_attach (transfer->watchdog, transfer->client->context);
    }
  count_start ();
  queue_op (transfer, OP_START);
  return transfer;
}

void
chime_http_transfer_resume (ChimeHttpTransfer *transfer)
{
  g_return_if_fail (transfer != NULL);

  if (transfer->paused && !transfer->done)
    queue_op (transfer, OP_RESUME);
}

void
chime_http_transfer_cancel (ChimeHttpTransfer *transfer)
{
  g_return_if_fail (transfer != NULL);

  abort_transfer (transfer, g_error_new_literal (CHIME_HTTP_ERROR, CHIME_HTTP_ERROR_CANCELLED,
                                                 "the request was cancelled"));
}

guint
chime_http_transfer_get_status (ChimeHttpTransfer *transfer)
{
  return transfer->status;
}

const char *
chime_http_transfer_get_header (ChimeHttpTransfer *transfer,
                                const char        *name)
{
  gsize length = strlen (name);

  for (guint i = transfer->response_headers->len; i-- > 0;)
    {
      const char *line = g_ptr_array_index (transfer->response_headers, i);

      if (g_ascii_strncasecmp (line, name, length) == 0 && line[length] == ':')
        return line + length + 1 + strspn (line + length + 1, " \t");
    }
  return NULL;
}
