/* `chime consume` as the binary sees it: opens the module that is the
 * command (consume-module.h) and runs it. Every other command never loads
 * libnats.
 *
 * Where the module is, as for the HTTP module (core/http/http-backend.c):
 * CHIME_CONSUME_MODULE, else LIBDIR/chime/chime-consume.so beside the
 * libchime that is running (an installation moved elsewhere, or installed
 * with DESTDIR), else where it was installed. */
/* dladdr() */
#define _GNU_SOURCE
#include "config.h"

#include <chime/chime.h>
#include <dlfcn.h>
#include <gmodule.h>

#include "cli.h"
#include "consume-module.h"
#include "signals.h"

#define MODULE_FILE CHIME_CONSUME_MODULE_NAME "." G_MODULE_SUFFIX

/* LIBDIR/chime/MODULE_FILE beside the libchime this process runs, when it
 * is there. */
static char *
module_beside_libchime (void)
{
  Dl_info info;
  g_autofree char *library = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;

  if (dladdr ((void *) chime_runtime_new, &info) == 0 || info.dli_fname == NULL)
    return NULL;
  library = g_canonicalize_filename (info.dli_fname, NULL);
  dir = g_path_get_dirname (library);
  path = g_build_filename (dir, "chime", MODULE_FILE, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS) ? g_steal_pointer (&path) : NULL;
}

static char *
module_path (void)
{
  const char *env = g_getenv ("CHIME_CONSUME_MODULE");
  char *beside;

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  if ((beside = module_beside_libchime ()) != NULL)
    return beside;
  return g_strdup (CHIME_CONSUME_MODULE_PATH);
}

int
cli_command_consume (int    argc,
                     char **argv)
{
  static const ChimeConsumeHost host = {
    .size = sizeof host,
    .signals_received = cli_signals_received,
  };
  g_autofree char *path = module_path ();
  GModule *module = g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
  ChimeConsumeMainFunc consume_main = NULL;

  if (module == NULL)
    {
      g_printerr ("chime: consume is not available: its module did not load (%s); install chime "
                  "completely, or set CHIME_CONSUME_MODULE to the path of " MODULE_FILE "\n",
                  g_module_error ());
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
