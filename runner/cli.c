/* What the runner's commands share: how errors reach the terminal and
 * which exit code they mean (declared in cli.h). */
#include "config.h"

#include <chime/chime.h>
#include <string.h>

#include "cli.h"

int
cli_usage_error (GOptionContext *context,
                 const char     *format,
                 ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("chime: %s\nTry '%s --help'.\n", message, g_get_prgname ());
  return CLI_EXIT_USAGE;
}

void
cli_print_error (const GError *error)
{
  g_auto (GStrv) lines = NULL;

  if (strchr (error->message, '\n') == NULL)
    {
      g_printerr ("chime: %s\n", error->message);
      return;
    }
  lines = g_strsplit (error->message, "\n", -1);
  g_printerr ("chime: %u problems:\n", g_strv_length (lines));
  for (guint i = 0; lines[i] != NULL; i++)
    g_printerr ("  %s\n", lines[i]);
}

int
cli_exit_code_for (const GError *error)
{
  return error->domain == CHIME_CONFIG_ERROR || error->domain == G_FILE_ERROR ||
         error->domain == G_KEY_FILE_ERROR ? CLI_EXIT_CONFIG : CLI_EXIT_RUN_FAILED;
}

gboolean
cli_set_color (const char *when)
{
  /* The plugins are separate shared objects: they read the choice from
   * CHIME_COLOR (plugins/printing.h), set before any is loaded. */
  if (g_str_equal (when, "auto"))
    g_unsetenv ("CHIME_COLOR");
  else if (g_str_equal (when, "always") || g_str_equal (when, "never"))
    g_setenv ("CHIME_COLOR", when, TRUE);
  else
    return FALSE;
  return TRUE;
}
