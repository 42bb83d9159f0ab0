/* `chime consume` is a module of its own (chime-consume, in LIBDIR/chime
 * beside chime-http-curl): it is the only command that needs libnats, and
 * linked into `chime`, every run paid for loading and relocating libnats
 * and protobuf-c at start-up. consume-loader.c opens the module when the
 * command is consume; command-consume.c is the module. */
#pragma once

#include <gmodule.h>

G_BEGIN_DECLS

/* The module's file name without its suffix, and the function it exports. */
#define CHIME_CONSUME_MODULE_NAME "chime-consume"
#define CHIME_CONSUME_MAIN_SYMBOL "chime_consume_module_main"

/* What the module takes from the `chime` that opened it: the signal
 * counter lives in the binary (signals.c), which installed the handlers.
 * @size is sizeof (ChimeConsumeHost) as the binary was built: the module
 * refuses a host of another shape. */
typedef struct {
  gsize size;
  int   (*signals_received) (void);
} ChimeConsumeHost;

/* The command: parses the rest of its command line (@argv[0] is the
 * command's name) and returns the exit status. */
typedef int (*ChimeConsumeMainFunc) (const ChimeConsumeHost *host,
                                     int                     argc,
                                     char                  **argv);

/* The module's ChimeConsumeMainFunc (command-consume.c). */
G_MODULE_EXPORT int chime_consume_module_main (const ChimeConsumeHost *host,
                                               int                     argc,
                                               char                  **argv);

G_END_DECLS
