/* A sync handler that misbehaves on purpose, for the isolation tests
 * (tests/test-runner-isolation.c): on the Nth token it segfaults, aborts,
 * exits or hangs, or starts leaking `leak_mb` MiB (written, so that the
 * memory is really used) on that token and every one after it. With `once_file` it does so only while that file does
 * not exist (it creates it first), so that a restarted instance gets past
 * the token. Every token it handled is appended to `record`, flushed, so a
 * test sees what was delivered, and how often. */
#include <chime/plugin.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  gint64  on_token;
  char   *how;
  char   *once_file;
  FILE   *record;
  gint64  seen;
  gint64  leak_mb;
  gboolean leaking;
  GSList *leaked;
} Misbehaving;

static gpointer
misbehaving_new (ChimeHandlerContext *context, GError **error)
{
  Misbehaving *self = g_new0 (Misbehaving, 1);
  const char *record = chime_handler_context_get_string (context, "record");

  self->on_token = chime_handler_context_get_int (context, "on_token");
  self->how = g_strdup (chime_handler_context_get_string (context, "how"));
  self->once_file = g_strdup (chime_handler_context_get_string (context, "once_file"));
  self->leak_mb = chime_handler_context_get_int (context, "leak_mb");
  if (record != NULL)
    self->record = fopen (record, "a");
  return self;
}

static void
misbehaving_free (gpointer instance)
{
  Misbehaving *self = instance;

  if (self->record != NULL)
    fclose (self->record);
  g_free (self->how);
  g_free (self->once_file);
  g_free (self);
}

static void
misbehave (Misbehaving *self)
{
  if (self->once_file != NULL)
    {
      if (g_file_test (self->once_file, G_FILE_TEST_EXISTS))
        return;
      g_file_set_contents (self->once_file, "done\n", -1, NULL);
    }
  if (g_str_equal (self->how, "segv"))
    raise (SIGSEGV);
  else if (g_str_equal (self->how, "abort"))
    abort ();
  else if (g_str_equal (self->how, "exit"))
    exit (3);
  else if (g_str_equal (self->how, "hang"))
    g_usleep (60 * G_USEC_PER_SEC);
  else if (g_str_equal (self->how, "leak"))
    self->leaking = TRUE;
}

/* Never freed, on purpose: only the end of the process gives it back. */
static void
leak (Misbehaving *self)
{
  gsize size = (gsize) self->leak_mb * 1024 * 1024;
  char *block = g_malloc (size);

  memset (block, 0x5a, size);
  self->leaked = g_slist_prepend (self->leaked, block);
}

static gboolean
on_token (gpointer instance, ChimeEvent *event, GError **error)
{
  Misbehaving *self = instance;

  if (++self->seen == self->on_token)
    misbehave (self);
  if (self->leaking)
    leak (self);
  if (self->record != NULL)
    {
      fprintf (self->record, "%s\n", chime_event_get_token (event));
      fflush (self->record);
    }
  return TRUE;
}

static const ChimeConfigKey keys[] = {
  { "on_token", CHIME_CONFIG_INT, "0", "misbehave on this token (from 1; 0: never)" },
  { "how", CHIME_CONFIG_STRING, "segv", "segv, abort, exit, hang or leak" },
  { "leak_mb", CHIME_CONFIG_INT, "64", "with how = leak: MiB leaked per token" },
  { "once_file", CHIME_CONFIG_PATH, NULL, "misbehave only while this file does not exist" },
  { "record", CHIME_CONFIG_PATH, NULL, "append each token handled here" },
  { NULL }
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "misbehaving",
  .description = "segfaults, aborts, exits, hangs or starts leaking on a chosen token",
  .config_keys = keys,
  .instance_new = misbehaving_new,
  .instance_free = misbehaving_free,
  .on_llm_new_token = on_token,
);
