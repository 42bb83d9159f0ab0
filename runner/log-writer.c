/* chime's log writer. GLib's default prints
 *
 *   (chime run:29899): chime-WARNING **: 05:22:08.413: handler …
 *
 * with a blank line before each, once per event a failing handler fails
 * on. A user wants what went wrong, once, in the tool's own voice:
 *
 *   chime: warning: handler 'trace' (jsonl) failed on chain_start: …
 *
 * A handler failing the same way again is counted (the summary at the
 * end of the run says how often), not printed again; a new failure of
 * the same handler is printed. --verbose prints everything. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "log-writer.h"

static gboolean verbose;
/* Handler name -> the text of its last failure printed. */
static GHashTable *last_failures;
static GMutex lock;

void
cli_log_set_verbose (gboolean value)
{
  verbose = value;
}

gboolean
cli_log_get_verbose (void)
{
  return verbose;
}

static const char *
level_tag (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "error: ";
  if (level & G_LOG_LEVEL_CRITICAL)
    return "critical: ";
  if (level & G_LOG_LEVEL_WARNING)
    return "warning: ";
  if (level & G_LOG_LEVEL_INFO)
    return "info: ";
  if (level & G_LOG_LEVEL_DEBUG)
    return "debug: ";
  return "";
}

static const char *
field_string (const GLogField *fields,
              gsize            n_fields,
              const char      *key)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, key) && fields[i].length < 0)
      return fields[i].value;
  return NULL;
}

/* For "handler 'NAME' (PLUGIN) failed on EVENT: FAILURE", libchime's
 * words for a failed call: the handler ("handler 'NAME' (PLUGIN)") and
 * the failure, without the event, which is what changes from one repeat
 * to the next. FALSE for any other message. */
static gboolean
split_handler_failure (const char  *message,
                       char       **out_handler,
                       const char **out_failure)
{
  const char *failed = strstr (message, ") failed on ");
  const char *failure;

  if (!g_str_has_prefix (message, "handler '") || failed == NULL)
    return FALSE;
  failure = strstr (failed, ": ");
  if (failure == NULL)
    return FALSE;
  *out_handler = g_strndup (message, failed + 1 - message);
  *out_failure = failure + 2;
  return TRUE;
}

/* TRUE when @message is a handler failing as it failed last time (and
 * records it otherwise). Called under the lock. */
static gboolean
is_repeat (const char *message)
{
  g_autofree char *handler = NULL;
  const char *failure;
  const char *last;

  if (!split_handler_failure (message, &handler, &failure))
    return FALSE;
  if (last_failures == NULL)
    last_failures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  last = g_hash_table_lookup (last_failures, handler);
  if (last != NULL && g_str_equal (last, failure))
    return TRUE;
  g_hash_table_replace (last_failures, g_steal_pointer (&handler), g_strdup (failure));
  return FALSE;
}

static GLogWriterOutput
write_log (GLogLevelFlags   level,
           const GLogField *fields,
           gsize            n_fields,
           gpointer         user_data)
{
  const char *domain = field_string (fields, n_fields, "GLIB_DOMAIN");
  const char *message = field_string (fields, n_fields, "MESSAGE");
  g_autofree char *line = NULL;
  g_autoptr (GMutexLocker) locker = NULL;

  if ((level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)) && !verbose &&
      g_log_writer_default_would_drop (level, domain))
    return G_LOG_WRITER_HANDLED;
  locker = g_mutex_locker_new (&lock);
  if (message != NULL && !verbose && is_repeat (message))
    return G_LOG_WRITER_HANDLED;
  /* Messages of chime and libchime are chime's; a plugin's own (its
   * G_LOG_DOMAIN) say whose they are. */
  line = g_strdup_printf ("chime: %s%s%s%s\n", level_tag (level),
                          domain != NULL && !g_str_equal (domain, "chime") ? domain : "",
                          domain != NULL && !g_str_equal (domain, "chime") ? ": " : "",
                          message != NULL ? message : "(no message)");
  /* One write: messages from other threads never land inside it. */
  fputs (line, stderr);
  fflush (stderr);
  return G_LOG_WRITER_HANDLED;
}

void
cli_log_init (void)
{
  g_log_set_writer_func (write_log, NULL, NULL);
}
