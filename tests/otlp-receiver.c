/* The loopback OTLP/HTTP receiver of the otlp tests (see
 * otlp-receiver.h): one thread accepting connections on 127.0.0.1 and
 * answering their requests one after another, HTTP/1.1 with keep-alive
 * as libcurl speaks it, every read bounded. */
#include "otlp-receiver.h"

#include "otlp-decode.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

/* A request larger than this is a bug of the exporter under test. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

#define MAX_BODY (64 * 1024 * 1024)
#define MAX_HEAD (64 * 1024)

typedef struct {
  guint  status;
  char  *headers;
  char  *body;
} Answer;

struct _OtlpReceiver {
  GSocketListener *listener;
  GCancellable    *cancellable;
  GThread         *thread;
  char            *url;
  char            *save_dir;
  GMutex           lock;
  GCond            changed;
  /* Guarded by lock. */
  GQueue           script;        /* Answer */
  json_t          *requests;
  guint            n_spans;
  gboolean         held;
  gboolean         keep_bodies;
};

static void
answer_free (gpointer data)
{
  Answer *answer = data;

  g_free (answer->headers);
  g_free (answer->body);
  g_free (answer);
}

/* Reads the head of a request up to its blank line; NULL when the
 * connection ends first (keep-alive's normal end). */
static char *
read_head (GDataInputStream *in,
           GCancellable     *cancellable)
{
  g_autoptr (GString) head = g_string_new (NULL);

  for (;;)
    {
      gsize length;
      g_autofree char *line = g_data_input_stream_read_line (in, &length, cancellable, NULL);

      if (line == NULL || head->len > MAX_HEAD)
        return NULL;
      if (length > 0 && line[length - 1] == '\r')
        line[--length] = '\0';
      if (length == 0)
        return head->len > 0 ? g_string_free (g_steal_pointer (&head), FALSE) : NULL;
      g_string_append_printf (head, "%s\n", line);
    }
}

static json_t *
parse_headers (const char *head)
{
  g_auto (GStrv) lines = g_strsplit (head, "\n", -1);
  json_t *headers = json_object ();

  for (guint i = 1; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      g_autofree char *name = NULL;

      if (colon == NULL)
        continue;
      name = g_ascii_strdown (lines[i], colon - lines[i]);
      json_object_set_new (headers, name, json_string (g_strstrip (colon + 1)));
    }
  return headers;
}

static GBytes *
gunzip (GBytes *body)
{
  g_autoptr (GZlibDecompressor) decompressor = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr (GInputStream) packed = g_memory_input_stream_new_from_bytes (body);
  g_autoptr (GInputStream) plain = g_converter_input_stream_new (packed, G_CONVERTER (decompressor));
  g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();

  if (g_output_stream_splice (out, plain, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL) < 0)
    return NULL;
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* The request's record: its headers, and its spans decoded. */
static json_t *
decode (OtlpReceiver *self,
        json_t       *headers,
        GBytes       *raw,
        guint         n)
{
  const char *type = json_string_value (json_object_get (headers, "content-type"));
  const char *encoding = json_string_value (json_object_get (headers, "content-encoding"));
  g_autoptr (GBytes) body = g_strcmp0 (encoding, "gzip") == 0 ? gunzip (raw) : g_bytes_ref (raw);
  g_autoptr (GError) error = NULL;
  g_autofree char *name = g_strdup_printf ("request-%u.bin", n);
  g_autofree char *path = g_build_filename (self->save_dir, name, NULL);
  json_t *record = NULL;

  if (body != NULL && self->keep_bodies)
    g_file_set_contents (path, g_bytes_get_data (body, NULL), g_bytes_get_size (body), NULL);
  if (body == NULL)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not gzip");
  else if (g_strcmp0 (type, "application/x-protobuf") == 0)
    record = otlp_decode_protobuf_request (body, &error);
  else if (g_strcmp0 (type, "application/json") == 0)
    record = otlp_decode_json_request (body, &error);
  else
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "unknown Content-Type %s", type);
  if (record == NULL)
    record = json_pack ("{s:{}, s:{}, s:[], s:[s]}", "resource", "scope", "spans", "problems", error->message);
  json_object_set (record, "headers", headers);
  json_object_set_new (record, "content_type", json_string (type != NULL ? type : ""));
  json_object_set_new (record, "content_encoding", json_string (encoding != NULL ? encoding : ""));
  json_object_set (record, "user_agent", json_object_get (headers, "user-agent"));
  json_object_set (record, "path", json_object_get (headers, ":path"));
  json_object_set_new (record, "body_path", json_string (path));
  return record;
}

static void
respond (GOutputStream *out,
         const Answer  *answer,
         gboolean       json)
{
  const char *body = answer->body != NULL ? answer->body : json ? "{}" : "";
  g_autofree char *head = g_strdup_printf ("HTTP/1.1 %u Scripted\r\nContent-Type: %s\r\n"
                                           "Content-Length: %" G_GSIZE_FORMAT "\r\n%s%s\r\n",
                                           answer->status, json ? "application/json" : "application/x-protobuf",
                                           strlen (body), answer->headers != NULL ? answer->headers : "",
                                           answer->headers != NULL ? "\r\n" : "");

  g_output_stream_write_all (out, head, strlen (head), NULL, NULL, NULL);
  g_output_stream_write_all (out, body, strlen (body), NULL, NULL, NULL);
  g_output_stream_flush (out, NULL, NULL);
}

/* One request of a connection; FALSE when the connection is over. */
static gboolean
serve_request (OtlpReceiver     *self,
               GDataInputStream *in,
               GOutputStream    *out)
{
  g_autofree char *head = read_head (in, self->cancellable);
  g_autoptr (json_t) headers = NULL;
  g_autoptr (GBytes) body = NULL;
  const char *expect, *type;
  guint64 length = 0;
  gsize got;
  guint8 *buffer;
  Answer fallback = { 200, NULL, NULL }, *answer;
  json_t *record;

  if (head == NULL)
    return FALSE;
  headers = parse_headers (head);
  {
    /* "POST /v1/traces HTTP/1.1" */
    g_auto (GStrv) words = g_strsplit (head, " ", 3);

    json_object_set_new (headers, ":path", json_string (words[1] != NULL ? words[1] : ""));
  }
  if (!g_ascii_string_to_unsigned (json_string_value (json_object_get (headers, "content-length")), 10, 0,
                                   MAX_BODY, &length, NULL))
    return FALSE;
  expect = json_string_value (json_object_get (headers, "expect"));
  if (expect != NULL && g_ascii_strcasecmp (expect, "100-continue") == 0)
    g_output_stream_write_all (out, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, NULL, NULL);
  buffer = g_malloc (MAX (length, 1));
  if (!g_input_stream_read_all (G_INPUT_STREAM (in), buffer, length, &got, self->cancellable, NULL) || got != length)
    {
      g_free (buffer);
      return FALSE;
    }
  body = g_bytes_new_take (buffer, length);
  type = json_string_value (json_object_get (headers, "content-type"));

  g_mutex_lock (&self->lock);
  record = decode (self, headers, body, json_array_size (self->requests));
  answer = g_queue_pop_head (&self->script);
  json_object_set_new (record, "status", json_integer (answer != NULL ? answer->status : 200));
  json_array_append_new (self->requests, record);
  if ((answer == NULL || answer->status / 100 == 2))
    self->n_spans += json_array_size (json_object_get (record, "spans"));
  g_cond_broadcast (&self->changed);
  while (self->held)
    g_cond_wait (&self->changed, &self->lock);
  g_mutex_unlock (&self->lock);

  respond (out, answer != NULL ? answer : &fallback, g_strcmp0 (type, "application/json") == 0);
  if (answer != NULL)
    answer_free (answer);
  return TRUE;
}

static gpointer
serve (gpointer data)
{
  OtlpReceiver *self = data;

  for (;;)
    {
      g_autoptr (GSocketConnection) connection =
        g_socket_listener_accept (self->listener, NULL, self->cancellable, NULL);
      g_autoptr (GDataInputStream) in = NULL;

      if (connection == NULL)
        return NULL;
      in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
      g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (in), 64 * 1024);
      while (serve_request (self, in, g_io_stream_get_output_stream (G_IO_STREAM (connection))))
        ;
    }
}

OtlpReceiver *
otlp_receiver_new (void)
{
  OtlpReceiver *self = g_new0 (OtlpReceiver, 1);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  self->listener = g_socket_listener_new ();
  if (!g_socket_listener_add_address (self->listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                      NULL, &bound, &error))
    g_error ("the receiver cannot listen: %s", error->message);
  self->url = g_strdup_printf ("http://127.0.0.1:%u/v1/traces",
                               g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  self->keep_bodies = TRUE;
  self->save_dir = g_dir_make_tmp ("chime-otlp-XXXXXX", NULL);
  self->cancellable = g_cancellable_new ();
  self->requests = json_array ();
  g_mutex_init (&self->lock);
  g_cond_init (&self->changed);
  g_queue_init (&self->script);
  self->thread = g_thread_new ("otlp-receiver", serve, self);
  return self;
}

void
otlp_receiver_free (OtlpReceiver *self)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (self == NULL)
    return;
  otlp_receiver_hold (self, FALSE);
  g_cancellable_cancel (self->cancellable);
  g_thread_join (self->thread);
  g_socket_listener_close (self->listener);
  g_object_unref (self->listener);
  g_object_unref (self->cancellable);
  dir = g_dir_open (self->save_dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (self->save_dir, name, NULL);

      g_unlink (path);
    }
  g_rmdir (self->save_dir);
  g_free (self->save_dir);
  g_queue_clear_full (&self->script, answer_free);
  json_decref (self->requests);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->changed);
  g_free (self->url);
  g_free (self);
}

const char *
otlp_receiver_get_url (OtlpReceiver *self)
{
  return self->url;
}

void
otlp_receiver_script (OtlpReceiver *self,
                      guint         status,
                      const char   *headers,
                      const char   *body)
{
  Answer *answer = g_new0 (Answer, 1);

  answer->status = status;
  answer->headers = g_strdup (headers);
  answer->body = g_strdup (body);
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->script, answer);
  g_mutex_unlock (&self->lock);
}

void
otlp_receiver_keep_bodies (OtlpReceiver *self,
                           gboolean      keep)
{
  g_mutex_lock (&self->lock);
  self->keep_bodies = keep;
  g_mutex_unlock (&self->lock);
}

void
otlp_receiver_hold (OtlpReceiver *self,
                    gboolean      held)
{
  g_mutex_lock (&self->lock);
  self->held = held;
  g_cond_broadcast (&self->changed);
  g_mutex_unlock (&self->lock);
}

gboolean
otlp_receiver_wait (OtlpReceiver *self,
                    guint         n_spans,
                    guint         timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gboolean arrived;

  g_mutex_lock (&self->lock);
  while (self->n_spans < n_spans && g_cond_wait_until (&self->changed, &self->lock, deadline))
    ;
  arrived = self->n_spans >= n_spans;
  g_mutex_unlock (&self->lock);
  return arrived;
}

json_t *
otlp_receiver_requests (OtlpReceiver *self)
{
  json_t *copy;

  g_mutex_lock (&self->lock);
  copy = json_deep_copy (self->requests);
  g_mutex_unlock (&self->lock);
  return copy;
}

json_t *
otlp_receiver_spans (OtlpReceiver *self)
{
  json_t *spans = json_array ();
  json_t *record;
  size_t i;

  g_mutex_lock (&self->lock);
  json_array_foreach (self->requests, i, record)
    if (json_integer_value (json_object_get (record, "status")) / 100 == 2)
      json_array_extend (spans, json_object_get (record, "spans"));
  g_mutex_unlock (&self->lock);
  return spans;
}

char *
otlp_closed_url (void)
{
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  /* Bound, never listening: connecting is refused, and the port is not
   * given to anyone else while the socket lives... so it is closed last. */
  g_socket_bind (socket, address, FALSE, NULL);
  bound = g_socket_get_local_address (socket, NULL);
  return g_strdup_printf ("http://127.0.0.1:%u/v1/traces",
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
}
