/* The smallest useful handler: counts tokens (used by the dispatch tests
 * and the benchmarks). Options: `delay_us` spends that long on each token
 * (a slow handler); `check_order` expects the tokens to cycle through
 * "0".."9" and counts every one out of place; `fail_at` fails the N-th
 * token. At shutdown it writes
 * "TOKENS VIOLATIONS" to `report`. */
#include <chime/plugin.h>
#include <stdio.h>

typedef struct {
  guint64  tokens;
  guint64  violations;
  gint64   delay_us;
  gboolean check_order;
  gint64   fail_at;
  char    *report;
} Counter;

static gpointer
counter_new (ChimeHandlerContext *context, GError **error)
{
  Counter *self = g_new0 (Counter, 1);

  self->report = g_strdup (chime_handler_context_get_string (context, "report"));
  self->delay_us = chime_handler_context_get_int (context, "delay_us");
  self->check_order = chime_handler_context_get_bool (context, "check_order");
  self->fail_at = chime_handler_context_get_int (context, "fail_at");
  return self;
}

static void
counter_free (gpointer instance)
{
  Counter *self = instance;

  if (self->report != NULL)
    {
      FILE *file = fopen (self->report, "w");
      if (file != NULL)
        {
          fprintf (file, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n", self->tokens, self->violations);
          fclose (file);
        }
    }
  g_free (self->report);
  g_free (self);
}

static gboolean
on_token (gpointer instance, ChimeEvent *event, GError **error)
{
  Counter *self = instance;

  if (self->check_order &&
      chime_event_get_token (event)[0] != (char) ('0' + self->tokens % 10))
    self->violations++;
  self->tokens++;
  if (self->delay_us > 0)
    g_usleep (self->delay_us);
  if (self->fail_at > 0 && self->tokens == (guint64) self->fail_at)
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "counter refuses token %" G_GUINT64_FORMAT, self->tokens);
      return FALSE;
    }
  return TRUE;
}

static const ChimeConfigKey keys[] = {
  { "report", CHIME_CONFIG_PATH, NULL, "write the token count here at shutdown" },
  { "delay_us", CHIME_CONFIG_INT, "0", "spend this long on every token" },
  { "check_order", CHIME_CONFIG_BOOL, "false", "expect tokens cycling through 0..9" },
  { "fail_at", CHIME_CONFIG_INT, "0", "fail the N-th token (0: never)" },
  { NULL }
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "counter",
  .description = "counts tokens",
  .config_keys = keys,
  .instance_new = counter_new,
  .instance_free = counter_free,
  .on_llm_new_token = on_token,
);
