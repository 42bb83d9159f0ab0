/* The smallest useful handler: counts tokens (used by the dispatch tests
 * and the benchmarks). Writes the count to `report` at shutdown. */
#include <chime/plugin.h>
#include <stdio.h>

typedef struct {
  guint64 tokens;
  char   *report;
} Counter;

static gpointer
counter_new (ChimeHandlerContext *context, GError **error)
{
  Counter *self = g_new0 (Counter, 1);
  self->report = g_strdup (chime_handler_context_get_string (context, "report"));
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
          fprintf (file, "%" G_GUINT64_FORMAT "\n", self->tokens);
          fclose (file);
        }
    }
  g_free (self->report);
  g_free (self);
}

static gboolean
on_token (gpointer instance, ChimeEvent *event, GError **error)
{
  ((Counter *) instance)->tokens++;
  return TRUE;
}

static const ChimeConfigKey keys[] = {
  { "report", CHIME_CONFIG_PATH, NULL, "write the token count here at shutdown" },
  { NULL }
};

CHIME_PLUGIN_DEFINE (
  .name = "counter",
  .description = "counts tokens",
  .mode = CHIME_HANDLER_SYNC,
  .config_keys = keys,
  .instance_new = counter_new,
  .instance_free = counter_free,
  .sync = { .on_llm_new_token = on_token },
);
