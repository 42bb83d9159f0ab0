/* The status line kept below the text on a shared terminal (see
 * <chime/terminal.h>). The progress plugin used to draw its line with a
 * carriage return over whatever streaming_stdout had written on that
 * line, so the answer was never readable in a terminal. */
#include "config.h"

#include <chime/terminal.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static GMutex lock;
static char *status;           /* the status line, or NULL */
static gsize drawn_width;      /* of the status line on the screen; 0: not drawn */
static gboolean line_open;     /* the last text on stdout did not end its line */

/* stdout and stderr are one terminal (or one character device). */
static gboolean
same_terminal (void)
{
  struct stat out, err;

  return fstat (STDOUT_FILENO, &out) == 0 && fstat (STDERR_FILENO, &err) == 0 &&
         S_ISCHR (out.st_mode) && S_ISCHR (err.st_mode) && out.st_rdev == err.st_rdev;
}

static gboolean
fail_errno (GError    **error,
            const char *stream)
{
  int saved_errno = errno;

  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               "cannot write to %s: %s", stream, g_strerror (saved_errno));
  return FALSE;
}

/* "\r", @text, spaces over what the previous status line had beyond it,
 * and a newline when @final. */
static gboolean
draw_locked (const char *text,
             gboolean    final,
             GError    **error)
{
  g_autoptr (GString) line = g_string_new ("\r");
  gsize width = strlen (text);

  g_string_append (line, text);
  if (width < drawn_width)
    g_string_append_printf (line, "%*s", (int) (drawn_width - width), "");
  if (final)
    g_string_append_c (line, '\n');
  drawn_width = final ? 0 : width;
  if (fputs (line->str, stderr) == EOF || fflush (stderr) != 0)
    {
      clearerr (stderr);
      return fail_errno (error, "stderr");
    }
  return TRUE;
}

/* Blanks the status line, leaving the cursor at its start. */
static void
blank_locked (void)
{
  if (drawn_width == 0)
    return;
  fprintf (stderr, "\r%*s\r", (int) drawn_width, "");
  fflush (stderr);
  drawn_width = 0;
}

gboolean
chime_terminal_write_stdout (const char *text,
                             gsize       length,
                             GError    **error)
{
  g_autoptr (GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new (&lock);
  gboolean shared = status != NULL && same_terminal ();

  if (shared)
    blank_locked ();
  if ((length > 0 && fwrite (text, 1, length, stdout) != length) || fflush (stdout) != 0)
    {
      clearerr (stdout);
      return fail_errno (error, "stdout");
    }
  if (length > 0)
    line_open = text[length - 1] != '\n';
  /* Below a finished line, the status line comes back; its own failure
   * is the status writer's to hear of, at its next draw. */
  if (shared && !line_open)
    draw_locked (status, FALSE, NULL);
  return TRUE;
}

gboolean
chime_terminal_set_status (const char *line,
                           gboolean    final,
                           GError    **error)
{
  g_autoptr (GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new (&lock);
  gboolean ok = TRUE;

  g_return_val_if_fail (line != NULL, FALSE);

  g_free (status);
  status = final ? NULL : g_strdup (line);
  if (line_open && same_terminal ())
    {
      if (!final)
        return TRUE;   /* drawn once the text's line ends */
      /* The last status goes below the text, whose line stays as it is. */
      if (fputc ('\n', stderr) == EOF)
        return fail_errno (error, "stderr");
      line_open = FALSE;
    }
  ok = draw_locked (line, final, error);
  return ok;
}
