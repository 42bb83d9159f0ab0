/* An async handler that misbehaves: it sleeps in its entry point, holding
 * the main loop that every async handler and the runner's own callbacks
 * share (tests/test-runner-signals.c: chime must still hear signals). It
 * says so on stdout first, so a test knows when the loop is held. */
#include <chime/plugin.h>
#include <stdio.h>

static gpointer
loop_blocker_new (ChimeHandlerContext *context, GError **error)
{
  gint64 *block_ms = g_new (gint64, 1);

  *block_ms = chime_handler_context_get_int (context, "block_ms");
  return block_ms;
}

static void
on_chat_model_start (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{
  printf ("loop_blocker: holding the main loop\n");
  fflush (stdout);
  g_usleep ((gulong) *(gint64 *) instance * 1000);
  chime_completion_complete (completion);
}

static const ChimeConfigKey keys[] = {
  { "block_ms", CHIME_CONFIG_INT, "60000", "how long to hold the main loop" },
  { NULL }
};

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "loop_blocker",
  .description = "holds the main loop in on_chat_model_start",
  .config_keys = keys,
  .instance_new = loop_blocker_new,
  .instance_free = g_free,
  .on_chat_model_start = on_chat_model_start,
);
