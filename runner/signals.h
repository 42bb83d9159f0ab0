/* SIGINT and SIGTERM, heard at any moment (signals.c). */
#pragma once

#include <gio/gio.h>

typedef enum {
  /* `chime run`: the first signal stops the run (its handlers get the
   * error events and are flushed), the second one quits at once. */
  CLI_SIGNALS_STOP_RUN,
  /* Every other command: the first signal quits at once. */
  CLI_SIGNALS_QUIT
} CliSignalMode;

/* Installs the handlers; first thing in main(), before any thread. */
void cli_signals_init (CliSignalMode mode);

/* From now on the first signal cancels @cancellable on the main context
 * (at once if a signal came already). */
void cli_signals_watch (GCancellable *cancellable);

/* Forgets the cancellable given to cli_signals_watch(). */
void cli_signals_unwatch (void);

/* The exit status of a command that ends with @code: 128+N if signal N
 * came, at any moment until now; a signal after this call exits at once. */
int  cli_signals_finish (int code);

/* The first signal's number, or 0. When there was one, it has been said
 * on stderr by the time this returns. */
int  cli_signals_received (void);
