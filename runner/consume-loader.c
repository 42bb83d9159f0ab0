/* `chime consume` as the binary sees it: opens the module that is the
 * command (consume-module.h) and runs it. Every other command never loads
 * libnats.
 *
 * Where the module is, as for the HTTP module (chime_module_find()):
 * CHIME_CONSUME_MODULE, else LIBDIR/chime/chime-consume.so beside the
 * libchime that is running (an installation moved elsewhere, or installed
 * with DESTDIR), else where it was installed. */
#include "config.h"

#include <chime/chime.h>
#include <gmodule.h>

#include "cli.h"
#include "consume-module.h"
#include "signals.h"

#define MODULE_FILE CHIME_CONSUME_MODULE_NAME "." G_MODULE_SUFFIX

int
cli_command_consume (int    argc,
                     char **argv)
{
  static const ChimeConsumeHost host = {
    .size = sizeof host,
    .signals_received = cli_signals_received,
  };
  g_autoptr (GError) not_found = NULL;
  g_autofree char *path = chime_module_find (MODULE_FILE, "CHIME_CONSUME_MODULE", &not_found);
  GModule *module = path != NULL ? g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY)
                                 : NULL;
  ChimeConsumeMainFunc consume_main = NULL;

  if (module == NULL)
    {
      g_printerr ("chime: consume is not available: its module did not load (%s); install chime "
                  "completely, or set CHIME_CONSUME_MODULE to the path of " MODULE_FILE "\n",
                  path != NULL ? g_module_error () : not_found->message);
      return CLI_EXIT_RUN_FAILED;
    }
  if (!g_module_symbol (module, CHIME_CONSUME_MAIN_SYMBOL, (gpointer *) &consume_main) || consume_main == NULL)
    {
      g_printerr ("chime: consume is not available: %s is not chime's consume module (no "
                  CHIME_CONSUME_MAIN_SYMBOL "); reinstall chime\n", path);
      g_module_close (module);
      return CLI_EXIT_RUN_FAILED;
    }
  /* libnats's threads may outlive the call (it waits for them, but an
   * unloaded library under a late one would crash): never unloaded. */
  g_module_make_resident (module);
  return consume_main (&host, argc, argv);
}
