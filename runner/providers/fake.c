/* The fake chat model: streams a configured response in configured chunks,
 * with an optional delay between chunks and an optional injected failure.
 * It needs no network, so the seed example and the tests run anywhere.
 *
 * With `tool_calls`, it scripts an agent's conversation: turn N (the
 * number of ai messages in its input) makes the calls of the array's
 * item N, streamed as tool_call_chunks; a turn past the array answers
 * with the response. The calls are fake-tool-calls.c. */
#include "config.h"

#include "fake-chunks.h"
#include "model.h"
#include "fake-tool-calls.h"
#include "pipeline/pipeline-error.h"

#include <chime/event.h>

#include <string.h>

/* How many chunks to deliver per main-loop dispatch when there is no
 * delay: enough that a round of the loop (a poll(2) and some 1,400
 * instructions of prepare and check) is spread thin over them (at 64 it
 * was 22 instructions and a syscall every 64 tokens, bench row 5a), and
 * few enough that a long response never holds the loop for more than
 * about 0.1 ms. A full ring pauses the stream sooner either way. */
#define CHUNKS_PER_DISPATCH 1024

static const char *const fake_keys[] = {
  "model", "response", "chunking", "chunks", "chunk_delay_ms", "fail_after",
  "tool_calls", NULL
};

static const char *const chunking_names[] = { "word", "char", "none", NULL };

enum { CHUNKING_WORD, CHUNKING_CHAR, CHUNKING_NONE };

#define DEFAULT_RESPONSE "Why don't scientists trust atoms?\n\nBecause they make up everything!"

typedef struct {
  ChimeModel parent;
  ChimeFakeChunks chunks;
  gint64     delay_ms;
  gint64     fail_after;   /* -1: never */
  json_t    *tool_calls;   /* the script's turns, or NULL */
} FakeModel;

struct _ChimeModelStream {
  FakeModel                 *model;
  const ChimeModelCallbacks *callbacks;
  gpointer                   user_data;
  GSource                   *source;
  guint                      next;     /* the next chunk's number */
  gsize                      offset;   /* and where it is in model->chunks */
  /* A turn that calls tools streams these instead of the chunks. */
  ChimeFakeToolTurn         *turn;
  gint64                     input_tokens;
  gboolean                   cancelled;
};

/* Splits @text into chunks that each start with the whitespace before a
 * word, as streaming APIs tend to: "Why", " don't", " scientists". */
static void
split_words (ChimeFakeChunks *chunks,
             const char      *text)
{
  const char *start = text, *p = text;

  while (*p != '\0')
    {
      while (g_ascii_isspace (*p))
        p++;
      while (*p != '\0' && !g_ascii_isspace (*p))
        p++;
      chime_fake_chunks_append (chunks, start, p - start);
      start = p;
    }
}

static void
split_chars (ChimeFakeChunks *chunks,
             const char      *text)
{
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    chime_fake_chunks_append (chunks, p, g_utf8_next_char (p) - p);
}

static ChimeModel *
fake_configure (ChimeConfig *config,
                const char  *section)
{
  FakeModel *model = g_new0 (FakeModel, 1);
  g_autofree char *response = chime_config_read_string (config, section, "response", DEFAULT_RESPONSE);
  guint chunking;

  model->parent.model_name = chime_config_read_string (config, section, "model", "fake-chat-model");
  chime_config_read_choice (config, section, "chunking", chunking_names, CHUNKING_WORD, &chunking);
  chime_config_read_int (config, section, "chunk_delay_ms", 0, 0, 60 * 60 * 1000, &model->delay_ms);
  chime_config_read_int (config, section, "fail_after", -1, -1, G_MAXINT32, &model->fail_after);

  if (g_key_file_has_key (chime_config_get_key_file (config), section, "chunks", NULL))
    chime_fake_chunks_read_json (&model->chunks, config, section, "chunks", "[\"Hello\", \" world\"]");
  else if (chunking == CHUNKING_CHAR)
    split_chars (&model->chunks, response);
  else if (chunking == CHUNKING_NONE)
    chime_fake_chunks_append (&model->chunks, response, strlen (response));
  else
    split_words (&model->chunks, response);
  model->tool_calls = chime_fake_tool_calls_read (config, section);
  return &model->parent;
}

static void
fake_free (ChimeModel *model)
{
  FakeModel *self = (FakeModel *) model;

  chime_fake_chunks_clear (&self->chunks);
  g_clear_pointer (&self->tool_calls, json_decref);
  g_free (self);
}

static json_t *
fake_invocation_params (ChimeModel *model)
{
  FakeModel *self = (FakeModel *) model;

  return json_pack ("{s:s, s:s, s:I}", "_type", "fake-chat-model",
                    "model", model->model_name,
                    "chunk_delay_ms", (json_int_t) self->delay_ms);
}

/* Rough token count: words, the way the fake model counts its input. */
static gint64
count_words (json_t *messages)
{
  gint64 words = 0;
  gsize i;
  json_t *message;

  json_array_foreach (messages, i, message)
    {
      g_auto (GStrv) parts = g_strsplit_set (json_string_value (json_object_get (message, "content"))
                                               ? json_string_value (json_object_get (message, "content"))
                                               : "", " \t\n", -1);
      for (guint p = 0; parts[p] != NULL; p++)
        if (parts[p][0] != '\0')
          words++;
    }
  return words;
}

static void
finish (ChimeModelStream *stream,
        GError           *error)
{
  FakeModel *model = stream->model;
  ChimeModelResult result = { 0 };
  g_autoptr (GError) owned = error;

  g_source_destroy (stream->source);
  g_clear_pointer (&stream->source, g_source_unref);
  result.response_metadata = json_pack ("{s:s, s:s}", "model_name", model->parent.model_name,
                                        "finish_reason", error == NULL ? "stop" : "error");
  result.usage_metadata = chime_usage_metadata_new (stream->input_tokens, stream->next);
  result.generation_info = json_pack ("{s:s}", "finish_reason", error == NULL ? "stop" : "error");
  if (stream->turn != NULL)
    chime_fake_tool_turn_fill_result (stream->turn, &result);
  stream->callbacks->on_done (&result, owned, stream->user_data);
  json_decref (result.response_metadata);
  json_decref (result.usage_metadata);
  json_decref (result.generation_info);
  g_clear_pointer (&result.tool_calls, json_decref);
  g_clear_pointer (&result.invalid_tool_calls, json_decref);
  g_clear_pointer (&stream->turn, chime_fake_tool_turn_free);
  g_free (stream);
}

/* The next chunk, or NULL once the stream has finished: cancelled, at
 * fail_after, or at the end. */
static const char *
next_chunk (ChimeModelStream *stream,
            gsize            *length,
            json_t          **piece)
{
  FakeModel *model = stream->model;
  const char *chunk = NULL;

  if (stream->cancelled)
    {
      finish (stream, g_error_new_literal (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED,
                                           "the run was cancelled"));
      return NULL;
    }
  if (model->fail_after >= 0 && stream->next == (guint) model->fail_after)
    {
      finish (stream, g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
                                   "fake model %s failed after %u chunks (fail_after = %"
                                   G_GINT64_FORMAT ")", model->parent.model_name,
                                   stream->next, model->fail_after));
      return NULL;
    }
  if (stream->turn != NULL)
    {
      chunk = chime_fake_tool_turn_get_piece (stream->turn, stream->next, piece);
      *length = chunk != NULL ? strlen (chunk) : 0;
    }
  else if (stream->next < model->chunks.n)
    chunk = chime_fake_chunks_at (&model->chunks, stream->offset, &stream->offset, length);
  if (chunk == NULL)
    finish (stream, NULL);
  return chunk;
}

/* Up to @n plain chunks (no tool turn, no delay) while nothing is due:
 * per token, only the questions that can change between tokens. The
 * rest (the end, fail_after) is the bound worked out once. FALSE when
 * the stream paused. */
static gboolean
deliver_plain (ChimeModelStream *stream,
               guint             n)
{
  FakeModel *model = stream->model;
  guint end = model->chunks.n;

  if (model->fail_after >= 0 && (guint64) model->fail_after < end)
    end = model->fail_after;
  if (end - MIN (stream->next, end) < n)
    n = end - MIN (stream->next, end);
  for (; n > 0 && !stream->cancelled; n--)
    {
      gsize length;
      const char *chunk = chime_fake_chunks_at (&model->chunks, stream->offset, &stream->offset, &length);

      stream->next++;
      if (!stream->callbacks->on_chunk (chunk, length, NULL, stream->user_data))
        return FALSE;
    }
  return TRUE;
}

static gboolean
fake_dispatch (GSource    *source,
               GSourceFunc callback,
               gpointer    user_data)
{
  ChimeModelStream *stream = user_data;
  FakeModel *model = stream->model;
  guint n = 0;

  g_source_set_ready_time (source, -1);
  if (stream->turn == NULL && model->delay_ms == 0)
    {
      /* The last one of the round goes the whole way: it may end the
       * stream (its end, fail_after, a cancellation). */
      if (!deliver_plain (stream, CHUNKS_PER_DISPATCH - 1))
        return G_SOURCE_CONTINUE;   /* paused: resume() wakes us */
      n = CHUNKS_PER_DISPATCH - 1;
    }
  for (; n < CHUNKS_PER_DISPATCH; n++)
    {
      json_t *piece = NULL;
      gsize length = 0;
      const char *chunk = next_chunk (stream, &length, &piece);

      if (chunk == NULL)
        return G_SOURCE_CONTINUE;
      stream->next++;
      if (!stream->callbacks->on_chunk (chunk, length, piece, stream->user_data))
        return G_SOURCE_CONTINUE;   /* paused: resume() wakes us */
      if (model->delay_ms > 0)
        {
          g_source_set_ready_time (source, g_get_monotonic_time () + model->delay_ms * 1000);
          return G_SOURCE_CONTINUE;
        }
    }
  g_source_set_ready_time (source, 0);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs fake_source_funcs = {
  .dispatch = fake_dispatch,
};

static ChimeModelStream *
fake_stream (ChimeModel                *model,
             json_t                    *messages,
             json_t                    *tools,
             const ChimeModelCallbacks *callbacks,
             gpointer                   user_data,
             GMainContext              *context)
{
  ChimeModelStream *stream = g_new0 (ChimeModelStream, 1);
  FakeModel *self = (FakeModel *) model;

  stream->model = self;
  stream->callbacks = callbacks;
  stream->user_data = user_data;
  stream->input_tokens = count_words (messages);
  if (self->tool_calls != NULL)
    stream->turn = chime_fake_tool_turn_new (self->tool_calls, messages);
  stream->source = g_source_new (&fake_source_funcs, sizeof (GSource));
  g_source_set_callback (stream->source, NULL, stream, NULL);
  g_source_set_name (stream->source, "chime fake model");
  g_source_set_ready_time (stream->source,
                           self->delay_ms > 0 ? g_get_monotonic_time () + self->delay_ms * 1000 : 0);
  g_source_attach (stream->source, context);
  return stream;
}

static void
fake_resume (ChimeModelStream *stream)
{
  FakeModel *model = stream->model;

  g_source_set_ready_time (stream->source,
                           model->delay_ms > 0 ? g_get_monotonic_time () + model->delay_ms * 1000 : 0);
}

static void
fake_cancel (ChimeModelStream *stream)
{
  stream->cancelled = TRUE;
  g_source_set_ready_time (stream->source, 0);
}

const ChimeModelProvider chime_fake_model_provider = {
  .provider = "fake",
  .class_name = "FakeStreamingChatModel",
  .keys = fake_keys,
  .configure = fake_configure,
  .stream = fake_stream,
  .resume = fake_resume,
  .cancel = fake_cancel,
  .invocation_params = fake_invocation_params,
  .free = fake_free,
};
