/* The async counterpart of counter.c: counts tokens on the main loop and
 * completes every call at once (used by the dispatch benchmarks). Same
 * `check_order` and `report` options as counter.c. */
#include <chime/plugin.h>
#include <stdio.h>

typedef struct {
  guint64  tokens;
  guint64  violations;
  gboolean check_order;
  char    *report;
} CounterAsync;

static gpointer
counter_async_new (ChimeHandlerContext *context, GError **error)
{
  CounterAsync *self = g_new0 (CounterAsync, 1);

  self->report = g_strdup (chime_handler_context_get_string (context, "report"));
  self->check_order = chime_handler_context_get_bool (context, "check_order");
  return self;
}

static void
counter_async_free (gpointer instance)
{
  CounterAsync *self = instance;

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

static void
on_token (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{
  CounterAsync *self = instance;

  if (self->check_order &&
      chime_event_get_token (event)[0] != (char) ('0' + self->tokens % 10))
    self->violations++;
  self->tokens++;
  chime_completion_complete (completion);
}

static const ChimeConfigKey keys[] = {
  { "report", CHIME_CONFIG_PATH, NULL, "write the token count here at shutdown" },
  { "check_order", CHIME_CONFIG_BOOL, "false", "expect tokens cycling through 0..9" },
  { NULL }
};

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "counter_async",
  .description = "counts tokens on the main loop",
  .config_keys = keys,
  .instance_new = counter_async_new,
  .instance_free = counter_async_free,
  .on_llm_new_token = on_token,
);
