/* Messages between chime and a handler's host process: length-prefixed
 * JSON frames on a socket. The host's stdout and stderr stay the plugin's
 * (a plugin that prints must not corrupt the protocol), so the frames go
 * on a socket of their own, fd 3 in the host. Reads are bounded in size
 * and, on chime's side, in time: a host that hangs is found out. */
#include "config.h"

#include "host-frames.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

G_DEFINE_QUARK (chime-frame-error-quark, chime_frame_error)

static gboolean
write_all (int          fd,
           const char  *data,
           gsize        length,
           GError     **error)
{
  while (length > 0)
    {
      /* send(), not write(): a host that died must not SIGPIPE chime. */
      gssize n = send (fd, data, length, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, CHIME_FRAME_ERROR,
                       saved == EPIPE ? CHIME_FRAME_CLOSED : CHIME_FRAME_IO,
                       "cannot write to the host: %s", g_strerror (saved));
          return FALSE;
        }
      data += n;
      length -= (gsize) n;
    }
  return TRUE;
}

static int
append_text (const char *text,
             size_t      size,
             void       *data)
{
  g_string_append_len (data, text, (gssize) size);
  return 0;
}

gsize
chime_frame_begin (GString *out)
{
  gsize at = out->len;

  /* The length goes before the text once it is known. */
  g_string_append_len (out, "\0\0\0\0", 4);
  return at;
}

gboolean
chime_frame_end (GString *out,
                 gsize    at,
                 GError **error)
{
  gsize length = out->len - at - 4;

  if (length > CHIME_FRAME_MAX)
    {
      g_string_truncate (out, at);
      g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN,
                   "a message for the host is over %d bytes", CHIME_FRAME_MAX);
      return FALSE;
    }
  out->str[at] = (char) (length & 0xff);
  out->str[at + 1] = (char) ((length >> 8) & 0xff);
  out->str[at + 2] = (char) ((length >> 16) & 0xff);
  out->str[at + 3] = (char) ((length >> 24) & 0xff);
  return TRUE;
}

gboolean
chime_frame_append (GString *out,
                    json_t  *message,
                    GError **error)
{
  gsize at = chime_frame_begin (out);

  if (json_dump_callback (message, append_text, out, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
    {
      g_string_truncate (out, at);
      g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN, "a message for the host is not JSON");
      return FALSE;
    }
  return chime_frame_end (out, at, error);
}

gsize
chime_frame_read_seq (const char *text,
                      gsize       length,
                      guint64    *seq)
{
  static const char prefix[] = "{\"seq\":";
  gsize start = sizeof prefix - 1;
  gsize i = start;
  guint64 value = 0;

  if (length <= start || memcmp (text, prefix, start) != 0)
    return 0;
  /* At most 18 digits, so that the value fits a json_int_t as jansson
   * reads it; no leading zero, which JSON has not either. */
  while (i < length && g_ascii_isdigit (text[i]) && i - start < 18)
    value = value * 10 + (guint64) (text[i++] - '0');
  if (i == start || (i < length && g_ascii_isdigit (text[i])) || (text[start] == '0' && i - start > 1))
    return 0;
  *seq = value;
  return i;
}

gboolean
chime_frame_flush (int      fd,
                   GString *out,
                   GError **error)
{
  gboolean ok = write_all (fd, out->str, out->len, error);

  g_string_truncate (out, 0);
  return ok;
}

gboolean
chime_frame_write (int      fd,
                   json_t  *message,
                   GError **error)
{
  g_autoptr (GString) frame = g_string_sized_new (256);

  return chime_frame_append (frame, message, error) && chime_frame_flush (fd, frame, error);
}

/* Waits for @fd to be readable until @deadline (0: for ever). */
static gboolean
wait_readable (int      fd,
               gint64   deadline,
               GError **error)
{
  for (;;)
    {
      struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
      int timeout_ms = -1;
      int n;

      if (deadline > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          timeout_ms = left <= 0 ? 0 : (int) MIN ((left + 999) / 1000, G_MAXINT);
        }
      n = poll (&poll_fd, 1, timeout_ms);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_IO, "cannot wait for the host: %s",
                       g_strerror (errno));
          return FALSE;
        }
      if (n == 0)
        {
          g_set_error_literal (error, CHIME_FRAME_ERROR, CHIME_FRAME_TIMED_OUT, "the host did not answer in time");
          return FALSE;
        }
      return TRUE;
    }
}

struct _ChimeFrameReader {
  int         fd;
  GByteArray *buffer;   /* read; taken up to `start` */
  guint       start;    /* frames are taken by moving this, not the bytes */
};

ChimeFrameReader *
chime_frame_reader_new (int fd)
{
  ChimeFrameReader *reader = g_new0 (ChimeFrameReader, 1);

  reader->fd = fd;
  reader->buffer = g_byte_array_new ();
  return reader;
}

void
chime_frame_reader_free (ChimeFrameReader *reader)
{
  if (reader == NULL)
    return;
  g_byte_array_unref (reader->buffer);
  g_free (reader);
}

/* The length of the frame at the start of the buffer, if its header is in. */
static gboolean
frame_length (ChimeFrameReader *reader,
              guint32          *length)
{
  const guint8 *data = reader->buffer->data + reader->start;

  if (reader->buffer->len - reader->start < 4)
    return FALSE;
  *length = (guint32) data[0] | (guint32) data[1] << 8 | (guint32) data[2] << 16 | (guint32) data[3] << 24;
  return TRUE;
}

gboolean
chime_frame_reader_has_frame (ChimeFrameReader *reader)
{
  guint32 length;

  return frame_length (reader, &length) && reader->buffer->len - reader->start >= 4 + (gsize) length;
}

/* Reads what is there (at least a byte), up to 64 KiB. */
static gboolean
fill (ChimeFrameReader *reader,
      gint64            deadline,
      GError          **error)
{
  guint8 chunk[64 * 1024];

  for (;;)
    {
      gssize n;

      if (!wait_readable (reader->fd, deadline, error))
        return FALSE;
      n = read (reader->fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != ECONNRESET)
        {
          g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_IO, "cannot read from the other side: %s",
                       g_strerror (errno));
          return FALSE;
        }
      if (n <= 0)
        {
          g_set_error_literal (error, CHIME_FRAME_ERROR, CHIME_FRAME_CLOSED, "the other side went away");
          return FALSE;
        }
      /* What was taken goes now, once per read rather than per frame. */
      g_byte_array_remove_range (reader->buffer, 0, reader->start);
      reader->start = 0;
      g_byte_array_append (reader->buffer, chunk, (guint) n);
      return TRUE;
    }
}

const char *
chime_frame_reader_read_text (ChimeFrameReader *reader,
                              gint64            deadline,
                              gsize            *length,
                              GError          **error)
{
  guint32 size = 0;
  const char *text;

  while (!chime_frame_reader_has_frame (reader))
    {
      if (frame_length (reader, &size) && size > CHIME_FRAME_MAX)
        {
          g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN,
                       "a frame of %u bytes, over the limit of %d", size, CHIME_FRAME_MAX);
          return NULL;
        }
      if (!fill (reader, deadline, error))
        return NULL;
    }
  frame_length (reader, &size);
  text = (const char *) reader->buffer->data + reader->start + 4;
  reader->start += 4 + size;
  *length = size;
  return text;
}

json_t *
chime_frame_parse (const char *text,
                   gsize       length,
                   GError    **error)
{
  json_t *message = json_loadb (text, length, JSON_DECODE_ANY, NULL);

  if (message == NULL)
    g_set_error_literal (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN, "a frame that is not JSON");
  return message;
}

json_t *
chime_frame_reader_read (ChimeFrameReader *reader,
                         gint64            deadline,
                         GError          **error)
{
  gsize length;
  const char *text = chime_frame_reader_read_text (reader, deadline, &length, error);

  return text != NULL ? chime_frame_parse (text, length, error) : NULL;
}
