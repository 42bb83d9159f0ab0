/* How chime's log messages (its own, libchime's, the plugins') reach the
 * terminal: one line each on stderr in chime's own format, a handler's
 * repeated failure once (log-writer.c). */
#pragma once

#include <glib.h>

/* Installs the writer; call once, first thing. */
void     cli_log_init        (void);
/* --verbose: every message, INFO and DEBUG included, and every repeat.
 * Without it, INFO and DEBUG show as G_MESSAGES_DEBUG says (GLib's
 * variable: a space-separated list of log domains, or "all"). */
void     cli_log_set_verbose (gboolean verbose);
gboolean cli_log_get_verbose (void);
