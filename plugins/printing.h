/* What the shipped plugins that print to stdout share (stdout, console,
 * streaming_stdout). Each plugin is its own shared object, so these are
 * static inline: compiled into each, never exported. */
#pragma once

#include <chime/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* The values of a `color` key, in this order. */
enum { PRINTING_COLOR_AUTO, PRINTING_COLOR_ALWAYS, PRINTING_COLOR_NEVER };
static const char *const printing_color_choices[] = { "auto", "always", "never", NULL };

/* Whether the handler's `color` key (a CHIME_CONFIG_CHOICE of
 * printing_color_choices) asks for ANSI escapes: auto means "when stdout
 * is a terminal". */
static inline gboolean
printing_wants_color (ChimeHandlerContext *context)
{
  switch (chime_handler_context_get_choice (context, "color"))
    {
    case PRINTING_COLOR_ALWAYS: return TRUE;
    case PRINTING_COLOR_NEVER: return FALSE;
    default: return isatty (STDOUT_FILENO) == 1;
    }
}

/* Writes @length bytes of @text in one call, so that what other handlers
 * write from other threads cannot land in the middle of it, and flushes:
 * printed callbacks are for watching as they happen.
 *
 * A stdout that fails (a full disk, a closed descriptor) fails the first
 * write with errno's reason and sets *@broken; from then on nothing is
 * written and nothing more is reported, so the failure is said once, not
 * once per event. */
static inline gboolean
printing_write_stdout (gboolean   *broken,
                       const char *text,
                       gsize       length,
                       GError    **error)
{
  if (*broken)
    return TRUE;
  if ((length > 0 && fwrite (text, 1, length, stdout) != length) || fflush (stdout) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write to stdout: %s", g_strerror (saved_errno));
      clearerr (stdout);
      *broken = TRUE;
      return FALSE;
    }
  return TRUE;
}
