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

gboolean
chime_frame_write (int      fd,
                   json_t  *message,
                   GError **error)
{
  g_autofree char *text = json_dumps (message, JSON_COMPACT | JSON_ENCODE_ANY);
  gsize length = text != NULL ? strlen (text) : 0;
  guint8 header[4];

  if (text == NULL || length > CHIME_FRAME_MAX)
    {
      g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN,
                   "a message for the host is not JSON or is over %d bytes", CHIME_FRAME_MAX);
      return FALSE;
    }
  header[0] = length & 0xff;
  header[1] = (length >> 8) & 0xff;
  header[2] = (length >> 16) & 0xff;
  header[3] = (length >> 24) & 0xff;
  return write_all (fd, (const char *) header, sizeof header, error) &&
         write_all (fd, text, length, error);
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

static gboolean
read_all (int      fd,
          char    *data,
          gsize    length,
          gint64   deadline,
          GError **error)
{
  while (length > 0)
    {
      gssize n;

      if (!wait_readable (fd, deadline, error))
        return FALSE;
      n = read (fd, data, length);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != ECONNRESET)
        {
          g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_IO, "cannot read from the host: %s",
                       g_strerror (errno));
          return FALSE;
        }
      if (n <= 0)
        {
          g_set_error_literal (error, CHIME_FRAME_ERROR, CHIME_FRAME_CLOSED, "the host went away");
          return FALSE;
        }
      data += n;
      length -= (gsize) n;
    }
  return TRUE;
}

json_t *
chime_frame_read (int      fd,
                  gint64   deadline,
                  GError **error)
{
  guint8 header[4];
  guint32 length;
  g_autofree char *text = NULL;
  json_t *message;

  if (!read_all (fd, (char *) header, sizeof header, deadline, error))
    return NULL;
  length = (guint32) header[0] | (guint32) header[1] << 8 | (guint32) header[2] << 16 | (guint32) header[3] << 24;
  if (length > CHIME_FRAME_MAX)
    {
      g_set_error (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN,
                   "the host sent a frame of %u bytes, over the limit of %d", length, CHIME_FRAME_MAX);
      return NULL;
    }
  text = g_malloc (length + 1);
  if (!read_all (fd, text, length, deadline, error))
    return NULL;
  message = json_loadb (text, length, JSON_DECODE_ANY, NULL);
  if (message == NULL)
    g_set_error_literal (error, CHIME_FRAME_ERROR, CHIME_FRAME_BROKEN, "the host sent a frame that is not JSON");
  return message;
}
