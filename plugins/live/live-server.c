/* The live plugin's HTTP/1.1 responder; see live-server.h. */
#include "live-server.h"

#include <string.h>

/* A request's head larger than this is refused: GET / and GET /events
 * need a line and a few headers. */
#define MAX_REQUEST_HEAD 8192
/* A connection that has not sent its request by then is closed. */
#define REQUEST_TIMEOUT_S 10

typedef struct _LiveClient LiveClient;

struct _LiveServer {
  GSocketService *service;
  GMainContext   *context;
  GBytes         *page;
  LiveSnapshotFunc snapshot;
  gpointer        user_data;
  gsize           max_buffer;
  guint           max_clients;
  guint16         port;
  GList          *clients;    /* LiveClient, every open connection */
  guint           n_clients;
  guint           n_dropped;
};

struct _LiveClient {
  LiveServer        *server;
  GSocketConnection *connection;
  GPollableInputStream  *input;
  GPollableOutputStream *output;
  GSource           *read_source;
  GSource           *write_source;
  GSource           *timeout_source;
  GByteArray        *request;
  GByteArray        *pending;   /* bytes not yet written */
  gboolean           streaming; /* an /events stream */
  gboolean           close_when_written;
};

static void client_close (LiveClient *client);
static void client_flush (LiveClient *client);

/* ------------------------------------------------------------------
 * Writing: never blocks; what the socket does not take waits in
 * `pending` until it is writable.
 * ---------------------------------------------------------------- */

static gboolean
on_writable (GObject  *stream,
             gpointer  data)
{
  LiveClient *client = data;

  g_clear_pointer (&client->write_source, g_source_destroy);
  client_flush (client);
  return G_SOURCE_REMOVE;
}

static void
client_flush (LiveClient *client)
{
  while (client->pending->len > 0)
    {
      g_autoptr (GError) error = NULL;
      gssize written = g_pollable_output_stream_write_nonblocking (client->output, client->pending->data,
                                                                   client->pending->len, NULL, &error);

      if (written < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (client->write_source == NULL)
            {
              client->write_source = g_pollable_output_stream_create_source (client->output, NULL);
              g_source_set_callback (client->write_source, G_SOURCE_FUNC (on_writable), client, NULL);
              g_source_attach (client->write_source, client->server->context);
              g_source_unref (client->write_source);
            }
          return;
        }
      if (written < 0)
        {
          /* The browser went away. */
          client_close (client);
          return;
        }
      g_byte_array_remove_range (client->pending, 0, written);
    }
  if (client->close_when_written)
    client_close (client);
}

static void
client_send (LiveClient *client,
             const char *bytes,
             gsize       length)
{
  g_byte_array_append (client->pending, (const guint8 *) bytes, length);
  if (client->write_source == NULL)
    client_flush (client);
}

/* ------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------- */

static void
client_close (LiveClient *client)
{
  LiveServer *server = client->server;

  if (client->read_source != NULL)
    g_source_destroy (client->read_source);
  if (client->write_source != NULL)
    g_source_destroy (client->write_source);
  if (client->timeout_source != NULL)
    g_source_destroy (client->timeout_source);
  g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);
  g_object_unref (client->connection);
  g_byte_array_unref (client->request);
  g_byte_array_unref (client->pending);
  server->clients = g_list_remove (server->clients, client);
  server->n_clients--;
  g_free (client);
}

static void
respond (LiveClient *client,
         const char *status,
         const char *content_type,
         const char *body,
         gsize       length)
{
  g_autofree char *head = g_strdup_printf ("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n"
                                           "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                                           status, content_type, length);

  /* Queued whole before the first write: a write that finishes (or
   * fails) closes the connection, and must not cut the response. */
  g_byte_array_append (client->pending, (const guint8 *) head, strlen (head));
  g_byte_array_append (client->pending, (const guint8 *) body, length);
  client->close_when_written = TRUE;
  if (client->write_source == NULL)
    client_flush (client);
}

static void
respond_text (LiveClient *client,
              const char *status,
              const char *text)
{
  respond (client, status, "text/plain; charset=utf-8", text, strlen (text));
}

static void
start_stream (LiveClient *client)
{
  static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\nretry: 1000\n\n";
  g_autofree char *snapshot = client->server->snapshot (client->server->user_data);
  g_autofree char *start = g_strdup_printf ("%sdata: %s\n\n", head, snapshot);

  client->streaming = TRUE;
  client_send (client, start, strlen (start));
}

/* Answers the request line @line ("GET /events HTTP/1.1"). */
static void
route (LiveClient *client,
       const char *line)
{
  g_auto (GStrv) parts = g_strsplit (line, " ", 3);
  const char *path;

  if (g_strv_length (parts) != 3 || !g_str_has_prefix (parts[2], "HTTP/1."))
    {
      respond_text (client, "400 Bad Request", "not an HTTP/1.1 request\n");
      return;
    }
  if (!g_str_equal (parts[0], "GET"))
    {
      respond_text (client, "405 Method Not Allowed", "only GET / and GET /events\n");
      return;
    }
  /* The query string is of no use here, and must not make a 404. */
  path = parts[1];
  parts[1][strcspn (parts[1], "?#")] = '\0';
  if (g_str_equal (path, "/") || g_str_equal (path, "/index.html"))
    {
      gsize length;
      const char *body = g_bytes_get_data (client->server->page, &length);

      respond (client, "200 OK", "text/html; charset=utf-8", body, length);
    }
  else if (g_str_equal (path, "/events"))
    start_stream (client);
  else
    respond_text (client, "404 Not Found", "the live view has / and /events\n");
}

static gboolean
on_readable (GObject  *stream,
             gpointer  data)
{
  LiveClient *client = data;
  guint8 buffer[2048];
  g_autoptr (GError) error = NULL;
  gssize n = g_pollable_input_stream_read_nonblocking (client->input, buffer, sizeof buffer, NULL, &error);
  const char *end;

  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      /* The browser closed the connection (or it failed). */
      client->read_source = NULL;
      client_close (client);
      return G_SOURCE_REMOVE;
    }
  if (client->streaming || client->close_when_written)
    return G_SOURCE_CONTINUE;   /* nothing more is read after the request */
  g_byte_array_append (client->request, buffer, n);
  g_byte_array_append (client->request, (const guint8 *) "", 1);
  end = strstr ((const char *) client->request->data, "\r\n\r\n");
  g_byte_array_set_size (client->request, client->request->len - 1);
  if (end == NULL && client->request->len < MAX_REQUEST_HEAD)
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&client->timeout_source, g_source_destroy);
  if (end == NULL)
    {
      respond_text (client, "431 Request Header Fields Too Large", "request head too large\n");
      return G_SOURCE_CONTINUE;
    }
  {
    const char *head = (const char *) client->request->data;
    g_autofree char *line = g_strndup (head, strcspn (head, "\r\n"));

    route (client, line);
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_request_timeout (gpointer data)
{
  LiveClient *client = data;

  client->timeout_source = NULL;
  client_close (client);
  return G_SOURCE_REMOVE;
}

static gboolean
on_incoming (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source_object,
             gpointer           data)
{
  LiveServer *server = data;
  LiveClient *client = g_new0 (LiveClient, 1);

  client->server = server;
  client->connection = g_object_ref (connection);
  client->input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  client->output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (connection)));
  client->request = g_byte_array_new ();
  client->pending = g_byte_array_new ();
  server->clients = g_list_prepend (server->clients, client);
  server->n_clients++;
  if (server->n_clients > server->max_clients)
    {
      respond_text (client, "503 Service Unavailable", "too many connections to the live view\n");
      return TRUE;
    }
  client->read_source = g_pollable_input_stream_create_source (client->input, NULL);
  g_source_set_callback (client->read_source, G_SOURCE_FUNC (on_readable), client, NULL);
  g_source_attach (client->read_source, server->context);
  g_source_unref (client->read_source);
  client->timeout_source = g_timeout_source_new_seconds (REQUEST_TIMEOUT_S);
  g_source_set_callback (client->timeout_source, on_request_timeout, client, NULL);
  g_source_attach (client->timeout_source, server->context);
  g_source_unref (client->timeout_source);
  return TRUE;
}

/* ------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------- */

LiveServer *
live_server_new (const LiveServerOptions *options,
                 GError                 **error)
{
  LiveServer *server = g_new0 (LiveServer, 1);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autofree char *where = g_inet_address_to_string (g_inet_socket_address_get_address (options->address));

  server->context = g_main_context_ref (options->context);
  server->page = g_bytes_ref (options->page);
  server->snapshot = options->snapshot;
  server->user_data = options->user_data;
  server->max_buffer = options->max_buffer;
  server->max_clients = options->max_clients;
  /* The service's sources go to the thread-default context when it is
   * created and started: make that the handler's. */
  g_main_context_push_thread_default (server->context);
  server->service = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (server->service), G_SOCKET_ADDRESS (options->address),
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound, error))
    {
      g_main_context_pop_thread_default (server->context);
      g_prefix_error (error, "cannot listen on %s:%u: ", where, g_inet_socket_address_get_port (options->address));
      live_server_free (server);
      return NULL;
    }
  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_signal_connect (server->service, "incoming", G_CALLBACK (on_incoming), server);
  g_socket_service_start (server->service);
  g_main_context_pop_thread_default (server->context);
  return server;
}

void
live_server_free (LiveServer *server)
{
  static const char end[] = "event: end\ndata: {}\n\n";

  while (server->clients != NULL)
    {
      LiveClient *client = server->clients->data;

      /* A last word, if the socket takes it now; then the stream ends. */
      if (client->streaming && client->pending->len == 0)
        g_pollable_output_stream_write_nonblocking (client->output, end, sizeof end - 1, NULL, NULL);
      client_close (client);
    }
  if (server->service != NULL)
    {
      g_socket_service_stop (server->service);
      g_socket_listener_close (G_SOCKET_LISTENER (server->service));
      g_object_unref (server->service);
    }
  g_bytes_unref (server->page);
  g_main_context_unref (server->context);
  g_free (server);
}

guint16
live_server_get_port (LiveServer *server)
{
  return server->port;
}

guint
live_server_get_n_dropped (LiveServer *server)
{
  return server->n_dropped;
}

void
live_server_broadcast (LiveServer *server,
                       const char *json_line)
{
  g_autofree char *event = g_strdup_printf ("data: %s\n\n", json_line);
  gsize length = strlen (event);
  GList *next;

  for (GList *link = server->clients; link != NULL; link = next)
    {
      LiveClient *client = link->data;

      next = link->next;
      if (!client->streaming)
        continue;
      /* One message always fits an empty buffer; beyond that, a browser
       * this far behind is let go rather than waited for. */
      if (client->pending->len > 0 && client->pending->len + length > server->max_buffer)
        {
          server->n_dropped++;
          client_close (client);
          continue;
        }
      client_send (client, event, length);
    }
}
