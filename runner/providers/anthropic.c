/* `provider = anthropic`: the Messages API, streamed.
 *
 * Events are typed: message_start carries the id, the model and the input
 * usage; content_block_delta events with a text_delta carry the tokens;
 * content_block_start of a tool_use block and its input_json_delta
 * deltas are the pieces of a tool call; message_delta carries the stop
 * reason and the (cumulative) output usage; message_stop ends the stream; ping keeps it alive; error fails
 * it. Event types the API adds later are skipped, as the SDK does. */
#include "config.h"

#include "model-providers.h"
#include "pipeline/pipeline-error.h"
#include "anthropic-messages.h"
#include "provider-common.h"

#include <string.h>

static const char *const anthropic_keys[] = {
  CHIME_PROVIDER_COMMON_KEYS, "anthropic_version", "system", NULL
};

static const char *const anthropic_reserved_keys[] = {
  "model", "messages", "stream", "tools", "tool_choice", NULL
};

typedef struct {
  ChimeProviderModel parent;
  char              *anthropic_version;
  char              *system;
} AnthropicModel;

/* What the events said; -1: not said. */
typedef struct {
  char   *id;
  char   *model;
  char   *stop_reason;
  json_t *stop_sequence;
  gint64  input_tokens;
  gint64  output_tokens;
  gint64  cache_read;
  gint64  cache_creation;
  /* Deltas that are neither text nor a tool call's input (thinking,
   * a server tool's input), per type. */
  json_t *skipped_deltas;
  /* The indexes of the content blocks that are tool_use blocks. */
  GArray *tool_blocks;
} AnthropicState;

/* chime's system messages and the `system` key both become the
 * top-level "system" the API takes instead of a system role. */
static json_t *
anthropic_build_body (ChimeProviderModel *model,
                      json_t             *messages,
                      json_t             *tools,
                      GError            **error)
{
  AnthropicModel *self = (AnthropicModel *) model;
  g_autoptr (GPtrArray) system = g_ptr_array_new ();
  json_t *wire;
  g_autoptr (json_t) body = NULL;

  if (self->system != NULL)
    g_ptr_array_add (system, self->system);
  wire = chime_anthropic_messages (messages, system, error);
  if (wire == NULL)
    return NULL;
  body = json_pack ("{s:s, s:I, s:o, s:b}", "model", model->parent.model_name,
                    "max_tokens", (json_int_t) model->max_tokens, "messages", wire, "stream", TRUE);
  if (system->len > 0)
    {
      g_autofree char *text = NULL;

      g_ptr_array_add (system, NULL);
      text = g_strjoinv ("\n\n", (char **) system->pdata);
      json_object_set_new (body, "system", json_string (text));
    }
  if (model->has_temperature)
    json_object_set_new (body, "temperature", json_real (model->temperature));
  if (model->stop[0] != NULL)
    json_object_set_new (body, "stop_sequences", chime_provider_strv_to_json ((const char * const *) model->stop));
  if (!chime_anthropic_add_tools (model, body, tools, error))
    return NULL;
  return g_steal_pointer (&body);
}

static void
anthropic_add_headers (ChimeProviderModel *model,
                       const char         *api_key,
                       GPtrArray          *headers)
{
  AnthropicModel *self = (AnthropicModel *) model;

  if (api_key[0] != '\0')
    g_ptr_array_add (headers, g_strdup_printf ("x-api-key: %s", api_key));
  g_ptr_array_add (headers, g_strdup_printf ("anthropic-version: %s", self->anthropic_version));
}

static gpointer
anthropic_state_new (ChimeProviderModel *model)
{
  AnthropicState *state = g_new0 (AnthropicState, 1);

  state->input_tokens = state->output_tokens = -1;
  state->cache_read = state->cache_creation = -1;
  state->skipped_deltas = json_object ();
  state->tool_blocks = g_array_new (FALSE, FALSE, sizeof (gint64));
  return state;
}

static void
anthropic_state_free (gpointer data)
{
  AnthropicState *state = data;

  g_free (state->id);
  g_free (state->model);
  g_free (state->stop_reason);
  g_clear_pointer (&state->stop_sequence, json_decref);
  json_decref (state->skipped_deltas);
  g_array_unref (state->tool_blocks);
  g_free (state);
}

/* Usage counts are cumulative: the last value seen is the one. */
static gboolean
take_count (ChimeModelStream     *stream,
            gint64               *slot,
            json_t               *usage,
            const ChimeFieldPath *usage_at,
            const char           *key)
{
  ChimeFieldPath path = { usage_at, key, 0 };
  gint64 value;

  if (!chime_provider_stream_count (stream, usage, &path, &value))
    return FALSE;
  if (value >= 0)
    *slot = value;
  return TRUE;
}

/* The usage object @usage_at->key of @object. */
static gboolean
take_usage (ChimeModelStream     *stream,
            AnthropicState       *state,
            json_t               *object,
            const ChimeFieldPath *usage_at)
{
  json_t *usage;

  return chime_provider_stream_member (stream, object, usage_at, CHIME_FIELD_OBJECT, &usage) &&
         take_count (stream, &state->input_tokens, usage, usage_at, "input_tokens") &&
         take_count (stream, &state->output_tokens, usage, usage_at, "output_tokens") &&
         take_count (stream, &state->cache_read, usage, usage_at, "cache_read_input_tokens") &&
         take_count (stream, &state->cache_creation, usage, usage_at, "cache_creation_input_tokens");
}

static void
on_message_start (ChimeModelStream *stream,
                  AnthropicState   *state,
                  json_t           *event)
{
  static const ChimeFieldPath at = { NULL, "message", 0 };
  static const ChimeFieldPath id_at = { &at, "id", 0 };
  static const ChimeFieldPath model_at = { &at, "model", 0 };
  static const ChimeFieldPath usage_at = { &at, "usage", 0 };
  json_t *message;

  if (chime_provider_stream_member (stream, event, &at, CHIME_FIELD_OBJECT, &message) &&
      chime_provider_stream_keep_string (stream, &state->id, message, &id_at) &&
      chime_provider_stream_keep_string (stream, &state->model, message, &model_at))
    take_usage (stream, state, message, &usage_at);
}

/* The event's block index; FALSE after failing the stream. */
static gboolean
block_index (ChimeModelStream *stream,
             json_t           *event,
             gint64           *index)
{
  static const ChimeFieldPath at = { NULL, "index", 0 };
  json_t *value;

  if (!chime_provider_stream_member (stream, event, &at, CHIME_FIELD_INTEGER, &value))
    return FALSE;
  *index = value != NULL ? json_integer_value (value) : 0;
  return TRUE;
}

static gboolean
is_tool_block (AnthropicState *state,
               gint64          index)
{
  for (guint i = 0; i < state->tool_blocks->len; i++)
    if (g_array_index (state->tool_blocks, gint64, i) == index)
      return TRUE;
  return FALSE;
}

/* A piece of the arguments of a tool_use block: a tool call chunk of the
 * block's index, as langchain-anthropic reports it. */
static void
on_tool_input (ChimeModelStream     *stream,
               json_t               *delta,
               const ChimeFieldPath *delta_at,
               gint64                index)
{
  ChimeFieldPath partial_at = { delta_at, "partial_json", 0 };
  g_autoptr (json_t) pieces = json_array ();
  const char *partial;

  if (chime_provider_stream_string (stream, delta, &partial_at, &partial) &&
      chime_provider_stream_tool_piece (stream, pieces, index, NULL, NULL, partial != NULL ? partial : ""))
    chime_provider_stream_tool_chunk (stream, "", pieces);
}

static void
on_content_block_delta (ChimeModelStream *stream,
                        AnthropicState   *state,
                        json_t           *event)
{
  static const ChimeFieldPath at = { NULL, "delta", 0 };
  static const ChimeFieldPath type_at = { &at, "type", 0 };
  static const ChimeFieldPath text_at = { &at, "text", 0 };
  json_t *delta;
  const char *type, *text;
  gint64 index;

  if (!chime_provider_stream_member (stream, event, &at, CHIME_FIELD_OBJECT, &delta) ||
      !chime_provider_stream_string (stream, delta, &type_at, &type) || !block_index (stream, event, &index))
    return;
  if (g_strcmp0 (type, "input_json_delta") == 0 && is_tool_block (state, index))
    {
      on_tool_input (stream, delta, &at, index);
      return;
    }
  if (g_strcmp0 (type, "text_delta") != 0)
    {
      const char *key = type != NULL ? type : "unknown";
      json_int_t count = json_integer_value (json_object_get (state->skipped_deltas, key));

      json_object_set_new (state->skipped_deltas, key, json_integer (count + 1));
      return;
    }
  if (!chime_provider_stream_string (stream, delta, &text_at, &text))
    return;
  if (text != NULL && text[0] != '\0')
    chime_provider_stream_token (stream, text, strlen (text));
}

/* A tool_use block names its call: the call's first chunk, with its id
 * and name and no arguments yet. */
static void
on_tool_use_start (ChimeModelStream     *stream,
                   AnthropicState       *state,
                   json_t               *block,
                   const ChimeFieldPath *block_at,
                   gint64                index)
{
  ChimeFieldPath id_at = { block_at, "id", 0 };
  ChimeFieldPath name_at = { block_at, "name", 0 };
  g_autoptr (json_t) pieces = json_array ();
  const char *id, *name;

  if (!chime_provider_stream_string (stream, block, &id_at, &id) ||
      !chime_provider_stream_string (stream, block, &name_at, &name))
    return;
  g_array_append_val (state->tool_blocks, index);
  if (chime_provider_stream_tool_piece (stream, pieces, index, id, name, ""))
    chime_provider_stream_tool_chunk (stream, "", pieces);
}

/* A text block may start with text of its own; a tool_use block starts
 * a tool call. */
static void
on_content_block_start (ChimeModelStream *stream,
                        AnthropicState   *state,
                        json_t           *event)
{
  static const ChimeFieldPath at = { NULL, "content_block", 0 };
  static const ChimeFieldPath type_at = { &at, "type", 0 };
  static const ChimeFieldPath text_at = { &at, "text", 0 };
  json_t *block;
  const char *type, *text;
  gint64 index;

  if (!chime_provider_stream_member (stream, event, &at, CHIME_FIELD_OBJECT, &block) ||
      !chime_provider_stream_string (stream, block, &type_at, &type) || !block_index (stream, event, &index))
    return;
  if (g_strcmp0 (type, "tool_use") == 0)
    {
      on_tool_use_start (stream, state, block, &at, index);
      return;
    }
  if (g_strcmp0 (type, "text") != 0 || !chime_provider_stream_string (stream, block, &text_at, &text))
    return;
  if (text != NULL && text[0] != '\0')
    chime_provider_stream_token (stream, text, strlen (text));
}

static void
on_message_delta (ChimeModelStream *stream,
                  AnthropicState   *state,
                  json_t           *event)
{
  static const ChimeFieldPath at = { NULL, "delta", 0 };
  static const ChimeFieldPath stop_reason_at = { &at, "stop_reason", 0 };
  static const ChimeFieldPath stop_sequence_at = { &at, "stop_sequence", 0 };
  static const ChimeFieldPath usage_at = { NULL, "usage", 0 };
  json_t *delta, *stop_sequence;

  if (!chime_provider_stream_member (stream, event, &at, CHIME_FIELD_OBJECT, &delta) ||
      !chime_provider_stream_keep_string (stream, &state->stop_reason, delta, &stop_reason_at) ||
      !chime_provider_stream_check (stream, json_object_get (delta, "stop_sequence"), &stop_sequence_at,
                                    CHIME_FIELD_STRING))
    return;
  /* Kept as sent, null included: LangChain reports "stop_sequence": null. */
  stop_sequence = json_object_get (delta, "stop_sequence");
  if (stop_sequence != NULL)
    {
      g_clear_pointer (&state->stop_sequence, json_decref);
      state->stop_sequence = json_incref (stop_sequence);
    }
  take_usage (stream, state, event, &usage_at);
}

/* The event's type: its `event:` field, or, when a proxy dropped that
 * (the default "message"), the type its data names too. NULL after
 * failing the stream. */
static const char *
event_type (ChimeModelStream    *stream,
            const ChimeSseEvent *sse,
            json_t              *event)
{
  static const ChimeFieldPath type_at = { NULL, "type", 0 };
  const char *type;

  if (!g_str_equal (sse->event, "message"))
    return sse->event;
  if (!chime_provider_stream_string (stream, event, &type_at, &type))
    return NULL;
  return type != NULL ? type : sse->event;
}

static void
anthropic_handle_event (ChimeModelStream    *stream,
                        gpointer             data,
                        const ChimeSseEvent *sse)
{
  AnthropicState *state = data;
  g_autoptr (json_t) event = NULL;
  const char *type;

  if (g_str_equal (sse->event, "ping"))
    return;
  event = chime_provider_stream_parse (stream, sse);
  if (event == NULL)
    return;
  type = event_type (stream, sse, event);
  if (type == NULL)
    return;

  if (g_str_equal (type, "message_start"))
    on_message_start (stream, state, event);
  else if (g_str_equal (type, "content_block_delta"))
    on_content_block_delta (stream, state, event);
  else if (g_str_equal (type, "content_block_start"))
    on_content_block_start (stream, state, event);
  else if (g_str_equal (type, "message_delta"))
    on_message_delta (stream, state, event);
  else if (g_str_equal (type, "message_stop"))
    chime_provider_stream_terminate (stream);
  else if (g_str_equal (type, "error"))
    {
      g_autofree char *description = chime_provider_describe_error (event);

      chime_provider_stream_fail (stream, "the stream reported an error: %s",
                                  description != NULL ? description : "(no details)");
    }
  /* content_block_stop, and event types added after this was written,
   * need nothing. */
}

static void
anthropic_fill_result (ChimeProviderModel *model,
                       gpointer            data,
                       ChimeModelResult   *result)
{
  AnthropicState *state = data;

  result->response_metadata = json_pack ("{s:s}", "model_name",
                                         state->model != NULL ? state->model : model->parent.model_name);
  if (state->id != NULL)
    json_object_set_new (result->response_metadata, "id", json_string (state->id));
  if (state->stop_reason != NULL)
    json_object_set_new (result->response_metadata, "stop_reason", json_string (state->stop_reason));
  if (state->stop_sequence != NULL)
    json_object_set (result->response_metadata, "stop_sequence", state->stop_sequence);

  if (state->input_tokens >= 0 || state->output_tokens >= 0)
    {
      /* As langchain-anthropic: input_tokens excludes cached tokens, the
       * total input includes them. */
      gint64 input = MAX (state->input_tokens, 0) + MAX (state->cache_read, 0) +
                     MAX (state->cache_creation, 0);
      gint64 output = MAX (state->output_tokens, 0);
      json_t *details = json_object ();

      chime_provider_json_set_count (details, "cache_read", state->cache_read);
      chime_provider_json_set_count (details, "cache_creation", state->cache_creation);
      result->usage_metadata = chime_provider_usage_metadata (input, output, input + output, details, NULL);
    }

  if (state->stop_reason != NULL || json_object_size (state->skipped_deltas) > 0)
    {
      result->generation_info = json_object ();
      if (state->stop_reason != NULL)
        json_object_set_new (result->generation_info, "stop_reason", json_string (state->stop_reason));
      if (json_object_size (state->skipped_deltas) > 0)
        json_object_set (result->generation_info, "skipped_deltas", state->skipped_deltas);
    }
}

static const ChimeProviderOps anthropic_ops = {
  .name = "anthropic",
  .default_base_url = "https://api.anthropic.com",
  .default_api_key_env = "ANTHROPIC_API_KEY",
  .endpoint = "/v1/messages",
  .terminator = "message_stop",
  .default_max_tokens = 1024,
  .max_temperature = 1.0,
  .max_retry_after_s = 60.0,
  .refuse_long_retry_after = FALSE,
  .reserved_body_keys = anthropic_reserved_keys,
  .build_body = anthropic_build_body,
  .add_headers = anthropic_add_headers,
  .state_new = anthropic_state_new,
  .state_free = anthropic_state_free,
  .handle_event = anthropic_handle_event,
  .fill_result = anthropic_fill_result,
};

static void
anthropic_free (ChimeModel *model)
{
  AnthropicModel *self = (AnthropicModel *) model;

  chime_provider_model_clear (&self->parent);
  g_free (self->anthropic_version);
  g_free (self->system);
  g_free (self);
}

static ChimeModel *
anthropic_configure (ChimeConfig *config,
                     const char  *section)
{
  AnthropicModel *model = g_new0 (AnthropicModel, 1);
  gboolean ok = chime_provider_model_read (&model->parent, &anthropic_ops, config, section);

  model->anthropic_version = chime_config_read_string (config, section, "anthropic_version", "2023-06-01");
  model->system = chime_config_read_string (config, section, "system", NULL);
  if (model->anthropic_version[0] == '\0' || strpbrk (model->anthropic_version, "\r\n") != NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "anthropic_version");

      chime_config_add_problem (config, "invalid value for 'anthropic_version'%s: expected a version "
                          "like 2023-06-01", location);
      ok = FALSE;
    }
  if (!ok)
    {
      g_free (model->parent.parent.model_name);
      anthropic_free (&model->parent.parent);
      return NULL;
    }
  return &model->parent.parent;
}

static json_t *
anthropic_invocation_params (ChimeModel *model)
{
  return chime_provider_invocation_params ((ChimeProviderModel *) model, "anthropic-chat");
}

const ChimeModelProvider chime_anthropic_model_provider = {
  .provider = "anthropic",
  .class_name = "ChatAnthropic",
  .keys = anthropic_keys,
  .configure = anthropic_configure,
  .stream = chime_provider_stream,
  .resume = chime_provider_stream_resume,
  .cancel = chime_provider_stream_cancel,
  .invocation_params = anthropic_invocation_params,
  .free = anthropic_free,
};
