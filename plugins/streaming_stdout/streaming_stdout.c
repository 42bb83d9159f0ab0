/* streaming_stdout — LangChain's StreamingStdOutCallbackHandler.
 *
 * Writes every token to stdout the moment it arrives, so a model's answer
 * appears as it is generated, and a newline when the answer ends or fails
 * (unlike
 * LangChain's, so that what follows on stdout — the runner's result line —
 * starts on a line of its own; `newline = false` writes tokens only).
 *
 *   [handler stream]
 *   plugin = streaming_stdout
 *
 * Under delivery = background or fenced tokens are not awaited, so the
 * text can trail the pipeline slightly; it is never reordered.
 */
#include <chime/plugin.h>

#include <string.h>

#include "../printing.h"

typedef struct {
  gboolean newline;
  /* Text written since the last newline: an answer that streamed nothing
   * leaves no empty line behind. */
  gboolean line_open;
  gboolean broken;     /* stdout failed: said once, nothing more written */
} StreamingStdout;

static gpointer
streaming_stdout_new (ChimeHandlerContext *context,
                      GError             **error)
{
  StreamingStdout *self = g_new0 (StreamingStdout, 1);

  self->newline = chime_handler_context_get_bool (context, "newline");
  return self;
}

/* Flushed at once: buffering would defeat streaming. */
static gboolean
write_out (StreamingStdout *self,
           const char      *text,
           GError         **error)
{
  return printing_write_stdout (&self->broken, text, text != NULL ? strlen (text) : 0, error);
}

static gboolean
streaming_stdout_on_llm_new_token (gpointer     instance,
                                   ChimeEvent  *event,
                                   GError     **error)
{
  StreamingStdout *self = instance;
  const char *token = chime_event_get_token (event);

  if (token != NULL && token[0] != '\0')
    self->line_open = TRUE;
  return write_out (self, token, error);
}

/* llm_end and llm_error: whatever follows starts on a line of its own,
 * the runner's result as much as its error message. */
static gboolean
streaming_stdout_end_line (gpointer     instance,
                           ChimeEvent  *event,
                           GError     **error)
{
  StreamingStdout *self = instance;

  if (!self->newline || !self->line_open)
    return TRUE;
  self->line_open = FALSE;
  return write_out (self, "\n", error);
}

static const ChimeConfigKey streaming_stdout_keys[] = {
  { "newline", CHIME_CONFIG_BOOL, "true", "end the line when the model's answer ends or fails" },
  { NULL }
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "streaming_stdout",
  .description = "writes every token to stdout as it arrives",
  .version = CHIME_VERSION_STRING,
  .config_keys = streaming_stdout_keys,
  .instance_new = streaming_stdout_new,
  .instance_free = g_free,
  .on_llm_new_token = streaming_stdout_on_llm_new_token,
  .on_llm_end = streaming_stdout_end_line,
  .on_llm_error = streaming_stdout_end_line,
);
