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
 *
 * Several answers streaming at once (`chime run --inputs` runs several
 * inputs at a time) would interleave token by token ("I'mI'm unable
 * unable"): one answer streams live, the others are held, each whole,
 * and written when the live one ends (those already ended first, in the
 * order they ended; then the next still streaming goes live). Every
 * answer comes out in one piece, and a single run streams as before.
 */
#include <chime/plugin.h>

#include <string.h>

#include "../printing.h"

/* An answer held while another streams live. */
typedef struct {
  char     run[CHIME_RUN_ID_STRING_LEN];
  GString *text;
  gboolean ended;
} HeldAnswer;

typedef struct {
  gboolean newline;
  /* Text written since the last newline: an answer that streamed nothing
   * leaves no empty line behind. */
  gboolean line_open;
  gboolean broken;     /* stdout failed: said once, nothing more written */
  /* The model run streaming live ("" when none), and the others, in the
   * order their first token came. Sync plugins are called one event at a
   * time, so no lock. */
  char       live[CHIME_RUN_ID_STRING_LEN];
  GPtrArray *held;     /* of HeldAnswer */
} StreamingStdout;

static void
held_answer_free (gpointer data)
{
  HeldAnswer *answer = data;

  g_string_free (answer->text, TRUE);
  g_free (answer);
}

static gpointer
streaming_stdout_new (ChimeHandlerContext *context,
                      GError             **error)
{
  StreamingStdout *self = g_new0 (StreamingStdout, 1);

  self->newline = chime_handler_context_get_bool (context, "newline");
  self->held = g_ptr_array_new_with_free_func (held_answer_free);
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

static void
event_run (ChimeEvent *event,
           char        out[CHIME_RUN_ID_STRING_LEN])
{
  chime_run_id_to_string (chime_run_info_get_id (chime_event_get_run (event)), out);
}

static HeldAnswer *
find_held (StreamingStdout *self,
           const char      *run)
{
  for (guint i = 0; i < self->held->len; i++)
    {
      HeldAnswer *answer = g_ptr_array_index (self->held, i);

      if (g_str_equal (answer->run, run))
        return answer;
    }
  return NULL;
}

/* Writes @text as the live answer's. */
static gboolean
write_live (StreamingStdout *self,
            const char      *text,
            GError         **error)
{
  if (text != NULL && text[0] != '\0')
    self->line_open = TRUE;
  return write_out (self, text, error);
}

/* The live answer ended: its line ends (unless newline = false). */
static gboolean
end_live_line (StreamingStdout *self,
               GError         **error)
{
  if (!self->newline || !self->line_open)
    return TRUE;
  self->line_open = FALSE;
  return write_out (self, "\n", error);
}

/* With no answer live: writes the held answers that ended, then makes the
 * first still streaming live, its text so far written. */
static gboolean
promote_held (StreamingStdout *self,
              GError         **error)
{
  while (self->held->len > 0)
    {
      HeldAnswer *answer = g_ptr_array_index (self->held, 0);
      gboolean ok = write_live (self, answer->text->str, error);

      if (answer->ended)
        ok = ok && end_live_line (self, error);
      else
        g_strlcpy (self->live, answer->run, sizeof self->live);
      g_ptr_array_remove_index (self->held, 0);
      if (!ok)
        return FALSE;
      if (self->live[0] != '\0')
        break;
    }
  return TRUE;
}

static gboolean
streaming_stdout_on_llm_new_token (gpointer     instance,
                                   ChimeEvent  *event,
                                   GError     **error)
{
  StreamingStdout *self = instance;
  const char *token = chime_event_get_token (event);
  char run[CHIME_RUN_ID_STRING_LEN];
  HeldAnswer *answer;

  event_run (event, run);
  if (self->live[0] == '\0')
    g_strlcpy (self->live, run, sizeof self->live);
  if (g_str_equal (self->live, run))
    return write_live (self, token, error);
  answer = find_held (self, run);
  if (answer == NULL)
    {
      answer = g_new0 (HeldAnswer, 1);
      g_strlcpy (answer->run, run, sizeof answer->run);
      answer->text = g_string_new (NULL);
      g_ptr_array_add (self->held, answer);
    }
  g_string_append (answer->text, token != NULL ? token : "");
  return TRUE;
}

/* llm_end and llm_error: whatever follows starts on a line of its own,
 * the runner's result as much as its error message. */
static gboolean
streaming_stdout_end_line (gpointer     instance,
                           ChimeEvent  *event,
                           GError     **error)
{
  StreamingStdout *self = instance;
  char run[CHIME_RUN_ID_STRING_LEN];
  HeldAnswer *answer;

  event_run (event, run);
  if (g_str_equal (self->live, run))
    {
      self->live[0] = '\0';
      return end_live_line (self, error) && promote_held (self, error);
    }
  answer = find_held (self, run);
  if (answer != NULL)
    answer->ended = TRUE;
  /* A run that ended without a token while none was live: nothing. */
  return TRUE;
}

/* What is still held at shutdown (answers cut off): written, not lost. */
static void
streaming_stdout_free (gpointer instance)
{
  StreamingStdout *self = instance;

  self->live[0] = '\0';
  for (guint i = 0; i < self->held->len; i++)
    ((HeldAnswer *) g_ptr_array_index (self->held, i))->ended = TRUE;
  promote_held (self, NULL);
  g_ptr_array_unref (self->held);
  g_free (self);
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
  .instance_free = streaming_stdout_free,
  .on_llm_new_token = streaming_stdout_on_llm_new_token,
  .on_llm_end = streaming_stdout_end_line,
  .on_llm_error = streaming_stdout_end_line,
);
