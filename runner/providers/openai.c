/* `provider = openai`: the Chat Completions API, streamed.
 *
 * Also what OpenAI-compatible servers speak (Ollama's /v1, llama.cpp's
 * llama-server, vLLM): set base_url. Each data event is a
 * chat.completion.chunk; tokens are choices[0].delta.content, the usage
 * comes in a last chunk with no choices (stream_options.include_usage),
 * and `data: [DONE]` ends the stream. */
#include "config.h"

#include "model-providers.h"
#include "pipeline/pipeline-error.h"
#include "openai-messages.h"
#include "provider-common.h"

#include <string.h>

static const char *const openai_keys[] = { CHIME_PROVIDER_COMMON_KEYS, NULL };

static const char *const openai_reserved_keys[] = { "model", "messages", "stream", "tools", "tool_choice", NULL };

/* The counts of a usage chunk; -1: not said. */
typedef struct {
  gint64 prompt, completion, total;
  gint64 prompt_audio, cached;
  gint64 completion_audio, reasoning;
} OpenAIUsage;

/* What the chunks said. */
typedef struct {
  char       *id;
  char       *model;
  char       *system_fingerprint;
  char       *service_tier;
  char       *finish_reason;
  gboolean    has_usage;
  OpenAIUsage usage;
} OpenAIState;

static json_t *
openai_build_body (ChimeProviderModel *model,
                   json_t             *messages,
                   json_t             *tools,
                   GError            **error)
{
  json_t *wire = chime_openai_messages (model, messages, error);
  g_autoptr (json_t) body = NULL;

  if (wire == NULL)
    return NULL;
  body = json_pack ("{s:s, s:o, s:b, s:{s:b}}", "model", model->parent.model_name, "messages", wire,
                    "stream", TRUE, "stream_options", "include_usage", TRUE);
  if (model->has_temperature)
    json_object_set_new (body, "temperature", json_real (model->temperature));
  if (model->max_tokens > 0)
    json_object_set_new (body, "max_tokens", json_integer (model->max_tokens));
  if (model->stop[0] != NULL)
    json_object_set_new (body, "stop", chime_provider_strv_to_json ((const char * const *) model->stop));
  if (!chime_openai_add_tools (model, body, tools, error))
    return NULL;
  return g_steal_pointer (&body);
}

static void
openai_add_headers (ChimeProviderModel *model,
                    const char         *api_key,
                    GPtrArray          *headers)
{
  if (api_key[0] != '\0')
    g_ptr_array_add (headers, g_strdup_printf ("Authorization: Bearer %s", api_key));
}

static gpointer
openai_state_new (ChimeProviderModel *model)
{
  return g_new0 (OpenAIState, 1);
}

static void
openai_state_free (gpointer data)
{
  OpenAIState *state = data;

  g_free (state->id);
  g_free (state->model);
  g_free (state->system_fingerprint);
  g_free (state->service_tier);
  g_free (state->finish_reason);
  g_free (state);
}

/* The SDK's rule: an object whose "error" is truthy is a failure. */
static gboolean
is_error_chunk (json_t *chunk)
{
  json_t *error = json_object_get (chunk, "error");

  return error != NULL && !json_is_null (error) && !json_is_false (error) &&
         !(json_is_string (error) && json_string_length (error) == 0) &&
         !(json_is_object (error) && json_object_size (error) == 0);
}

static gboolean
read_metadata (ChimeModelStream *stream,
               OpenAIState      *state,
               json_t           *chunk)
{
  static const ChimeFieldPath id = { NULL, "id", 0 };
  static const ChimeFieldPath model = { NULL, "model", 0 };
  static const ChimeFieldPath fingerprint = { NULL, "system_fingerprint", 0 };
  static const ChimeFieldPath tier = { NULL, "service_tier", 0 };

  return chime_provider_stream_keep_string (stream, &state->id, chunk, &id) &&
         chime_provider_stream_keep_string (stream, &state->model, chunk, &model) &&
         chime_provider_stream_keep_string (stream, &state->system_fingerprint, chunk, &fingerprint) &&
         chime_provider_stream_keep_string (stream, &state->service_tier, chunk, &tier);
}

static gboolean
read_count (ChimeModelStream     *stream,
            json_t               *object,
            const ChimeFieldPath *parent,
            const char           *key,
            gint64               *slot)
{
  ChimeFieldPath path = { parent, key, 0 };

  return chime_provider_stream_count (stream, object, &path, slot);
}

/* The usage chunk (stream_options.include_usage); a later one replaces
 * an earlier one. */
static gboolean
read_usage (ChimeModelStream *stream,
            OpenAIState      *state,
            json_t           *chunk)
{
  static const ChimeFieldPath at = { NULL, "usage", 0 };
  static const ChimeFieldPath prompt_at = { &at, "prompt_tokens_details", 0 };
  static const ChimeFieldPath completion_at = { &at, "completion_tokens_details", 0 };
  OpenAIUsage *counts = &state->usage;
  json_t *usage, *prompt, *completion;

  if (!chime_provider_stream_member (stream, chunk, &at, CHIME_FIELD_OBJECT, &usage))
    return FALSE;
  if (usage == NULL)
    return TRUE;
  state->has_usage = TRUE;
  return chime_provider_stream_member (stream, usage, &prompt_at, CHIME_FIELD_OBJECT, &prompt) &&
         chime_provider_stream_member (stream, usage, &completion_at, CHIME_FIELD_OBJECT, &completion) &&
         read_count (stream, usage, &at, "prompt_tokens", &counts->prompt) &&
         read_count (stream, usage, &at, "completion_tokens", &counts->completion) &&
         read_count (stream, usage, &at, "total_tokens", &counts->total) &&
         read_count (stream, prompt, &prompt_at, "audio_tokens", &counts->prompt_audio) &&
         read_count (stream, prompt, &prompt_at, "cached_tokens", &counts->cached) &&
         read_count (stream, completion, &completion_at, "audio_tokens", &counts->completion_audio) &&
         read_count (stream, completion, &completion_at, "reasoning_tokens", &counts->reasoning);
}

/* One of delta.tool_calls: a piece of the call its index names (the
 * first piece says id, type and function.name, later ones only index
 * and a fragment of function.arguments). */
static gboolean
read_tool_call (ChimeModelStream     *stream,
                json_t               *call,
                const ChimeFieldPath *call_at,
                json_t               *pieces)
{
  ChimeFieldPath index_at = { call_at, "index", 0 };
  ChimeFieldPath id_at = { call_at, "id", 0 };
  ChimeFieldPath function_at = { call_at, "function", 0 };
  ChimeFieldPath name_at = { &function_at, "name", 0 };
  ChimeFieldPath arguments_at = { &function_at, "arguments", 0 };
  json_t *index, *function;
  const char *id, *name = NULL, *arguments = NULL;

  if (!chime_provider_stream_check (stream, call, call_at, CHIME_FIELD_OBJECT) ||
      !chime_provider_stream_member (stream, call, &index_at, CHIME_FIELD_INTEGER, &index) ||
      !chime_provider_stream_string (stream, call, &id_at, &id) ||
      !chime_provider_stream_member (stream, call, &function_at, CHIME_FIELD_OBJECT, &function))
    return FALSE;
  if (function != NULL && (!chime_provider_stream_string (stream, function, &name_at, &name) ||
                           !chime_provider_stream_string (stream, function, &arguments_at, &arguments)))
    return FALSE;
  if (index == NULL)
    {
      chime_provider_stream_fail (stream, "a tool call piece without its index: %s",
                                  "choices[0].delta.tool_calls[].index is missing");
      return FALSE;
    }
  return chime_provider_stream_tool_piece (stream, pieces, json_integer_value (index), id, name, arguments);
}

/* delta.tool_calls of the first choice, as tool_call_chunks in @pieces. */
static gboolean
read_tool_calls (ChimeModelStream     *stream,
                 json_t               *delta,
                 const ChimeFieldPath *delta_at,
                 json_t               *pieces)
{
  ChimeFieldPath at = { delta_at, "tool_calls", 0 };
  json_t *calls, *call;
  gsize i;

  if (!chime_provider_stream_member (stream, delta, &at, CHIME_FIELD_ARRAY, &calls))
    return FALSE;
  json_array_foreach (calls, i, call)
    {
      ChimeFieldPath call_at = { &at, NULL, i };

      if (!read_tool_call (stream, call, &call_at, pieces))
        return FALSE;
    }
  return TRUE;
}

/* The first choice's finish_reason, token (*@content, NULL: none) and
 * pieces of tool calls (added to @pieces). With n > 1 other choices
 * stream too; chime follows the first. */
static gboolean
read_choices (ChimeModelStream *stream,
              OpenAIState      *state,
              json_t           *chunk,
              const char      **content,
              json_t           *pieces)
{
  static const ChimeFieldPath at = { NULL, "choices", 0 };
  json_t *choices, *choice;
  gsize i;

  *content = NULL;
  if (!chime_provider_stream_member (stream, chunk, &at, CHIME_FIELD_ARRAY, &choices))
    return FALSE;
  json_array_foreach (choices, i, choice)
    {
      ChimeFieldPath choice_at = { &at, NULL, i };
      ChimeFieldPath index_at = { &choice_at, "index", 0 };
      ChimeFieldPath finish_at = { &choice_at, "finish_reason", 0 };
      ChimeFieldPath delta_at = { &choice_at, "delta", 0 };
      ChimeFieldPath content_at = { &delta_at, "content", 0 };
      json_t *index, *delta;

      if (!chime_provider_stream_check (stream, choice, &choice_at, CHIME_FIELD_OBJECT) ||
          !chime_provider_stream_member (stream, choice, &index_at, CHIME_FIELD_INTEGER, &index))
        return FALSE;
      if (index != NULL && json_integer_value (index) != 0)
        continue;
      if (!chime_provider_stream_keep_string (stream, &state->finish_reason, choice, &finish_at) ||
          !chime_provider_stream_member (stream, choice, &delta_at, CHIME_FIELD_OBJECT, &delta) ||
          !chime_provider_stream_string (stream, delta, &content_at, content) ||
          (delta != NULL && !read_tool_calls (stream, delta, &delta_at, pieces)))
        return FALSE;
    }
  return TRUE;
}

static void
openai_handle_event (ChimeModelStream    *stream,
                     gpointer             data,
                     const ChimeSseEvent *event)
{
  OpenAIState *state = data;
  g_autoptr (json_t) chunk = NULL;
  g_autoptr (json_t) pieces = json_array ();
  const char *content;

  if (g_str_has_prefix (event->data, "[DONE]"))
    {
      chime_provider_stream_terminate (stream);
      return;
    }
  chunk = chime_provider_stream_parse (stream, event);
  if (chunk == NULL)
    return;
  if (is_error_chunk (chunk))
    {
      g_autofree char *description = chime_provider_describe_error (chunk);

      chime_provider_stream_fail (stream, "the stream reported an error: %s",
                                  description != NULL ? description : "An error occurred during streaming");
      return;
    }
  if (!read_metadata (stream, state, chunk) || !read_usage (stream, state, chunk) ||
      !read_choices (stream, state, chunk, &content, pieces))
    return;
  /* Last: the consumer may pause the stream on it. A piece of a tool
   * call is a chunk of its own, with whatever text came beside it. */
  if (json_array_size (pieces) > 0)
    chime_provider_stream_tool_chunk (stream, content != NULL ? content : "", pieces);
  else if (content != NULL && content[0] != '\0')
    chime_provider_stream_token (stream, content, strlen (content));
}

static json_t *
openai_usage_metadata (const OpenAIUsage *usage)
{
  json_t *input_details = json_object ();
  json_t *output_details = json_object ();

  /* As langchain-openai's _create_usage_metadata. */
  chime_provider_json_set_count (input_details, "audio", usage->prompt_audio);
  chime_provider_json_set_count (input_details, "cache_read", usage->cached);
  chime_provider_json_set_count (output_details, "audio", usage->completion_audio);
  chime_provider_json_set_count (output_details, "reasoning", usage->reasoning);
  return chime_provider_usage_metadata (usage->prompt, usage->completion, usage->total,
                                        input_details, output_details);
}

static void
set_string_if (json_t     *object,
               const char *key,
               const char *value)
{
  if (value != NULL)
    json_object_set_new (object, key, json_string (value));
}

static void
openai_fill_result (ChimeProviderModel *model,
                    gpointer            data,
                    ChimeModelResult   *result)
{
  OpenAIState *state = data;
  const char *model_name = state->model != NULL ? state->model : model->parent.model_name;

  result->response_metadata = json_pack ("{s:s}", "model_name", model_name);
  set_string_if (result->response_metadata, "finish_reason", state->finish_reason);
  set_string_if (result->response_metadata, "id", state->id);
  set_string_if (result->response_metadata, "system_fingerprint", state->system_fingerprint);
  set_string_if (result->response_metadata, "service_tier", state->service_tier);
  if (state->has_usage)
    result->usage_metadata = openai_usage_metadata (&state->usage);
  if (state->finish_reason != NULL)
    {
      result->generation_info = json_pack ("{s:s, s:s}", "finish_reason", state->finish_reason,
                                           "model_name", model_name);
      set_string_if (result->generation_info, "system_fingerprint", state->system_fingerprint);
    }
}

static const ChimeProviderOps openai_ops = {
  .name = "openai",
  .default_base_url = "https://api.openai.com/v1",
  .default_api_key_env = "OPENAI_API_KEY",
  .endpoint = "/chat/completions",
  .terminator = "data: [DONE]",
  .default_max_tokens = 0,
  .max_temperature = 2.0,
  .max_retry_after_s = 120.0,
  .refuse_long_retry_after = TRUE,
  .reserved_body_keys = openai_reserved_keys,
  .build_body = openai_build_body,
  .add_headers = openai_add_headers,
  .state_new = openai_state_new,
  .state_free = openai_state_free,
  .handle_event = openai_handle_event,
  .fill_result = openai_fill_result,
};

static ChimeModel *
openai_configure (ChimeConfig *config,
                  const char  *section)
{
  ChimeProviderModel *model = g_new0 (ChimeProviderModel, 1);

  if (!chime_provider_model_read (model, &openai_ops, config, section))
    {
      chime_provider_model_clear (model);
      g_free (model->parent.model_name);
      g_free (model);
      return NULL;
    }
  return &model->parent;
}

static json_t *
openai_invocation_params (ChimeModel *model)
{
  return chime_provider_invocation_params ((ChimeProviderModel *) model, "openai-chat");
}

static void
openai_free (ChimeModel *model)
{
  chime_provider_model_clear ((ChimeProviderModel *) model);
  g_free (model);
}

const ChimeModelProvider chime_openai_model_provider = {
  .provider = "openai",
  .class_name = "ChatOpenAI",
  .keys = openai_keys,
  .configure = openai_configure,
  .stream = chime_provider_stream,
  .resume = chime_provider_stream_resume,
  .cancel = chime_provider_stream_cancel,
  .invocation_params = openai_invocation_params,
  .free = openai_free,
};
