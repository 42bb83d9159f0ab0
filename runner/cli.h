/* What the runner's commands (command-*.c) share: exit codes and the way
 * errors reach the terminal (cli.c), and the commands main.c runs. */
#pragma once

#include <glib.h>

enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_RUN_FAILED = 1,
  CLI_EXIT_USAGE = 2,
  CLI_EXIT_CONFIG = 3,
  /* The run ended (its result may be complete) but a handler failed: what
   * it writes (a trace, a report) is incomplete. */
  CLI_EXIT_HANDLER_FAILED = 4,
};

/* Says what is wrong with the command line and how to get help; returns
 * CLI_EXIT_USAGE. */
int  cli_usage_error (GOptionContext *context,
                      const char     *format,
                      ...) G_GNUC_PRINTF (2, 3);
/* Prints an error, one problem per line when it lists several. */
void cli_print_error (const GError *error);
/* CLI_EXIT_CONFIG for configuration errors, else CLI_EXIT_RUN_FAILED. */
int  cli_exit_code_for (const GError *error);

/* --color WHEN (auto, always or never) for every handler that prints;
 * FALSE for any other word. */
gboolean cli_set_color (const char *when);

/* The commands: each parses the rest of its command line. */
int  cli_command_run     (int argc, char **argv);
int  cli_command_check   (int argc, char **argv);
int  cli_command_plugins (int argc, char **argv);
int  cli_command_consume (int argc, char **argv);
