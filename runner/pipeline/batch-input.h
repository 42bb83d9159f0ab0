/* The inputs of a batch run, read a line at a time with a bound, and so
 * that cancelling ends every wait at once: opening a FIFO that has no
 * writer yet, or reading from a pipe or terminal that sends nothing. */
#pragma once

#include <gio/gio.h>

/* The longest input line read: 1 MiB, as for prompt_file. A longer line
 * (or a stream without line ends, such as /dev/zero) stops the batch. */
#define CHIME_BATCH_INPUT_MAX_LINE (1024 * 1024)

typedef struct _ChimeBatchInput ChimeBatchInput;

/* Opens @path ("-": standard input) in a worker thread, since open()
 * blocks on a FIFO until a writer comes; cancelling @cancellable
 * completes the call at once with G_IO_ERROR_CANCELLED. A directory is
 * refused. */
void             chime_batch_input_open_async       (const char          *path,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
ChimeBatchInput *chime_batch_input_open_finish      (GAsyncResult        *result,
                                                     GError             **error);

/* Reads the next line, ended by "\n", "\r\n" or the end of the input.
 * One read at a time. */
void             chime_batch_input_read_line_async  (ChimeBatchInput     *input,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
/* Returns the line without its end, NUL-terminated; it may hold NUL bytes
 * and need not be UTF-8 (@length gives its size), for the caller to
 * judge. Returns NULL at the end of the input (@error unset) or on an
 * error: a read that failed, or a line longer than
 * CHIME_BATCH_INPUT_MAX_LINE (G_IO_ERROR_MESSAGE_TOO_LARGE). */
char            *chime_batch_input_read_line_finish (ChimeBatchInput     *input,
                                                     GAsyncResult        *result,
                                                     gsize               *length,
                                                     GError             **error);
/* The number of the line read last, from 1. */
guint64          chime_batch_input_get_line_number  (ChimeBatchInput     *input);

void             chime_batch_input_free             (ChimeBatchInput     *input);

/* A JSON Lines line that holds no value: spaces only. A line with a NUL
 * is not blank (g_strstrip() would stop at it), and so fails to parse. */
gboolean         chime_jsonl_line_is_blank          (const char          *line,
                                                     gsize                length);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeBatchInput, chime_batch_input_free)
