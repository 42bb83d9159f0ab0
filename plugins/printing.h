/* What the shipped plugins that print to stdout share (stdout, console,
 * streaming_stdout). Each plugin is its own shared object, so these are
 * static inline: compiled into each, never exported. */
#pragma once

#include <chime/plugin.h>
#include <chime/terminal.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* The values of a `color` key, in this order. */
enum { PRINTING_COLOR_AUTO, PRINTING_COLOR_ALWAYS, PRINTING_COLOR_NEVER };
static const char *const printing_color_choices[] = { "auto", "always", "never", NULL };

/* Whether the handler's `color` key (a CHIME_CONFIG_CHOICE of
 * printing_color_choices) asks for ANSI escapes. CHIME_COLOR (always or
 * never: what `chime run --color` sets) overrides the key, as a command
 * line overrides a file; auto means "when stdout is a terminal that can
 * show them and the user did not say NO_COLOR" (https://no-color.org:
 * set and not empty) — TERM=dumb shows escapes as garbage. */
static inline gboolean
printing_wants_color (ChimeHandlerContext *context)
{
  const char *forced = g_getenv ("CHIME_COLOR");
  const char *no_color = g_getenv ("NO_COLOR");

  if (g_strcmp0 (forced, "always") == 0)
    return TRUE;
  if (g_strcmp0 (forced, "never") == 0)
    return FALSE;
  switch (chime_handler_context_get_choice (context, "color"))
    {
    case PRINTING_COLOR_ALWAYS: return TRUE;
    case PRINTING_COLOR_NEVER: return FALSE;
    default:
      return isatty (STDOUT_FILENO) == 1 && (no_color == NULL || no_color[0] == '\0') &&
             g_strcmp0 (g_getenv ("TERM"), "dumb") != 0;
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
  /* Through libchime: a progress line on the same terminal is kept below. */
  if (!chime_terminal_write_stdout (text, length, error))
    {
      *broken = TRUE;
      return FALSE;
    }
  return TRUE;
}
