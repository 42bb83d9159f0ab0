/* sleepy: the seed example's async handler. When the model starts and ends
 * it prints "zzzz....", waits delay_ms on the main loop without blocking
 * it, then says it woke up, and only then completes.
 *
 *   cc -shared -fPIC -o sleepy.so sleepy.c $(pkg-config --cflags --libs chime)
 */
#include <chime/plugin.h>
#include <stdio.h>

typedef struct {
  ChimeHandlerContext *context;
  guint                delay_ms;
} Sleepy;

typedef struct {
  ChimeCompletion *completion;
  const char      *stage;
} Nap;

static gpointer
sleepy_new (ChimeHandlerContext *context,
            GError             **error)
{
  Sleepy *self = g_new0 (Sleepy, 1);

  self->context = context;
  self->delay_ms = chime_handler_context_get_int (context, "delay_ms");
  return self;
}

static gboolean
wake_up (gpointer data)
{
  Nap *nap = data;

  printf ("Hi! I just woke up. Your llm is %s\n", nap->stage);
  fflush (stdout);
  chime_completion_complete (nap->completion);
  g_free (nap);
  return G_SOURCE_REMOVE;
}

static void
nap (Sleepy          *self,
     ChimeCompletion *completion,
     const char      *stage)
{
  Nap *nap = g_new0 (Nap, 1);
  GSource *timer = g_timeout_source_new (self->delay_ms);

  printf ("zzzz....\n");
  fflush (stdout);
  nap->completion = completion;
  nap->stage = stage;
  g_source_set_callback (timer, wake_up, nap, NULL);
  g_source_attach (timer, chime_handler_context_get_main_context (self->context));
  g_source_unref (timer);
}

static void
on_start (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{
  nap (instance, completion, "starting");
}

static void
on_end (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{
  nap (instance, completion, "ending");
}

static const ChimeConfigKey sleepy_keys[] = {
  { "delay_ms", CHIME_CONFIG_INT, "300", "how long to sleep at start and end" },
  { NULL }
};

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "sleepy",
  .description = "sleeps on the main loop at model start and end (the seed example's async handler)",
  .version = "1.0",
  .config_keys = sleepy_keys,
  .instance_new = sleepy_new,
  .instance_free = g_free,
  .on_llm_start = on_start,
  .on_chat_model_start = on_start,
  .on_llm_end = on_end,
);
