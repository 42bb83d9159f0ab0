/* Reading a file a configuration names (the INI file itself, a prompt
 * file, an API key file) whole, with a bound: only regular files, and at
 * most a given size. g_file_get_contents() reads a FIFO, a device or a
 * file that grows until memory runs out, and blocks in open() on a FIFO
 * without a writer, where no signal handler can end the wait. */
#include "config.h"

#include "config-private.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a file that is not a regular file is, for a message. */
static const char *
describe_file_type (mode_t mode)
{
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISFIFO (mode))
    return "a FIFO (named pipe)";
  if (S_ISCHR (mode))
    return "a character device";
  if (S_ISBLK (mode))
    return "a block device";
  if (S_ISSOCK (mode))
    return "a socket";
  return "not a regular file";
}

const char *
chime_file_describe_type (const char *path)
{
  struct stat info;

  if (stat (path, &info) != 0 || S_ISREG (info.st_mode))
    return NULL;
  return describe_file_type (info.st_mode);
}

static gboolean
check_regular (const char        *path,
               const struct stat *info,
               GError           **error)
{
  if (S_ISREG (info->st_mode))
    return TRUE;
  g_set_error (error, G_FILE_ERROR, S_ISDIR (info->st_mode) ? G_FILE_ERROR_ISDIR : G_FILE_ERROR_INVAL,
               "%s is %s, not a regular file", path, describe_file_type (info->st_mode));
  return FALSE;
}

/* "1 MiB", "16 KiB", "100 bytes": exact, as the limits are documented
 * (g_format_size() rounds, and puts a no-break space before the unit). */
static char *
format_limit (gsize size)
{
  if (size >= 1024 * 1024 && size % (1024 * 1024) == 0)
    return g_strdup_printf ("%" G_GSIZE_FORMAT " MiB", size / (1024 * 1024));
  if (size >= 1024 && size % 1024 == 0)
    return g_strdup_printf ("%" G_GSIZE_FORMAT " KiB", size / 1024);
  return g_strdup_printf ("%" G_GSIZE_FORMAT " bytes", size);
}

static void
set_too_large (const char *path,
               gsize       max_size,
               GError    **error)
{
  g_autofree char *limit = format_limit (max_size);

  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
               "%s is larger than %s, the most chime reads from it", path, limit);
}

/* "PATH: No such file or directory": callers say what they were reading. */
static void
set_from_errno (const char *path,
                int         saved_errno,
                GError    **error)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               "%s: %s", path, g_strerror (saved_errno));
}

/* Reads @fd to its end, failing once more than @max_size bytes came:
 * st_size is only a hint (a file may grow while it is read). */
static GByteArray *
read_bounded (int         fd,
              const char *path,
              gsize       size_hint,
              gsize       max_size,
              GError    **error)
{
  g_autoptr (GByteArray) bytes = g_byte_array_sized_new (MIN (size_hint, max_size) + 1);
  guint8 buffer[8192];

  for (;;)
    {
      gsize room = MIN (sizeof buffer, max_size + 1 - bytes->len);
      gssize n = read (fd, buffer, room);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          set_from_errno (path, errno, error);
          return NULL;
        }
      if (n == 0)
        return g_steal_pointer (&bytes);
      g_byte_array_append (bytes, buffer, n);
      if (bytes->len > max_size)
        {
          set_too_large (path, max_size, error);
          return NULL;
        }
    }
}

gboolean
chime_file_get_contents (const char *path,
                         gsize       max_size,
                         char      **contents,
                         gsize      *length,
                         GError    **error)
{
  struct stat info;
  GByteArray *bytes;
  int fd;

  g_return_val_if_fail (path != NULL && contents != NULL, FALSE);
  g_return_val_if_fail (max_size < G_MAXSIZE - 1, FALSE);

  /* Refused before it is opened: opening a device may do something. */
  if (stat (path, &info) != 0)
    {
      set_from_errno (path, errno, error);
      return FALSE;
    }
  if (!check_regular (path, &info, error))
    return FALSE;
  /* O_NONBLOCK: should the path have become a FIFO since, open() does
   * not wait for a writer; fstat() then refuses it. */
  fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      set_from_errno (path, errno, error);
      return FALSE;
    }
  if (fstat (fd, &info) != 0)
    {
      set_from_errno (path, errno, error);
      close (fd);
      return FALSE;
    }
  if (!check_regular (path, &info, error))
    {
      close (fd);
      return FALSE;
    }
  if ((guint64) info.st_size > max_size)
    {
      set_too_large (path, max_size, error);
      close (fd);
      return FALSE;
    }
  bytes = read_bounded (fd, path, info.st_size, max_size, error);
  close (fd);
  if (bytes == NULL)
    return FALSE;
  if (length != NULL)
    *length = bytes->len;
  g_byte_array_append (bytes, (const guint8 *) "", 1);
  *contents = (char *) g_byte_array_free (bytes, FALSE);
  return TRUE;
}
