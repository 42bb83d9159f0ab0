/* One HTTP transfer on the main loop: its curl easy handle, what curl's
 * callbacks make of the response (status, headers, body bytes for the
 * consumer), pausing and resuming, the idle timeout, cancellation and the
 * end. The per-context client that runs it is http-client.c.
 *
 * curl forbids calling the multi interface from inside its callbacks, and
 * consumers are called from inside them (the write callback). So every
 * operation on a transfer — starting it, resuming it, aborting it — is
 * only queued on the client; the client's source hands the transfer back
 * to process_ops() at its next dispatch, outside any curl callback, and
 * reports curl's end of the transfer to on_curl_done() from there too. So
 * on_done is only ever called from the dispatch, never from within curl.
 *
 * Pausing: when the consumer refuses bytes, the write callback keeps what
 * it was given but not used (at most one write callback's worth, 16 KiB)
 * and the next write callback returns CURL_WRITEFUNC_PAUSE, which makes
 * curl keep that buffer itself and stop reading the socket. Resuming first
 * offers the kept bytes, then unpauses curl, which delivers its own. */
#include "config.h"

#include "http-client-private.h"

#include <string.h>

/* The most bytes read from the socket at once (see set_options), and so
 * the most a paused consumer can have kept aside (pending). */
#define RECEIVE_BUFFER_SIZE (64 * 1024)

#define USER_AGENT "chime/" PACKAGE_VERSION
/* ChimeHttpRequest.connect_timeout_s left at 0. */
#define DEFAULT_CONNECT_TIMEOUT_S 10

/* ------------------------------------------------------------------
 * Types
 * ---------------------------------------------------------------- */

typedef struct {
  GSource            source;
  ChimeHttpTransfer *transfer;
} WatchdogSource;

enum {
  OP_START  = 1 << 0,
  OP_RESUME = 1 << 1,
  OP_ABORT  = 1 << 2,
};

struct _ChimeHttpTransfer {
  /* First, so that the client's item is the transfer. */
  ChimeHttpClientItem       item;              /* queued while ops != 0 */
  ChimeHttpClient          *client;
  CURL                     *easy;
  struct curl_slist        *request_headers;
  char                     *body;
  char                      error_buffer[CURL_ERROR_SIZE];
  const ChimeHttpCallbacks *callbacks;
  gpointer                  user_data;

  guint                     status;
  GPtrArray                *response_headers;  /* "name: value" of the last response */
  gsize                     header_bytes;      /* of the response being read */
  gboolean                  in_headers;        /* its status line came, its end did not */

  /* Bytes taken from curl that the paused consumer has not used yet. */
  GByteArray               *pending;
  gsize                     pending_offset;

  guint                     ops;
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

/* ------------------------------------------------------------------
 * Queued operations
 * ---------------------------------------------------------------- */

static void
queue_op (ChimeHttpTransfer *transfer,
          guint              op)
{
  /* Only the first operation queues the transfer: the dispatch that this
   * asked for carries out all those queued by then. */
  if (transfer->ops == 0)
    chime_http_client_queue (transfer->client, &transfer->item);
  transfer->ops |= op;
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
      abort_transfer (transfer, g_error_new (CHIME_HTTP_CURL_ERROR, CHIME_HTTP_ERROR_IDLE_TIMEOUT,
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
      transfer->header_bytes = length;
      transfer->in_headers = TRUE;
      return length;
    }
  transfer->header_bytes += length;
  if (transfer->header_bytes > CHIME_HTTP_MAX_HEADER_SIZE)
    {
      abort_transfer (transfer, g_error_new (CHIME_HTTP_CURL_ERROR, CHIME_HTTP_ERROR_FAILED,
                                             "the response headers exceed the HTTP client's limit of %d bytes "
                                             "(CHIME_HTTP_MAX_HEADER_SIZE): %" G_GSIZE_FORMAT " bytes so far, "
                                             "in %u lines", CHIME_HTTP_MAX_HEADER_SIZE, transfer->header_bytes,
                                             transfer->response_headers->len + 2));
      return 0;   /* curl stops reading */
    }
  if (length > 0 && (data[0] == '\r' || data[0] == '\n'))
    {
      transfer->in_headers = FALSE;
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
  chime_http_count_pause (length - consumed);
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

/* ------------------------------------------------------------------
 * Finishing a transfer
 * ---------------------------------------------------------------- */

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
    chime_http_client_remove_handle (client, transfer->easy);
  curl_easy_cleanup (transfer->easy);
  curl_slist_free_all (transfer->request_headers);
  g_ptr_array_unref (transfer->response_headers);
  g_byte_array_unref (transfer->pending);
  g_clear_error (&transfer->abort_error);
  g_free (transfer->body);
  g_free (transfer);
  chime_http_curl_client_unref (client);
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
  chime_http_count_finish ();
  /* Headers stay readable: the handle leaves the multi only afterwards. */
  transfer->callbacks->on_done (transfer, error, transfer->user_data);
  g_clear_error (&error);
  if (transfer->ops != 0)
    chime_http_client_unqueue (client, &transfer->item);
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
          chime_http_count_pause (transfer->pending->len - transfer->pending_offset);
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
  CURLMcode code = chime_http_client_add_handle (transfer->client, transfer->easy);

  if (code != CURLM_OK)
    {
      complete (transfer, g_error_new (CHIME_HTTP_CURL_ERROR, CHIME_HTTP_ERROR_FAILED,
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
      complete (transfer, chime_http_error_from_curl (transfer->result, transfer->error_buffer,
                                                      transfer->status));
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

/* ------------------------------------------------------------------
 * What the client's dispatch hands back
 * ---------------------------------------------------------------- */

static void
process_ops (ChimeHttpClientItem *item)
{
  ChimeHttpTransfer *transfer = (ChimeHttpTransfer *) item;
  guint ops = transfer->ops;

  transfer->ops = 0;
  if (ops & OP_ABORT)
    {
      complete (transfer, g_steal_pointer (&transfer->abort_error));
      return;
    }
  if (ops & OP_START)
    start_now (transfer);
  if ((ops & OP_RESUME) && !transfer->done)
    resume_now (transfer);
}

/* libcurl refuses a single header line over CURL_MAX_HTTP_HEADER before
 * on_curl_header() sees it, with an error that says only "Out of memory"
 * (CURLE_TOO_LARGE since 8.6): such a line is over our limit too. */
static gboolean
is_header_line_refused (ChimeHttpTransfer *transfer,
                        CURLcode           result)
{
  if (!transfer->in_headers)
    return FALSE;
#if LIBCURL_VERSION_NUM >= 0x080600
  if (result == CURLE_TOO_LARGE)
    return TRUE;
#endif
  return result == CURLE_OUT_OF_MEMORY;
}

static void
on_curl_done (ChimeHttpClientItem *item,
              CURLcode             result)
{
  ChimeHttpTransfer *transfer = (ChimeHttpTransfer *) item;

  if (transfer->done || transfer->abort_error != NULL)
    return;   /* on its way out already */
  if (is_header_line_refused (transfer, result))
    {
      complete (transfer, g_error_new (CHIME_HTTP_CURL_ERROR, CHIME_HTTP_ERROR_FAILED,
                                       "the response headers exceed the HTTP client's limit of %d bytes "
                                       "(CHIME_HTTP_MAX_HEADER_SIZE): one header line alone is over libcurl's "
                                       "limit of %d bytes", CHIME_HTTP_MAX_HEADER_SIZE, CURL_MAX_HTTP_HEADER));
      return;
    }
  if (transfer->paused)
    {
      /* The consumer has not taken everything yet. */
      transfer->finished = TRUE;
      transfer->result = result;
      return;
    }
  complete (transfer, chime_http_error_from_curl (result, transfer->error_buffer, transfer->status));
}

static const ChimeHttpClientItemFuncs item_funcs = {
  .process = process_ops,
  .finished = on_curl_done,
};

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
  curl_easy_setopt (easy, CURLOPT_PRIVATE, &transfer->item);
  curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, on_curl_write);
  curl_easy_setopt (easy, CURLOPT_WRITEDATA, transfer);
  curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, on_curl_header);
  curl_easy_setopt (easy, CURLOPT_HEADERDATA, transfer);
  curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, transfer->error_buffer);
  /* Signals would interrupt the whole process for one timeout. */
  curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
  /* libcurl reads 16 KiB at a time unless told; a fast stream then costs
   * six times the receive calls and main-loop rounds that the curl tool
   * (100 KiB reads) makes for the same bytes. 64 KiB keeps the bound on
   * what a paused consumer leaves pending (tests/test-http-client.c). */
  curl_easy_setopt (easy, CURLOPT_BUFFERSIZE, (long) RECEIVE_BUFFER_SIZE);
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
chime_http_curl_transfer_start (GMainContext             *context,
                           const ChimeHttpRequest   *request,
                           const ChimeHttpCallbacks *callbacks,
                           gpointer                  user_data)
{
  ChimeHttpTransfer *transfer;

  g_return_val_if_fail (request != NULL && request->url != NULL, NULL);
  g_return_val_if_fail (callbacks != NULL && callbacks->on_data != NULL && callbacks->on_done != NULL,
                        NULL);

  transfer = g_new0 (ChimeHttpTransfer, 1);
  transfer->client = chime_http_curl_client_get_for_context (context);
  transfer->callbacks = callbacks;
  transfer->user_data = user_data;
  transfer->item.funcs = &item_funcs;
  transfer->item.link.data = &transfer->item;
  /* @body_length bytes, not a string: copy those and end the copy with a
   * NUL of our own (reading one byte more overran a caller's exact-size
   * buffer). */
  transfer->body = g_malloc (request->body_length + 1);
  if (request->body_length > 0)
    memcpy (transfer->body, request->body, request->body_length);
  transfer->body[request->body_length] = '\0';
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
      g_source_attach (transfer->watchdog, chime_http_client_get_context (transfer->client));
    }
  chime_http_count_start ();
  queue_op (transfer, OP_START);
  return transfer;
}

void
chime_http_curl_transfer_resume (ChimeHttpTransfer *transfer)
{
  g_return_if_fail (transfer != NULL);

  if (transfer->paused && !transfer->done)
    queue_op (transfer, OP_RESUME);
}

void
chime_http_curl_transfer_cancel (ChimeHttpTransfer *transfer)
{
  g_return_if_fail (transfer != NULL);

  abort_transfer (transfer, g_error_new_literal (CHIME_HTTP_CURL_ERROR, CHIME_HTTP_ERROR_CANCELLED,
                                                 "the request was cancelled"));
}

guint
chime_http_curl_transfer_get_status (ChimeHttpTransfer *transfer)
{
  return transfer->status;
}

const char *
chime_http_curl_transfer_get_header (ChimeHttpTransfer *transfer,
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
