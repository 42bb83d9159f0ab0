/* chime run --stream: the output stream on stdout. */
#include "config.h"

#include "stream-printer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct _CliStreamPrinter {
  gboolean at_line_start;
  int      write_errno;   /* the first failed write's; 0: none */
};

CliStreamPrinter *
cli_stream_printer_new (void)
{
  CliStreamPrinter *printer = g_new0 (CliStreamPrinter, 1);

  printer->at_line_start = TRUE;
  return printer;
}

void
cli_stream_printer_free (CliStreamPrinter *printer)
{
  g_free (printer);
}

/* Writes @length bytes of @text and flushes; after a failure nothing more
 * is written (the failure is reported once, at the end). */
static void
put (CliStreamPrinter *printer,
     const char       *text,
     gsize             length)
{
  if (printer->write_errno != 0 || length == 0)
    return;
  /* One locked write: handlers printing on stdout never cut into it. */
  flockfile (stdout);
  errno = 0;
  if (fwrite (text, 1, length, stdout) != length || fflush (stdout) != 0)
    {
      printer->write_errno = errno != 0 ? errno : EIO;
      clearerr (stdout);
    }
  funlockfile (stdout);
  printer->at_line_start = text[length - 1] == '\n';
}

void
cli_stream_printer_chunk (json_t  *chunk,
                          gpointer data)
{
  CliStreamPrinter *printer = data;
  g_autofree char *line = NULL;

  if (json_is_string (chunk))
    {
      put (printer, json_string_value (chunk), json_string_length (chunk));
      return;
    }
  /* UTF-8 whatever the locale, as the result line. */
  line = json_dumps (chunk, JSON_COMPACT | JSON_ENCODE_ANY);
  if (line == NULL)
    return;
  if (!printer->at_line_start)
    put (printer, "\n", 1);
  put (printer, line, strlen (line));
  put (printer, "\n", 1);
}

gboolean
cli_stream_printer_finish (CliStreamPrinter *printer,
                           GError          **error)
{
  if (!printer->at_line_start)
    put (printer, "\n", 1);
  if (printer->write_errno == 0)
    return TRUE;
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (printer->write_errno),
               "cannot write the stream to stdout: %s", g_strerror (printer->write_errno));
  return FALSE;
}
