/* chime — the runner: runs pipelines from INI files.
 *
 *   chime run [CONFIG] [--input TEXT] [--var KEY=VALUE]... [--events FILE]
 *             [--output FILE] [--pretty]
 *   chime run CONFIG --inputs FILE.jsonl [--concurrency N] [--var KEY=VALUE]...
 *             [--events FILE] [--output FILE]
 *   chime check CONFIG
 *   chime consume CONFIG [--idle-exit-ms MS]
 *   chime plugins
 *   chime --version
 *
 * Exit codes: 0 success, 1 the run failed, 2 bad command line, 3 bad
 * configuration, 4 the run succeeded but a handler failed, 128+N stopped
 * by signal N (130 for Ctrl-C). Each command
 * is in its own file (command-run.c, command-check.c, command-plugins.c);
 * the runner uses libchime through <chime/chime.h> only, like any
 * embedder. */
#include "config.h"

#include <chime/chime.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "log-writer.h"
#include "signals.h"

static void
print_usage (FILE *out)
{
  fprintf (out,
           "Usage: chime COMMAND [OPTIONS]\n\n"
           "Commands:\n"
           "  run [CONFIG]    run a pipeline (without CONFIG: the built-in seed example)\n"
           "  check CONFIG    validate a configuration and start its handlers\n"
           "  consume CONFIG  handle the events of a NATS JetStream stream (docs/scale-out.md)\n"
           "  plugins         list the plugins chime can find\n\n"
           "Options:\n"
           "  -V, --version   print the version\n"
           "  -h, --help      print this help; 'chime help COMMAND' (or 'chime COMMAND --help')\n"
           "                  for a command\n");
}

/* A descriptor 0, 1 or 2 that chime was started without would be the
 * next one open() returns: a handler's trace file would then receive
 * everything printed on stdout. Each is taken by /dev/null opened the
 * wrong way round (stdout and stderr read-only, stdin write-only), so
 * that using it fails with EBADF, as a closed descriptor does, and says
 * so, instead of writing into some file. */
static void
hold_closed_standard_streams (void)
{
  for (int fd = 0; fd <= 2; fd++)
    {
      int held;

      if (fcntl (fd, F_GETFD) != -1 || errno != EBADF)
        continue;
      held = open ("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
      if (held >= 0 && held != fd)
        {
          dup2 (held, fd);
          close (held);
        }
    }
}

static gboolean
is_command (const char *name)
{
  return g_str_equal (name, "run") || g_str_equal (name, "check") || g_str_equal (name, "plugins") ||
         g_str_equal (name, "consume");
}

int
main (int    argc,
      char **argv)
{
  const char *command = argc >= 2 ? argv[1] : NULL;
  g_autofree char *prgname = NULL;
  g_autoptr (GError) error = NULL;

  /* `chime help run` is `chime run --help`, as git and cargo do. */
  if (command != NULL && g_str_equal (command, "help") && argc == 3 && is_command (argv[2]))
    {
      static char help_option[] = "--help";

      command = argv[1] = argv[2];
      argv[2] = help_option;
    }
  hold_closed_standard_streams ();
  /* Before anything logs: every message in chime's own one-line form. */
  cli_log_init ();
  /* A plugin that crashes chime is named before chime dies of it. */
  if (!chime_crash_report_install ("chime", &error))
    g_printerr ("chime: %s\n", error->message);
  /* Before anything else: a signal is never the silent default death. */
  cli_signals_init (g_strcmp0 (command, "run") == 0 || g_strcmp0 (command, "consume") == 0
                      ? CLI_SIGNALS_STOP_RUN : CLI_SIGNALS_QUIT);
  /* The user's locale for messages: their language (LC_MESSAGES) and
   * charset (LC_CTYPE: GLib converts them to it). The other categories
   * stay "C": numbers as C prints them, and data (the result JSON) is
   * written as UTF-8 bytes whatever the locale. Only these two: loading
   * all twelve (setlocale (LC_ALL, "")) read twelve files, some 0.1 ms of
   * a fake-model run's start-up (bench row s1), for categories nothing in
   * chime reads. */
  setlocale (LC_CTYPE, "");
  setlocale (LC_MESSAGES, "");
  if (command == NULL)
    {
      print_usage (stderr);
      return CLI_EXIT_USAGE;
    }
  if (g_str_equal (command, "--version") || g_str_equal (command, "-V") || g_str_equal (command, "version"))
    {
      g_print ("chime %s (plugin ABI %d.%d)\n", CHIME_VERSION_STRING,
               CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);
      return CLI_EXIT_OK;
    }
  if (g_str_equal (command, "help") && argc > 2)
    {
      g_printerr ("chime: no command '%s' to help with%s\n", argv[2], argc > 3 ? " (give one command)" : "");
      print_usage (stderr);
      return CLI_EXIT_USAGE;
    }
  if (g_str_equal (command, "--help") || g_str_equal (command, "-h") || g_str_equal (command, "help"))
    {
      print_usage (stdout);
      return CLI_EXIT_OK;
    }
  /* Each command parses the rest of the line; its help says "chime CMD". */
  prgname = g_strdup_printf ("chime %s", command);
  g_set_prgname (prgname);
  argv[1] = prgname;
  if (g_str_equal (command, "run"))
    return cli_signals_finish (cli_command_run (argc - 1, argv + 1));
  if (g_str_equal (command, "check"))
    return cli_command_check (argc - 1, argv + 1);
  if (g_str_equal (command, "plugins"))
    return cli_command_plugins (argc - 1, argv + 1);
  /* Its signal is a request to stop, not a failure: exit 0 (the command's). */
  if (g_str_equal (command, "consume"))
    return cli_command_consume (argc - 1, argv + 1);
  g_printerr ("chime: unknown command '%s'\n", command);
  print_usage (stderr);
  return CLI_EXIT_USAGE;
}
