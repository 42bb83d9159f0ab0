/* Writing what a program produces (the runner's result, the usage
 * report) into a file a user names, the way a shell redirection would:
 * into the named file. g_file_set_contents() renames a new file onto the
 * name whatever it is, so a symlink was replaced instead of followed and,
 * as root, /dev/null became a regular file. Here a regular file (or a
 * new one) is still replaced atomically, so a reader never sees half of
 * it, but only after following symlinks; a FIFO, a device or a socket is
 * written to as it is. */
#include "config.h"

#include "config-private.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixoutputstream.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Linux's own limit on symlinks followed in one lookup (ELOOP beyond). */
#define MAX_LINKS_FOLLOWED 40

/* @path with every symlink along the chain followed, also when the last
 * one points at a file that does not exist yet (realpath() fails there):
 * that file is the one to create. */
static char *
follow_links (const char  *path,
              GError     **error)
{
  g_autofree char *current = g_strdup (path);

  for (guint i = 0; i < MAX_LINKS_FOLLOWED; i++)
    {
      struct stat info;
      g_autofree char *target = NULL;

      if (lstat (current, &info) != 0 || !S_ISLNK (info.st_mode))
        return g_steal_pointer (&current);
      target = g_file_read_link (current, error);
      if (target == NULL)
        return NULL;
      if (!g_path_is_absolute (target))
        {
          g_autofree char *folder = g_path_get_dirname (current);
          g_autofree char *joined = g_build_filename (folder, target, NULL);

          g_free (target);
          target = g_steal_pointer (&joined);
        }
      g_free (current);
      current = g_steal_pointer (&target);
    }
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_LOOP,
               "cannot write %s: more than %d symbolic links to follow", path, MAX_LINKS_FOLLOWED);
  return NULL;
}

/* Why @file (the symlinks followed from @path) cannot be created: a
 * missing folder is named, so the fix is plain. */
static void
set_open_error (const char *path,
                const char *file,
                int         saved_errno,
                GError    **error)
{
  g_autofree char *folder = g_path_get_dirname (file);

  if (saved_errno == ENOENT && !g_file_test (folder, G_FILE_TEST_IS_DIR))
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                 "cannot write %s: the folder %s does not exist (create it first)", path, folder);
  else
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                 "cannot write %s: %s", path, g_strerror (saved_errno));
}

/* A new file beside @file, renamed onto it when the stream is closed
 * (GLib's replace stream; with one name and no symlink left it takes
 * that path). */
static GOutputStream *
open_replacing (const char *path,
                const char *file,
                GError    **error)
{
  g_autoptr (GFile) target = g_file_new_for_path (file);
  g_autoptr (GError) local_error = NULL;
  GFileOutputStream *stream;
  g_autofree char *folder = g_path_get_dirname (file);

  /* Checked first: GIO's message would name its temporary file. */
  if (!g_file_test (folder, G_FILE_TEST_IS_DIR))
    {
      set_open_error (path, file, ENOENT, error);
      return NULL;
    }
  stream = g_file_replace (target, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &local_error);
  if (stream == NULL)
    {
      g_set_error (error, G_FILE_ERROR,
                   g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
                     ? G_FILE_ERROR_ACCES : G_FILE_ERROR_FAILED,
                   "cannot write %s: %s", path, local_error->message);
      return NULL;
    }
  return G_OUTPUT_STREAM (stream);
}

GOutputStream *
chime_file_open_output (const char *path,
                        GError    **error)
{
  g_autofree char *file = NULL;
  struct stat info;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);

  file = follow_links (path, error);
  if (file == NULL)
    return NULL;
  if (stat (file, &info) != 0)
    {
      if (errno == ENOENT)
        return open_replacing (path, file, error);
      set_open_error (path, file, errno, error);
      return NULL;
    }
  if (S_ISREG (info.st_mode))
    return open_replacing (path, file, error);
  if (S_ISDIR (info.st_mode))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR,
                   "cannot write %s: it is a directory; name a file", path);
      return NULL;
    }
  /* A FIFO, a device, a socket: written to as is, like `> PATH`. A FIFO
   * waits here for its reader, as the shell's redirection does. */
  fd = open (file, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      set_open_error (path, file, errno, error);
      return NULL;
    }
  return g_unix_output_stream_new (fd, TRUE);
}

void
chime_file_output_abandon (GOutputStream *stream)
{
  g_autoptr (GCancellable) cancelled = g_cancellable_new ();

  g_return_if_fail (G_IS_OUTPUT_STREAM (stream));

  /* A replace stream closed while cancelled removes its new file and
   * leaves the old one as it was. */
  g_cancellable_cancel (cancelled);
  g_output_stream_close (stream, cancelled, NULL);
}

gboolean
chime_file_set_contents (const char *path,
                         const char *contents,
                         gssize      length,
                         GError    **error)
{
  g_autoptr (GOutputStream) stream = NULL;
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (contents != NULL || length == 0, FALSE);

  stream = chime_file_open_output (path, error);
  if (stream == NULL)
    return FALSE;
  if (length < 0)
    length = strlen (contents);
  if (!g_output_stream_write_all (stream, contents, length, NULL, NULL, &local_error) ||
      !g_output_stream_close (stream, NULL, &local_error))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "cannot write %s: %s", path, local_error->message);
      chime_file_output_abandon (stream);
      return FALSE;
    }
  return TRUE;
}
