/* streaming_stdout — LangChain's StreamingStdOutCallbackHandler.
 *
 * Writes every token to stdout the moment it arrives and nothing else, so
 * a model's answer appears as it is generated.
 *
 *   [handler stream]
 *   plugin = streaming_stdout
 *
 * Under delivery = background or fenced tokens are not awaited, so the
 * text can trail the pipeline slightly; it is never reordered.
 */
#include <chime/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static gboolean
streaming_stdout_on_llm_new_token (gpointer     instance,
                                   ChimeEvent  *event,
                                   GError     **error)
{
  const char *token = chime_event_get_token (event);
  gsize length = token != NULL ? strlen (token) : 0;

  /* Flushed token by token: buffering would defeat streaming. */
  if ((length > 0 && fwrite (token, 1, length, stdout) != length) || fflush (stdout) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write to stdout: %s", g_strerror (saved_errno));
      clearerr (stdout);
      return FALSE;
    }
  return TRUE;
}

CHIME_PLUGIN_DEFINE (
  .name = "streaming_stdout",
  .description = "writes every token to stdout as it arrives",
  .version = CHIME_VERSION_STRING,
  .mode = CHIME_HANDLER_SYNC,
  .sync = { .on_llm_new_token = streaming_stdout_on_llm_new_token },
);
