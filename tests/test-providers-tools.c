/* Tool calling against the mock LLM server, for both HTTP providers:
 * what the request offers and sends back (tools, tool_choice, the
 * messages of a turn that called tools), how the streamed pieces of a
 * call reach the consumer (tool_call_chunks, one chunk per event, with
 * the call's index, id and name on its first piece), and the calls
 * assembled at the end, those whose arguments do not parse apart with
 * the reason. The providers are driven straight through
 * chime_model_stream(), as the agent loop does; the last test runs a
 * pipeline to see the pieces reach handlers. */
#include "provider-helpers.h"

#include "providers/model.h"
#include "providers/provider-tool-calls.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* One stream, collected                                              */
/* ------------------------------------------------------------------ */

typedef struct {
  GMainLoop *loop;
  char      *key;                 /* X-Mock-Key */
  json_t    *chunks;              /* [{"text", "chunk"}] in order */
  json_t    *tool_calls;
  json_t    *invalid_tool_calls;
  json_t    *response_metadata;
  GError    *error;
} Stream;

static void
stream_free (Stream *s)
{
  g_main_loop_unref (s->loop);
  g_free (s->key);
  json_decref (s->chunks);
  g_clear_pointer (&s->tool_calls, json_decref);
  g_clear_pointer (&s->invalid_tool_calls, json_decref);
  g_clear_pointer (&s->response_metadata, json_decref);
  g_clear_error (&s->error);
  g_free (s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Stream, stream_free)

static gboolean
on_chunk (const char *text,
          gsize       length,
          json_t     *chunk,
          gpointer    user_data)
{
  Stream *s = user_data;

  assert_int_equal (length, strlen (text));
  json_array_append_new (s->chunks, json_pack ("{s:s, s:O}", "text", text, "chunk",
                                               chunk != NULL ? chunk : json_null ()));
  return TRUE;
}

static json_t *
copy_or_null (json_t *json)
{
  return json != NULL ? json_deep_copy (json) : NULL;
}

static void
on_done (const ChimeModelResult *result,
         const GError           *error,
         gpointer                user_data)
{
  Stream *s = user_data;

  s->tool_calls = copy_or_null (result->tool_calls);
  s->invalid_tool_calls = copy_or_null (result->invalid_tool_calls);
  s->response_metadata = copy_or_null (result->response_metadata);
  s->error = error != NULL ? g_error_copy (error) : NULL;
  g_main_loop_quit (s->loop);
}

static const ChimeModelCallbacks callbacks = { .on_chunk = on_chunk, .on_done = on_done };

/* Streams @messages offering @tools from a `[model m]` of @p against the
 * mock server replaying @fixture; @model_extra: more lines for it. */
static Stream *
stream_model (const ProviderCase *p,
              const char         *fixture,
              const char         *model_extra,
              json_t             *messages,
              json_t             *tools)
{
  static guint counter;
  Stream *s = g_new0 (Stream, 1);
  g_autofree char *ini = NULL;
  g_autoptr (ChimeConfig) config = NULL;
  g_autoptr (ChimeModel) model = NULL;
  g_autoptr (GError) error = NULL;

  s->loop = g_main_loop_new (NULL, FALSE);
  s->key = g_strdup_printf ("tools-%u-%s", ++counter, p->name);
  s->chunks = json_array ();
  ini = g_strdup_printf ("[model m]\nprovider = %s\nmodel = %s\nbase_url = http://127.0.0.1:%u%s\n"
                         "api_key_env = " API_KEY_ENV "\ntimeout_s = 5\n"
                         "headers = [\"X-Mock-Key: %s\", \"X-Mock-Fixture: %s\"]\n%s",
                         p->name, p->model, server.port, p->path, s->key, fixture,
                         model_extra != NULL ? model_extra : "");
  config = chime_config_new_from_data (ini, "tools.ini", test_tmpdir (), &error);
  assert_non_null (config);
  model = chime_model_new (config, "m");
  if (model == NULL)
    fail_msg ("%s: [model m] refused:\n%s", p->name, ini);
  chime_model_stream (model, messages, tools, &callbacks, s, NULL);
  g_main_loop_run (s->loop);
  return s;
}

static json_t *
weather_tools (void)
{
  return json_loads ("[{\"name\": \"get_weather\", \"description\": \"The weather in a city\","
                     "  \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
                     "                  \"required\": [\"city\"]}},"
                     " {\"name\": \"get_stock_price\", \"description\": \"A stock's last price\","
                     "  \"parameters\": {\"type\": \"object\", \"properties\": {\"symbol\": {\"type\": \"string\"}}}},"
                     " {\"name\": \"now\"}]", 0, NULL);
}

static json_t *
hello (void)
{
  return json_loads ("[{\"type\": \"human\", \"content\": \"Weather in Paris, and AAPL?\"}]", 0, NULL);
}

/* The second turn of a conversation that called two tools: the model's
 * calls and each tool's result, the second one a failure. */
static json_t *
second_turn (void)
{
  return json_loads ("[{\"type\": \"system\", \"content\": \"Be brief.\"},"
                     " {\"type\": \"human\", \"content\": \"Weather in Paris, and AAPL?\"},"
                     " {\"type\": \"ai\", \"content\": \"\", \"tool_calls\": ["
                     "   {\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}, \"id\": \"call_1\","
                     "    \"type\": \"tool_call\"},"
                     "   {\"name\": \"get_stock_price\", \"args\": {\"symbol\": \"AAPL\"}, \"id\": \"call_2\","
                     "    \"type\": \"tool_call\"}]},"
                     " {\"type\": \"tool\", \"content\": \"18 C, sunny\", \"tool_call_id\": \"call_1\","
                     "  \"name\": \"get_weather\"},"
                     " {\"type\": \"tool\", \"content\": \"market closed\", \"tool_call_id\": \"call_2\","
                     "  \"name\": \"get_stock_price\", \"status\": \"error\"}]", 0, NULL);
}

/* The JSON body of the one request logged with @key. */
static json_t *
request_body (const char *key)
{
  g_autoptr (json_t) requests = server_requests (key);
  const char *body;

  assert_int_equal (json_array_size (requests), 1);
  body = json_string_value (json_object_get (json_array_get (requests, 0), "body"));
  assert_non_null (body);
  return json_loads (body, 0, NULL);
}

static void
assert_json (json_t     *actual,
             const char *expected_text)
{
  g_autoptr (json_t) expected = json_loads (expected_text, 0, NULL);

  assert_non_null (expected);
  if (!json_equal (actual, expected))
    {
      g_autofree char *got = json_dumps (actual, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
      g_autofree char *want = json_dumps (expected, JSON_COMPACT | JSON_SORT_KEYS);

      fail_msg ("got:\n%s\nexpected:\n%s", got, want);
    }
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

static void
test_openai_request (void **state)
{
  g_autoptr (json_t) messages = second_turn ();
  g_autoptr (json_t) tools = weather_tools ();
  g_autoptr (Stream) s = stream_model (&openai, "openai-stream.sse", "tool_choice = get_weather\n",
                                       messages, tools);
  g_autoptr (json_t) body = request_body (s->key);

  assert_null (s->error);
  assert_json (json_object_get (body, "tools"),
               "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
               "   \"description\": \"The weather in a city\", \"parameters\": {\"type\": \"object\","
               "   \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}},"
               " {\"type\": \"function\", \"function\": {\"name\": \"get_stock_price\","
               "   \"description\": \"A stock's last price\", \"parameters\": {\"type\": \"object\","
               "   \"properties\": {\"symbol\": {\"type\": \"string\"}}}}},"
               /* A tool without parameters takes none: an empty object schema. */
               " {\"type\": \"function\", \"function\": {\"name\": \"now\","
               "   \"parameters\": {\"type\": \"object\", \"properties\": {}}}}]");
  assert_json (json_object_get (body, "tool_choice"),
               "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}");
  /* The turn that called tools has no content (null), its calls with
   * their arguments as JSON text; each result answers its call by id. */
  assert_json (json_object_get (body, "messages"),
               "[{\"role\": \"system\", \"content\": \"Be brief.\"},"
               " {\"role\": \"user\", \"content\": \"Weather in Paris, and AAPL?\"},"
               " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": ["
               "   {\"id\": \"call_1\", \"type\": \"function\","
               "    \"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\":\\\"Paris\\\"}\"}},"
               "   {\"id\": \"call_2\", \"type\": \"function\","
               "    \"function\": {\"name\": \"get_stock_price\", \"arguments\": \"{\\\"symbol\\\":\\\"AAPL\\\"}\"}}]},"
               " {\"role\": \"tool\", \"content\": \"18 C, sunny\", \"tool_call_id\": \"call_1\"},"
               " {\"role\": \"tool\", \"content\": \"market closed\", \"tool_call_id\": \"call_2\"}]");
}

static void
test_anthropic_request (void **state)
{
  g_autoptr (json_t) messages = second_turn ();
  g_autoptr (json_t) tools = weather_tools ();
  g_autoptr (Stream) s = stream_model (&anthropic, "anthropic-stream.sse", "tool_choice = required\n",
                                       messages, tools);
  g_autoptr (json_t) body = request_body (s->key);

  assert_null (s->error);
  assert_json (json_object_get (body, "tools"),
               "[{\"name\": \"get_weather\", \"description\": \"The weather in a city\","
               "  \"input_schema\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
               "                   \"required\": [\"city\"]}},"
               " {\"name\": \"get_stock_price\", \"description\": \"A stock's last price\","
               "  \"input_schema\": {\"type\": \"object\", \"properties\": {\"symbol\": {\"type\": \"string\"}}}},"
               " {\"name\": \"now\", \"input_schema\": {\"type\": \"object\", \"properties\": {}}}]");
  /* required is Anthropic's "any". */
  assert_json (json_object_get (body, "tool_choice"), "{\"type\": \"any\"}");
  assert_string_equal (json_string_value (json_object_get (body, "system")), "Be brief.");
  /* The calls are tool_use blocks; both results share the next user
   * turn, the failed one marked is_error. */
  assert_json (json_object_get (body, "messages"),
               "[{\"role\": \"user\", \"content\": \"Weather in Paris, and AAPL?\"},"
               " {\"role\": \"assistant\", \"content\": ["
               "   {\"type\": \"tool_use\", \"id\": \"call_1\", \"name\": \"get_weather\","
               "    \"input\": {\"city\": \"Paris\"}},"
               "   {\"type\": \"tool_use\", \"id\": \"call_2\", \"name\": \"get_stock_price\","
               "    \"input\": {\"symbol\": \"AAPL\"}}]},"
               " {\"role\": \"user\", \"content\": ["
               "   {\"type\": \"tool_result\", \"tool_use_id\": \"call_1\", \"content\": \"18 C, sunny\"},"
               "   {\"type\": \"tool_result\", \"tool_use_id\": \"call_2\", \"content\": \"market closed\","
               "    \"is_error\": true}]}]");
}

/* Each tool_choice in each API's words. */
static void
test_tool_choice_values (void **state)
{
  static const char *const values[] = { "auto", "none", "required", "any", "get_stock_price" };
  static const char *const openai_wire[] = {
    "\"auto\"", "\"none\"", "\"required\"", "\"required\"",
    "{\"type\": \"function\", \"function\": {\"name\": \"get_stock_price\"}}",
  };
  static const char *const anthropic_wire[] = {
    "{\"type\": \"auto\"}", "{\"type\": \"none\"}", "{\"type\": \"any\"}", "{\"type\": \"any\"}",
    "{\"type\": \"tool\", \"name\": \"get_stock_price\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    for (guint v = 0; v < G_N_ELEMENTS (values); v++)
      {
        g_autofree char *extra = g_strdup_printf ("tool_choice = %s\n", values[v]);
        g_autoptr (json_t) messages = hello ();
        g_autoptr (json_t) tools = weather_tools ();
        g_autoptr (Stream) s = stream_model (providers[i], i == 0 ? "openai-stream.sse" : "anthropic-stream.sse",
                                             extra, messages, tools);
        g_autoptr (json_t) body = request_body (s->key);
        g_autoptr (json_t) expected = json_loads (i == 0 ? openai_wire[v] : anthropic_wire[v],
                                                  JSON_DECODE_ANY, NULL);

        assert_null (s->error);
        if (!json_equal (json_object_get (body, "tool_choice"), expected))
          fail_msg ("%s, tool_choice = %s: sent %s", providers[i]->name, values[v],
                    json_dumps (json_object_get (body, "tool_choice"), JSON_ENCODE_ANY));
      }
}

/* No tools offered: neither key is sent, whatever tool_choice says (the
 * APIs refuse a tool_choice without tools). */
static void
test_no_tools_no_keys (void **state)
{
  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      g_autoptr (json_t) messages = hello ();
      g_autoptr (Stream) s = stream_model (providers[i], i == 0 ? "openai-stream.sse" : "anthropic-stream.sse",
                                           "tool_choice = auto\n", messages, NULL);
      g_autoptr (json_t) body = request_body (s->key);

      assert_null (s->error);
      assert_null (json_object_get (body, "tools"));
      assert_null (json_object_get (body, "tool_choice"));
    }
}

/* A wrong tool or a choice naming a tool not offered fails the stream
 * before any request, naming the tool and the section. */
static void
test_bad_tools_refused (void **state)
{
  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      const ProviderCase *p = providers[i];
      g_autoptr (json_t) messages = hello ();
      g_autoptr (json_t) tools = weather_tools ();
      g_autoptr (json_t) nameless = json_loads ("[{\"description\": \"no name\"}]", 0, NULL);
      g_autoptr (Stream) unknown = stream_model (p, "openai-stream.sse", "tool_choice = get_time\n",
                                                 messages, tools);
      g_autoptr (Stream) bad = stream_model (p, "openai-stream.sse", NULL, messages, nameless);
      g_autofree char *expected = g_strdup_printf ("%s: tool_choice = get_time in [model m] names a tool that "
                                                   "is not offered to the model; set it to auto, none, "
                                                   "required or one of the tools' names", p->name);
      g_autofree char *expected_bad = g_strdup_printf ("%s: tool 1 (unnamed) offered to [model m] has no "
                                                       "valid name", p->name);

      assert_non_null (unknown->error);
      assert_string_equal (unknown->error->message, expected);
      assert_non_null (bad->error);
      assert_string_contains (bad->error->message, expected_bad);
      assert_int_equal (count_requests (unknown->key), 0);
      assert_int_equal (count_requests (bad->key), 0);
    }
}

static void
test_tool_choice_key_checked (void **state)
{
  g_autoptr (ChimeConfig) config = chime_config_new_from_data (
      "[model m]\nprovider = openai\nmodel = gpt-x\ntool_choice = get weather\n", "m.ini", test_tmpdir (), NULL);
  g_autoptr (ChimeModel) model = chime_model_new (config, "m");
  g_autoptr (GError) error = NULL;

  assert_null (model);
  assert_false (chime_config_check (config, &error));
  assert_string_contains (error->message, "invalid value for 'tool_choice' in [model m] of m.ini (line 4): "
                                    "expected auto, none, required or the name of a tool");
}

/* ------------------------------------------------------------------ */
/* Assembling                                                         */
/* ------------------------------------------------------------------ */

/* Pieces of parallel calls may interleave, and a later call may start
 * first: the calls come out in index order, each with its own pieces. */
static void
test_interleaved_pieces (void **state)
{
  g_autoptr (ChimeToolCallBuffer) buffer = chime_tool_call_buffer_new ();
  g_autoptr (json_t) calls = NULL;
  g_autoptr (json_t) invalid = NULL;

  assert_null (chime_tool_call_buffer_add (buffer, 1, "call_b", "b", "{\"x\":"));
  assert_null (chime_tool_call_buffer_add (buffer, 0, "call_a", "a", ""));
  assert_null (chime_tool_call_buffer_add (buffer, 1, NULL, NULL, " 2}"));
  assert_null (chime_tool_call_buffer_add (buffer, 0, NULL, NULL, "{\"y\": \"z\"}"));
  /* An id said again (as some OpenAI-compatible servers do) changes nothing. */
  assert_null (chime_tool_call_buffer_add (buffer, 0, "call_a", NULL, NULL));
  chime_tool_call_buffer_finish (buffer, &calls, &invalid);
  assert_null (invalid);
  assert_json (calls, "[{\"name\": \"a\", \"args\": {\"y\": \"z\"}, \"id\": \"call_a\", \"type\": \"tool_call\"},"
                      " {\"name\": \"b\", \"args\": {\"x\": 2}, \"id\": \"call_b\", \"type\": \"tool_call\"}]");
}

/* A reply holds at most CHIME_TOOL_CALLS_MAX calls of at most
 * CHIME_TOOL_CALL_MAX_ARGS bytes of arguments each. */
static void
test_tool_call_bounds (void **state)
{
  g_autoptr (ChimeToolCallBuffer) buffer = chime_tool_call_buffer_new ();
  g_autofree char *big = g_strnfill (CHIME_TOOL_CALL_MAX_ARGS, 'a');
  g_autofree char *too_many = NULL;
  g_autofree char *too_long = NULL;

  for (gint64 i = 0; i < CHIME_TOOL_CALLS_MAX; i++)
    assert_null (chime_tool_call_buffer_add (buffer, i, NULL, "t", "{}"));
  too_many = chime_tool_call_buffer_add (buffer, CHIME_TOOL_CALLS_MAX, NULL, "t", "{}");
  assert_string_equal (too_many, "the model asked for more than 128 tool calls in one reply");
  assert_null (chime_tool_call_buffer_add (buffer, 0, NULL, NULL, big + 2));
  too_long = chime_tool_call_buffer_add (buffer, 0, NULL, NULL, "b");
  assert_string_equal (too_long, "the arguments of tool call 0 (t) are longer than 1048576 bytes");
}

/* ------------------------------------------------------------------ */
/* Streams                                                            */
/* ------------------------------------------------------------------ */

/* The chunks from @from on: (text, tool_call_chunks) as one JSON
 * array of [TEXT, CHUNKS-or-null] pairs, for comparing. */
static json_t *
chunk_pairs (Stream *s,
             gsize   from)
{
  json_t *pairs = json_array ();

  for (gsize i = from; i < json_array_size (s->chunks); i++)
    {
      json_t *chunk = json_array_get (s->chunks, i);
      json_t *pieces = json_object_get (json_object_get (chunk, "chunk"), "tool_call_chunks");

      json_array_append_new (pairs, json_pack ("[O, O]", json_object_get (chunk, "text"),
                                               pieces != NULL ? pieces : json_null ()));
    }
  return pairs;
}

#define PIECE(NAME, ARGS, ID, INDEX) \
  "[{\"name\": " NAME ", \"args\": " ARGS ", \"id\": " ID ", \"index\": " INDEX ", \"type\": \"tool_call_chunk\"}]"

/* Text first, then two parallel calls, their arguments cut into many
 * deltas: each delta is one chunk of no text, the first piece of a call
 * names it, later ones carry only its index and a fragment. The text
 * tokens stay text, and no fragment is ever taken for one: the text
 * ends with "is", as does a fragment of the first call's arguments,
 * and the token fast path must not learn a template from that event
 * (the next fragment, "}, would then pass for a token). */
static void
test_openai_parallel_calls (void **state)
{
  g_autoptr (json_t) messages = hello ();
  g_autoptr (json_t) tools = weather_tools ();
  g_autoptr (Stream) s = stream_model (&openai, "openai-tool-calls-parallel.sse", NULL, messages, tools);
  g_autoptr (json_t) text = chunk_pairs (s, 0);

  assert_null (s->error);
  assert_json (text,
               "[[\"Checking\", null], [\" the\", null], [\" weather\", null], [\" in\", null],"
               " [\" Par\", null], [\"is\", null],"
               " [\"\", " PIECE ("\"get_weather\"", "\"\"", "\"call_weather_01\"", "0") "],"
               " [\"\", " PIECE ("null", "\"{\\\"\"", "null", "0") "],"
               " [\"\", " PIECE ("null", "\"city\"", "null", "0") "],"
               " [\"\", " PIECE ("null", "\"\\\":\\\"\"", "null", "0") "],"
               " [\"\", " PIECE ("null", "\"Par\"", "null", "0") "],"
               " [\"\", " PIECE ("null", "\"is\"", "null", "0") "],"
               " [\"\", " PIECE ("null", "\"\\\"}\"", "null", "0") "],"
               " [\"\", " PIECE ("\"get_stock_price\"", "\"\"", "\"call_stock_02\"", "1") "],"
               " [\"\", " PIECE ("null", "\"{\\\"sym\"", "null", "1") "],"
               " [\"\", " PIECE ("null", "\"bol\\\":\\\"\"", "null", "1") "],"
               " [\"\", " PIECE ("null", "\"AAPL\\\"}\"", "null", "1") "]]");
  assert_json (s->tool_calls,
               "[{\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}, \"id\": \"call_weather_01\","
               "  \"type\": \"tool_call\"},"
               " {\"name\": \"get_stock_price\", \"args\": {\"symbol\": \"AAPL\"}, \"id\": \"call_stock_02\","
               "  \"type\": \"tool_call\"}]");
  assert_null (s->invalid_tool_calls);
  assert_string_equal (json_string_value (json_object_get (s->response_metadata, "finish_reason")), "tool_calls");
}

/* As langchain-anthropic: a tool_use block's start is its call's first
 * chunk (id, name, no arguments yet), each input_json_delta a fragment,
 * the index the content block's. */
static void
test_anthropic_parallel_calls (void **state)
{
  g_autoptr (json_t) messages = hello ();
  g_autoptr (json_t) tools = weather_tools ();
  g_autoptr (Stream) s = stream_model (&anthropic, "anthropic-tool-calls-parallel.sse", NULL, messages, tools);
  g_autoptr (json_t) pairs = chunk_pairs (s, 0);

  assert_null (s->error);
  assert_json (pairs,
               "[[\"I'll\", null], [\" check\", null], [\" both\", null], [\".\", null],"
               " [\"\", " PIECE ("\"get_weather\"", "\"\"", "\"toolu_01Weather\"", "1") "],"
               " [\"\", " PIECE ("null", "\"\"", "null", "1") "],"
               " [\"\", " PIECE ("null", "\"{\\\"city\\\"\"", "null", "1") "],"
               " [\"\", " PIECE ("null", "\": \\\"Par\"", "null", "1") "],"
               " [\"\", " PIECE ("null", "\"is\\\"}\"", "null", "1") "],"
               " [\"\", " PIECE ("\"get_stock_price\"", "\"\"", "\"toolu_02Stock\"", "2") "],"
               " [\"\", " PIECE ("null", "\"{\\\"symbol\\\":\"", "null", "2") "],"
               " [\"\", " PIECE ("null", "\" \\\"AAPL\\\"}\"", "null", "2") "]]");
  assert_json (s->tool_calls,
               "[{\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}, \"id\": \"toolu_01Weather\","
               "  \"type\": \"tool_call\"},"
               " {\"name\": \"get_stock_price\", \"args\": {\"symbol\": \"AAPL\"}, \"id\": \"toolu_02Stock\","
               "  \"type\": \"tool_call\"}]");
  assert_null (s->invalid_tool_calls);
  assert_string_equal (json_string_value (json_object_get (s->response_metadata, "stop_reason")), "tool_use");
}

/* Arguments that are not a JSON object are an invalid call with the
 * reason, beside the valid ones; the stream itself succeeds. */
static void
test_malformed_arguments (void **state)
{
  const char *fixtures[] = { "openai-tool-calls-malformed.sse", "anthropic-tool-calls-malformed.sse" };
  const char *bad_ids[][2] = { { "call_bad_01", "call_list_03" }, { "toolu_01Bad", "toolu_03List" } };
  const char *truncated[] = { "{\"city\": \"Par", "{\"city\": " };
  const char *ok_ids[] = { "call_ok_02", "toolu_02Ok" };

  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      g_autoptr (json_t) messages = hello ();
      g_autoptr (json_t) tools = weather_tools ();
      g_autoptr (Stream) s = stream_model (providers[i], fixtures[i], NULL, messages, tools);
      json_t *first, *second;

      assert_null (s->error);
      assert_int_equal (json_array_size (s->tool_calls), 1);
      assert_string_equal (json_string_value (json_object_get (json_array_get (s->tool_calls, 0), "id")),
                           ok_ids[i]);
      assert_int_equal (json_array_size (s->invalid_tool_calls), 2);
      first = json_array_get (s->invalid_tool_calls, 0);
      second = json_array_get (s->invalid_tool_calls, 1);
      assert_string_equal (json_string_value (json_object_get (first, "type")), "invalid_tool_call");
      assert_string_equal (json_string_value (json_object_get (first, "id")), bad_ids[i][0]);
      assert_string_equal (json_string_value (json_object_get (first, "name")), "get_weather");
      /* The raw text, as the model sent it. */
      assert_string_equal (json_string_value (json_object_get (first, "args")), truncated[i]);
      assert_string_contains (json_string_value (json_object_get (first, "error")),
                              "the arguments of tool call 'get_weather' are not valid JSON (");
      assert_string_equal (json_string_value (json_object_get (second, "id")), bad_ids[i][1]);
      assert_string_equal (json_string_value (json_object_get (second, "args")), "[1, 2]");
      assert_string_equal (json_string_value (json_object_get (second, "error")),
                           "the arguments of tool call 'get_weather' are JSON but not an object");
    }
}

/* Through a pipeline: each piece reaches handlers as an llm_new_token
 * of no text whose chunk carries it, and the calls are on the
 * AIMessage of llm_end. */
static void
test_pieces_reach_handlers (void **state)
{
  g_autoptr (Case) c = case_new (&openai, &(CaseSpec) { .fixture = "openai-tool-calls-parallel.sse" });
  g_autoptr (json_t) tokens = NULL;
  json_t *message, *piece;

  run_case (c);
  assert_succeeded (c);
  tokens = trace_events (c, "llm_new_token");
  assert_int_equal (json_array_size (tokens), 6 + 7 + 4);
  piece = json_object_get (json_object_get (json_object_get (json_array_get (tokens, 6), "chunk"), "message"),
                           "tool_call_chunks");
  assert_string_equal (json_string_value (json_object_get (json_array_get (tokens, 6), "token")), "");
  assert_json (piece, PIECE ("\"get_weather\"", "\"\"", "\"call_weather_01\"", "0"));
  message = llm_result_message (json_object_get (c->result, "llm_result"));
  assert_string_equal (json_string_value (json_object_get (message, "content")), "Checking the weather in Paris");
  assert_int_equal (json_array_size (json_object_get (message, "tool_calls")), 2);
  assert_string_equal (json_string_value (json_object_get (json_array_get (json_object_get (message, "tool_calls"), 1),
                                                           "name")), "get_stock_price");
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_openai_request),
    cmocka_unit_test (test_anthropic_request),
    cmocka_unit_test (test_tool_choice_values),
    cmocka_unit_test (test_no_tools_no_keys),
    cmocka_unit_test (test_bad_tools_refused),
    cmocka_unit_test (test_tool_choice_key_checked),
    cmocka_unit_test (test_interleaved_pieces),
    cmocka_unit_test (test_tool_call_bounds),
    cmocka_unit_test (test_openai_parallel_calls),
    cmocka_unit_test (test_anthropic_parallel_calls),
    cmocka_unit_test (test_malformed_arguments),
    cmocka_unit_test (test_pieces_reach_handlers),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
