/* A plugin that crashes its host on the Nth token, as a config key says:
 *
 *   [handler boom]
 *   plugin = crasher
 *   crash = segv        # segv | abort | overflow (a stack overflow)
 *   at_token = 3        # the token (from 1) whose call crashes
 *
 * For the crash report's tests: the host dies inside on_llm_new_token. */
#include <chime/plugin.h>

#include <signal.h>
#include <stdlib.h>

enum { CRASH_SEGV, CRASH_ABORT, CRASH_OVERFLOW };
static const char *const crash_choices[] = { "segv", "abort", "overflow", NULL };

typedef struct {
  guint   crash;
  gint64  at_token;
  gint64  tokens;
} Crasher;

static gpointer
crasher_new (ChimeHandlerContext *context,
             GError             **error)
{
  Crasher *self = g_new0 (Crasher, 1);

  self->crash = chime_handler_context_get_choice (context, "crash");
  self->at_token = chime_handler_context_get_int (context, "at_token");
  return self;
}

/* Recurses until the stack is gone; the volatile buffer keeps each frame
 * large and the compiler from turning the recursion into a loop. */
static G_GNUC_NO_INLINE guint
overflow (guint depth)
{
  volatile char frame[4096];

  frame[0] = (char) depth;
  /* A bound no stack reaches: the compiler refuses endless recursion. */
  if (depth == G_MAXUINT)
    return frame[0];
  return overflow (depth + 1) + frame[0];
}

/* A real segfault: a read through NULL. Not seen by UBSan (a sanitizer
 * build would stop at the null load itself, with its own exit status,
 * before the signal this plugin is about). */
__attribute__ ((noinline, no_sanitize ("undefined")))
static int
read_nowhere (void)
{
  volatile int *nowhere = NULL;

  return *nowhere;
}

static gboolean
crasher_on_llm_new_token (gpointer     instance,
                          ChimeEvent  *event,
                          GError     **error)
{
  Crasher *self = instance;

  if (++self->tokens < self->at_token)
    return TRUE;
  switch (self->crash)
    {
    case CRASH_ABORT:
      abort ();
    case CRASH_OVERFLOW:
      return overflow (0) == 0;
    default:
      return read_nowhere () == 0;
    }
}

static const ChimeConfigKey keys[] = {
  { "crash", CHIME_CONFIG_CHOICE, "segv", "how to crash: segv, abort or overflow", 0, crash_choices },
  { "at_token", CHIME_CONFIG_INT, "1", "the token (from 1) whose call crashes" },
  { NULL }
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "crasher",
  .description = "crashes its host on the Nth token (for the crash report's tests)",
  .config_keys = keys,
  .instance_new = crasher_new,
  .instance_free = g_free,
  .on_llm_new_token = crasher_on_llm_new_token,
);
