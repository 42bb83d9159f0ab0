/* chime run --stream: the pipeline's output stream on stdout as it comes,
 * what `for chunk in chain.stream(...)` shows. Not a handler: it is the
 * run's own output, like the result line. */
#pragma once

#include <glib.h>
#include <jansson.h>

typedef struct _CliStreamPrinter CliStreamPrinter;

CliStreamPrinter *cli_stream_printer_new    (void);
void              cli_stream_printer_free   (CliStreamPrinter *printer);

/* A ChimePipelineChunkFunc: a string chunk is written as it is, any other
 * value as one line of JSON; flushed at once. */
void              cli_stream_printer_chunk  (json_t  *chunk,
                                             gpointer printer);

/* Ends the stream with a newline if the text did not, and says whether
 * every write succeeded (@error: the first failure, naming stdout). */
gboolean          cli_stream_printer_finish (CliStreamPrinter *printer,
                                             GError          **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CliStreamPrinter, cli_stream_printer_free)
