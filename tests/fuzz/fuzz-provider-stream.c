/* libFuzzer harness for the provider chunk readers: the body of a 2xx
 * streamed response of the OpenAI or the Anthropic provider, through the
 * same code as a real stream (provider-stream-events.c: the SSE parser,
 * the provider's handle_event, the token template), then fill_result.
 *
 * The body is read twice: with token templates, as streams run, and
 * without. Templates only skip parsing events handle_event would treat
 * alike, so both must give the same tokens, the same end and the same
 * result (the tool calls assembled included). The consumer pauses the
 * stream now and then, as a full queue does, and every token must be
 * non-empty valid UTF-8, unless it is a piece of a tool call (text "",
 * its tool_call_chunks beside it).
 *
 * Input: byte 0 picks the provider (even: openai, odd: anthropic), bytes
 * 1-4 seed the piece sizes, byte 5 how often the consumer pauses (every
 * Nth token, 0: never); the rest is the response body. */
#include "config.h"

#include <string.h>

#include "providers/model.h"
#include "providers/provider-model.h"
#include "providers/provider-stream.h"
#include "providers/provider-stream-events.h"
#include "providers/provider-stream-private.h"
#include "fuzz-common.h"

static ChimeModel *openai_model;
static ChimeModel *anthropic_model;

typedef struct {
  GString *log;
  guint    pause_every;
  guint    n_tokens;
} Consumer;

static gboolean
on_chunk (const char *text,
          gsize       length,
          json_t     *chunk,
          gpointer    user_data)
{
  Consumer *consumer = user_data;

  if ((text[0] == '\0' && chunk == NULL) || !g_utf8_validate (text, -1, NULL))
    fuzz_fail ("a token must be non-empty valid UTF-8", "text", text);
  if (length != strlen (text))
    fuzz_fail ("a token's length must be its text's", "text", text);
  g_string_append_printf (consumer->log, "%" G_GSIZE_FORMAT ":%s", strlen (text), text);
  if (chunk != NULL)
    {
      char *pieces = json_dumps (chunk, JSON_COMPACT | JSON_SORT_KEYS);

      if (pieces == NULL || !g_utf8_validate (pieces, -1, NULL))
        fuzz_fail ("a tool call chunk must serialise to UTF-8 JSON", "chunk", pieces);
      g_string_append_printf (consumer->log, "+%s", pieces);
      free (pieces);
    }
  consumer->n_tokens++;
  return consumer->pause_every == 0 || consumer->n_tokens % consumer->pause_every != 0;
}

static const ChimeModelCallbacks callbacks = { on_chunk, NULL, NULL };

static ChimeModel *
configure_model (const char *provider)
{
  g_autofree char *text = g_strdup_printf ("[model m]\nprovider = %s\nmodel = fuzz-model\n", provider);
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeConfig) config = chime_config_new_from_data (text, "fuzz.ini", "/", &error);
  ChimeModel *model;

  g_assert_no_error (error);
  model = chime_model_new (config, "m");
  g_assert (model != NULL && chime_config_get_n_problems (config) == 0);
  return model;
}

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_make_warnings_fatal ();
  openai_model = configure_model ("openai");
  anthropic_model = configure_model ("anthropic");
  return 0;
}

/* The parts of a stream that reading events uses; the rest (transfer,
 * main-loop source) is provider-stream.c's and stays unset. */
static ChimeModelStream *
stream_new (ChimeModel *model,
            Consumer   *consumer,
            gboolean    templates)
{
  ChimeModelStream *stream = g_new0 (ChimeModelStream, 1);

  stream->model = (ChimeProviderModel *) model;
  stream->ops = stream->model->ops;
  stream->callbacks = &callbacks;
  stream->user_data = consumer;
  stream->state = stream->ops->state_new (stream->model);
  chime_provider_stream_begin_events (stream);
  /* As a stream that has given up on templates: every event in full. */
  if (!templates)
    stream->template_misses = G_MAXUINT;
  return stream;
}

static void
stream_free (ChimeModelStream *stream)
{
  chime_sse_parser_free (stream->parser);
  chime_token_template_free (stream->template);
  if (stream->last_token != NULL)
    g_string_free (stream->last_token, TRUE);
  g_clear_error (&stream->stream_error);
  chime_tool_call_buffer_free (stream->tool_calls);
  stream->ops->state_free (stream->state);
  g_free (stream);
}

static void
log_json (GString    *log,
          const char *name,
          json_t     *value)
{
  g_autofree char *text = NULL;

  if (value == NULL)
    return;
  text = json_dumps (value, JSON_COMPACT | JSON_SORT_KEYS);
  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    fuzz_fail ("the stream's result must serialise to UTF-8 JSON", name, text);
  g_string_append_printf (log, "|%s %s", name, text);
}

/* What the stream ends with: its error or its end, and its result. */
static void
log_end (ChimeModelStream *stream,
         GString          *log)
{
  ChimeModelResult result = { NULL, NULL, NULL, NULL, NULL };

  if (stream->stream_error != NULL)
    {
      if (!g_utf8_validate (stream->stream_error->message, -1, NULL))
        fuzz_fail ("an error message must be valid UTF-8", "", stream->stream_error->message);
      g_string_append_printf (log, "|error %s", stream->stream_error->message);
      return;
    }
  g_string_append_printf (log, "|terminated %d", stream->terminated);
  stream->ops->fill_result (stream->model, stream->state, &result);
  if (stream->tool_calls != NULL)
    chime_tool_call_buffer_finish (stream->tool_calls, &result.tool_calls, &result.invalid_tool_calls);
  log_json (log, "response_metadata", result.response_metadata);
  log_json (log, "usage_metadata", result.usage_metadata);
  log_json (log, "generation_info", result.generation_info);
  log_json (log, "tool_calls", result.tool_calls);
  log_json (log, "invalid_tool_calls", result.invalid_tool_calls);
  g_clear_pointer (&result.response_metadata, json_decref);
  g_clear_pointer (&result.usage_metadata, json_decref);
  g_clear_pointer (&result.generation_info, json_decref);
  g_clear_pointer (&result.tool_calls, json_decref);
  g_clear_pointer (&result.invalid_tool_calls, json_decref);
}

static gboolean
stream_over (ChimeModelStream *stream)
{
  return stream->terminated || stream->stream_error != NULL;
}

/* Feeds @body in pieces as provider-stream.c's on_data does: what a
 * paused stream did not use is fed again once the consumer resumes. */
static void
read_body (ChimeModel *model,
           const char *body,
           gsize       length,
           guint32     seed,
           guint       pause_every,
           gboolean    templates,
           GString    *log)
{
  Consumer consumer = { log, pause_every, 0 };
  ChimeModelStream *stream = stream_new (model, &consumer, templates);
  gsize offset = 0;

  while (offset < length && !stream_over (stream))
    {
      gsize next = fuzz_next_piece (&seed);
      gsize piece = MIN (next, length - offset);
      gsize used = chime_provider_stream_feed (stream, body + offset, piece);

      g_assert (used <= piece);
      if (stream->paused)
        {
          g_string_append_c (log, '/');
          chime_provider_stream_resume (stream);
        }
      else if (!stream_over (stream))
        g_assert (used == piece);
      offset += used;
    }
  log_end (stream, log);
  stream_free (stream);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GString) with_templates = g_string_new (NULL);
  g_autoptr (GString) without = g_string_new (NULL);
  ChimeModel *model;
  guint32 seed;

  if (size < 6)
    return 0;
  model = data[0] % 2 == 0 ? openai_model : anthropic_model;
  seed = (((guint32) data[1] << 24) | ((guint32) data[2] << 16) | ((guint32) data[3] << 8) | data[4]) | 1;

  read_body (model, (const char *) data + 6, size - 6, seed, data[5], TRUE, with_templates);
  read_body (model, (const char *) data + 6, size - 6, seed, data[5], FALSE, without);
  if (!g_string_equal (with_templates, without))
    fuzz_fail ("token templates changed what the stream yields", without->str, with_templates->str);
  return 0;
}
