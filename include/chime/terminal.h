/* The terminal that handlers printing on it share: a status line (the
 * progress plugin's) kept below the text others write to stdout
 * (streaming_stdout, stdout, console), instead of drawn over it.
 *
 * When stdout and stderr are the same terminal, text written through
 * chime_terminal_write_stdout() first blanks the status line, and the
 * status line is drawn again once the text has ended its line; while a
 * line of text is still open (an answer streaming), the status waits
 * below it, undrawn, rather than split it. On different files (stdout a
 * pipe, say) both are written as they come. The status line is drawn
 * with a carriage return and spaces, no ANSI codes, so that a log file
 * stays readable. Thread-safe: handlers on the thread pool and on the
 * main loop may call these at once. */
#pragma once

#include <glib.h>
#include <chime/macros.h>

G_BEGIN_DECLS

/* Writes @length bytes of @text to stdout in one call, and flushes. A
 * failure is a G_FILE_ERROR with errno's reason ("cannot write to
 * stdout: No space left on device"). */
CHIME_API gboolean chime_terminal_write_stdout (const char *text,
                                                gsize       length,
                                                GError    **error);

/* Sets the status line to @line (no newline in it) and draws it on
 * stderr, now or once the open line of text has ended. @final draws it
 * for the last time, ended with a newline, and forgets it. A failure to
 * write stderr is a G_FILE_ERROR. */
CHIME_API gboolean chime_terminal_set_status   (const char *line,
                                                gboolean    final,
                                                GError    **error);

G_END_DECLS
