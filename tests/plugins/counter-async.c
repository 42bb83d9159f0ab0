/* The async counterpart of counter.c: counts tokens on the main loop and
 * completes every call at once (used by the dispatch benchmarks). */
#include <chime/plugin.h>

typedef struct {
  guint64 tokens;
} CounterAsync;

static gpointer
counter_async_new (ChimeHandlerContext *context, GError **error)
{
  return g_new0 (CounterAsync, 1);
}

static void
on_token (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{
  ((CounterAsync *) instance)->tokens++;
  chime_completion_complete (completion);
}

CHIME_PLUGIN_DEFINE (
  .name = "counter_async",
  .description = "counts tokens on the main loop",
  .mode = CHIME_HANDLER_ASYNC,
  .instance_new = counter_async_new,
  .instance_free = g_free,
  .async = { .on_llm_new_token = on_token },
);
