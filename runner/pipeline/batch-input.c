/* Reading a batch's inputs. GDataInputStream has no line bound (it grew
 * to 512 MiB on /dev/zero and aborted), and g_file_read() blocks the main
 * thread in open() on a FIFO, and a GFile stream's reads run in a worker
 * thread that cancelling cannot interrupt: a SIGTERM waited for the next
 * input. Here the file is opened in a task that returns at once when
 * cancelled, read through a GUnixInputStream, whose reads of a pipe, FIFO
 * or terminal poll the cancellable too, and cut into lines by hand in a
 * buffer of fixed size. */
#include "config.h"

#include "batch-input.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <gio/gunixinputstream.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for the longest line and its "\r\n". */
#define BUFFER_SIZE (CHIME_BATCH_INPUT_MAX_LINE + 2)

struct _ChimeBatchInput {
  GBufferedInputStream *buffer;
  gsize                 scanned;      /* bytes of the buffer known to hold no '\n' */
  gboolean              eof;
  guint64               line_number;
};

typedef struct {
  char  *line;
  gsize  length;
} Line;

static void
line_free (Line *line)
{
  g_free (line->line);
  g_free (line);
}

/* ------------------------------------------------------------------
 * Opening
 * ---------------------------------------------------------------- */

static int
open_fd (const char *path,
         GError    **error)
{
  int fd = g_str_equal (path, "-") ? dup (STDIN_FILENO) : g_open (path, O_RDONLY | O_CLOEXEC, 0);
  int saved_errno = errno;
  struct stat info;

  if (fd < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot open %s: %s",
                   g_str_equal (path, "-") ? "standard input" : path, g_strerror (saved_errno));
      return -1;
    }
  if (fstat (fd, &info) == 0 && S_ISDIR (info.st_mode))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR,
                   "%s is a directory, not a JSON Lines file", path);
      close (fd);
      return -1;
    }
  return fd;
}

static void
open_in_thread (GTask        *task,
                gpointer      source,
                gpointer      data,
                GCancellable *cancellable)
{
  GError *error = NULL;
  int fd = open_fd (data, &error);
  ChimeBatchInput *input;

  /* Cancelled meanwhile: the task has returned already, and what was
   * opened is dropped here. */
  if (!g_task_set_return_on_cancel (task, FALSE))
    {
      g_clear_error (&error);
      if (fd >= 0)
        close (fd);
      return;
    }
  if (fd < 0)
    {
      g_task_return_error (task, error);
      return;
    }
  input = g_new0 (ChimeBatchInput, 1);
  input->buffer = G_BUFFERED_INPUT_STREAM (g_buffered_input_stream_new_sized (
    g_unix_input_stream_new (fd, TRUE), BUFFER_SIZE));
  /* The buffered stream took its own reference. */
  g_object_unref (g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (input->buffer)));
  g_task_return_pointer (task, input, (GDestroyNotify) chime_batch_input_free);
}

void
chime_batch_input_open_async (const char          *path,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, chime_batch_input_open_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, open_in_thread);
}

ChimeBatchInput *
chime_batch_input_open_finish (GAsyncResult *result,
                               GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------
 * Reading lines
 * ---------------------------------------------------------------- */

static void read_more (GTask *task);

/* Takes @length bytes from the buffer as the next line, and the
 * @ending bytes after them. */
static void
return_line (GTask *task,
             gsize  length,
             gsize  ending)
{
  ChimeBatchInput *input = g_task_get_task_data (task);
  gsize available;
  const char *data = g_buffered_input_stream_peek_buffer (input->buffer, &available);
  Line *line = g_new0 (Line, 1);

  line->line = g_malloc (length + 1);
  memcpy (line->line, data, length);
  line->line[length] = '\0';
  line->length = length;
  /* From the buffer: no I/O, so no wait. */
  g_input_stream_skip (G_INPUT_STREAM (input->buffer), length + ending, NULL, NULL);
  input->scanned = 0;
  input->line_number++;
  g_task_return_pointer (task, line, (GDestroyNotify) line_free);
}

static void
return_too_long (GTask *task)
{
  ChimeBatchInput *input = g_task_get_task_data (task);

  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                           "line %" G_GUINT64_FORMAT " is longer than %d MiB, the most chime reads for one "
                           "input (is it a JSON Lines file, one object per line?)",
                           input->line_number + 1, CHIME_BATCH_INPUT_MAX_LINE / (1024 * 1024));
}

/* Returns the next line if the buffer holds it, else reads more. */
static void
scan (GTask *task)
{
  ChimeBatchInput *input = g_task_get_task_data (task);
  gsize available;
  const char *data = g_buffered_input_stream_peek_buffer (input->buffer, &available);
  const char *end = memchr (data + input->scanned, '\n', available - input->scanned);

  if (end != NULL)
    {
      gsize length = end - data;
      gsize ending = 1;

      if (length > 0 && data[length - 1] == '\r')
        length--, ending++;
      if (length > CHIME_BATCH_INPUT_MAX_LINE)
        return_too_long (task);
      else
        return_line (task, length, ending);
      return;
    }
  input->scanned = available;
  if (available > CHIME_BATCH_INPUT_MAX_LINE)
    return_too_long (task);
  else if (!input->eof)
    read_more (task);
  else if (available > 0)
    return_line (task, available, 0);
  else
    g_task_return_pointer (task, NULL, NULL);
}

static void
on_filled (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  g_autoptr (GTask) task = data;
  ChimeBatchInput *input = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n = g_buffered_input_stream_fill_finish (input->buffer, result, &error);

  if (n < 0)
    {
      g_task_return_error (task, error);
      return;
    }
  if (n == 0)
    input->eof = TRUE;
  scan (task);
}

static void
read_more (GTask *task)
{
  ChimeBatchInput *input = g_task_get_task_data (task);

  g_buffered_input_stream_fill_async (input->buffer, -1, G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                      on_filled, g_object_ref (task));
}

void
chime_batch_input_read_line_async (ChimeBatchInput     *input,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_return_if_fail (input != NULL);
  g_task_set_source_tag (task, chime_batch_input_read_line_async);
  g_task_set_task_data (task, input, NULL);
  scan (task);
}

char *
chime_batch_input_read_line_finish (ChimeBatchInput *input,
                                    GAsyncResult    *result,
                                    gsize           *length,
                                    GError         **error)
{
  Line *line;
  char *text;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  line = g_task_propagate_pointer (G_TASK (result), error);
  if (line == NULL)
    return NULL;
  text = g_steal_pointer (&line->line);
  if (length != NULL)
    *length = line->length;
  line_free (line);
  return text;
}

guint64
chime_batch_input_get_line_number (ChimeBatchInput *input)
{
  return input->line_number;
}

void
chime_batch_input_free (ChimeBatchInput *input)
{
  if (input == NULL)
    return;
  g_clear_object (&input->buffer);
  g_free (input);
}

gboolean
chime_jsonl_line_is_blank (const char *line,
                           gsize       length)
{
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isspace (line[i]))
      return FALSE;
  return TRUE;
}
