/* The otlp plugin's spans, as a collector decodes them: one span per run,
 * ids derived from the run ids, one trace per root run, the GenAI
 * attributes of a chat model, tool and error spans, retries as events,
 * content only on request, both encodings (protobuf decoded by protobuf-c
 * and by protobufjs, JSON by jansson, checked against the proto3
 * mapping), gzip, and the OTEL_* environment. The plugin is the built
 * module, loaded by a runtime; the collector is tests/otlp-receiver.c on
 * a real loopback socket. */
#include "otlp-helpers.h"
#include "shipped-helpers.h"

#include <string.h>

#define SECRET "sk-test-SECRET-otlp-7f3a"

/* A runtime with the otlp handler; @extra adds lines to its section. */
static ChimeRuntime *
otlp_runtime (const char *extra)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler otlp]\nplugin = otlp\nschedule_delay_ms = 50\n%s\n",
                                            extra);

  if (runtime == NULL)
    fail_msg ("%s", error->message);
  return runtime;
}

/* Root > chat model "gpt-4o-mini" (openai's invocation params, a usage, a
 * finish reason) and Root > tool "search", each ending well. */
static void
emit_agent_run (ChimeRuntime *runtime)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  g_autoptr (json_t) messages = test_messages ("system", "be brief", "human", "what is " SECRET "?", NULL);
  g_autoptr (json_t) kwargs = json_pack ("{s:{s:s, s:s, s:b, s:f, s:i, s:[s], s:s}}", "invocation_params",
                                         "_type", "openai-chat", "model", "gpt-4o-mini", "stream", 1,
                                         "temperature", 0.25, "max_tokens", 256, "stop", "END",
                                         "base_url", "https://api.openai.com/v1");
  g_autoptr (json_t) usage = usage_metadata (14, 30, 4, 0);
  g_autoptr (json_t) result = llm_result ("Hello", "gpt-4o-2024-08-06", usage);
  g_autoptr (json_t) outputs = json_pack ("{s:s}", "output", "done");
  g_autoptr (json_t) tool_output = json_string ("42 results");
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (ChimeRun) tool = NULL;
  json_t *metadata = json_object_get (json_object_get (json_array_get (json_array_get (
                                        json_object_get (result, "generations"), 0), 0), "message"),
                                      "response_metadata");

  json_object_set_new (metadata, "id", json_string ("chatcmpl-123"));
  json_object_set_new (metadata, "finish_reason", json_string ("stop"));
  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Agent", NULL, &error);
  assert_null (error);
  child = chime_run_get_child (chain, NULL);
  llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "ChatOpenAI", kwargs, &error);
  assert_null (error);
  assert_true (chime_run_on_llm_new_token (llm, "Hello", NULL, &error));
  assert_true (chime_run_on_llm_end (llm, result, &error));
  tool = chime_callback_manager_on_tool_start (child, NULL, "query=" SECRET, NULL, "search", &error);
  assert_null (error);
  assert_true (chime_run_on_tool_end (tool, tool_output, &error));
  assert_true (chime_run_on_chain_end (chain, outputs, &error));
}

static void
assert_chat_span (json_t *span)
{
  json_t *reasons = otlp_attribute (span, "gen_ai.response.finish_reasons");
  json_t *stop = otlp_attribute (span, "gen_ai.request.stop_sequences");

  assert_int_equal (json_integer_value (json_object_get (span, "kind")), 3);
  assert_string_equal (otlp_string_attribute (span, "gen_ai.operation.name"), "chat");
  assert_string_equal (otlp_string_attribute (span, "gen_ai.provider.name"), "openai");
  assert_string_equal (otlp_string_attribute (span, "gen_ai.request.model"), "gpt-4o-mini");
  assert_true (json_is_true (otlp_attribute (span, "gen_ai.request.stream")));
  assert_true (json_real_value (otlp_attribute (span, "gen_ai.request.temperature")) == 0.25);
  assert_int_equal (otlp_int_attribute (span, "gen_ai.request.max_tokens"), 256);
  assert_int_equal (json_array_size (stop), 1);
  assert_string_equal (json_string_value (json_array_get (stop, 0)), "END");
  assert_string_equal (otlp_string_attribute (span, "gen_ai.response.id"), "chatcmpl-123");
  assert_string_equal (otlp_string_attribute (span, "gen_ai.response.model"), "gpt-4o-2024-08-06");
  assert_int_equal (json_array_size (reasons), 1);
  assert_string_equal (json_string_value (json_array_get (reasons, 0)), "stop");
  assert_int_equal (otlp_int_attribute (span, "gen_ai.usage.input_tokens"), 14);
  assert_int_equal (otlp_int_attribute (span, "gen_ai.usage.output_tokens"), 30);
  assert_int_equal (otlp_int_attribute (span, "gen_ai.usage.cache_read.input_tokens"), 4);
  assert_true (json_is_real (otlp_attribute (span, "gen_ai.response.time_to_first_chunk")));
  assert_string_equal (otlp_string_attribute (span, "server.address"), "api.openai.com");
  assert_int_equal (otlp_int_attribute (span, "server.port"), 443);
  assert_int_equal (json_integer_value (json_object_get (json_object_get (span, "status"), "code")), 0);
  /* Content is opt-in. */
  assert_null (otlp_attribute (span, "gen_ai.input.messages"));
  assert_null (otlp_attribute (span, "gen_ai.output.messages"));
}

/* What both encodings must give for two agent runs. */
static json_t *
two_agent_runs (OtlpReceiver *receiver,
                const char *extra)
{
  ChimeRuntime *runtime = otlp_runtime (extra);
  json_t *spans;

  emit_agent_run (runtime);
  emit_agent_run (runtime);
  /* The last exports are done within the shutdown. */
  chime_runtime_unref (runtime);
  spans = otlp_receiver_spans (receiver);
  assert_int_equal (json_array_size (spans), 6);
  otlp_assert_run_tree (spans, 2);
  return spans;
}

static void
assert_agent_spans (json_t *spans)
{
  json_t *span;
  size_t i;
  guint chats = 0, tools = 0;

  json_array_foreach (spans, i, span)
    {
      const char *name = json_string_value (json_object_get (span, "name"));

      if (strcmp (name, "chat gpt-4o-mini") == 0)
        {
          assert_chat_span (span);
          chats++;
        }
      else if (strcmp (name, "execute_tool search") == 0)
        {
          assert_string_equal (otlp_string_attribute (span, "gen_ai.operation.name"), "execute_tool");
          assert_string_equal (otlp_string_attribute (span, "gen_ai.tool.name"), "search");
          assert_null (otlp_attribute (span, "gen_ai.tool.call.arguments"));
          assert_int_equal (json_integer_value (json_object_get (span, "kind")), 1);
          tools++;
        }
      else
        assert_string_equal (name, "Agent");
    }
  assert_int_equal (chats, 2);
  assert_int_equal (tools, 2);
}

static void
test_protobuf_spans (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *extra = g_strdup_printf ("endpoint = %s", otlp_receiver_get_url (receiver));
  g_autoptr (json_t) spans = two_agent_runs (receiver, extra);
  g_autoptr (json_t) requests = otlp_receiver_requests (receiver);
  json_t *first = json_array_get (requests, 0);

  assert_agent_spans (spans);
  assert_string_equal (json_string_value (json_object_get (first, "content_type")), "application/x-protobuf");
  assert_true (g_str_has_prefix (json_string_value (json_object_get (first, "user_agent")), "chime-otlp/"));
  assert_string_equal (json_string_value (json_object_get (json_object_get (first, "resource"), "service.name")),
                       "chime");
  assert_string_equal (json_string_value (json_object_get (json_object_get (first, "scope"), "name")), "chime.otlp");
  assert_string_equal (json_string_value (json_object_get (json_object_get (first, "scope"), "version")),
                       CHIME_VERSION_STRING);
  otlp_assert_no_secret (requests, SECRET);
  otlp_assert_protobufjs_agrees (requests);
}

static void
test_json_spans (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *extra = g_strdup_printf ("endpoint = %s\nprotocol = http/json",
                                            otlp_receiver_get_url (receiver));
  g_autoptr (json_t) spans = two_agent_runs (receiver, extra);
  g_autoptr (json_t) requests = otlp_receiver_requests (receiver);
  json_t *request;
  size_t i;

  assert_agent_spans (spans);
  json_array_foreach (requests, i, request)
    {
      g_autofree char *problems = json_dumps (json_object_get (request, "problems"), JSON_COMPACT);

      assert_string_equal (json_string_value (json_object_get (request, "content_type")), "application/json");
      /* Hex ids, integer enums, 64-bit integers as strings. */
      assert_string_equal (problems, "[]");
    }
  otlp_assert_no_secret (requests, SECRET);
}

static void
test_content_is_opt_in (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *extra = g_strdup_printf ("endpoint = %s\ncapture_content = true",
                                            otlp_receiver_get_url (receiver));
  ChimeRuntime *runtime = otlp_runtime (extra);
  g_autoptr (json_t) spans = NULL;
  g_autoptr (json_t) input = NULL;
  json_t *chat, *tool;

  emit_agent_run (runtime);
  chime_runtime_unref (runtime);
  spans = otlp_receiver_spans (receiver);
  chat = otlp_span_named (spans, "chat gpt-4o-mini");
  input = json_loads (otlp_string_attribute (chat, "gen_ai.input.messages"), 0, NULL);
  assert_string_equal (json_string_value (json_object_get (json_array_get (input, 1), "role")), "user");
  assert_string_equal (json_string_value (json_object_get (json_array_get (json_object_get (
                         json_array_get (input, 1), "parts"), 0), "content")), "what is " SECRET "?");
  assert_non_null (strstr (otlp_string_attribute (chat, "gen_ai.output.messages"), "Hello"));
  tool = otlp_span_named (spans, "execute_tool search");
  assert_string_equal (otlp_string_attribute (tool, "gen_ai.tool.call.arguments"), "query=" SECRET);
  assert_string_equal (otlp_string_attribute (tool, "gen_ai.tool.call.result"), "\"42 results\"");
}

/* Root > chat model "FakeChat" that fails after one retry. */
static void
emit_failing_run (ChimeRuntime *runtime)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                    "openai: HTTP 429 rate_limit_exceeded: slow down");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (json_t) retry = json_pack ("{s:i, s:s, s:s, s:f, s:i}", "attempt", 1, "exception",
                                        "openai: HTTP 429 rate_limit_exceeded", "exception_type", "RateLimitError",
                                        "upcoming_sleep", 0.5, "status", 429);
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) llm = NULL;

  chain = chime_callback_manager_on_chain_start (manager, NULL, NULL, "Root", NULL, &error);
  assert_null (error);
  child = chime_run_get_child (chain, NULL);
  llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "FakeChat", NULL, &error);
  assert_null (error);
  assert_true (chime_run_on_retry (llm, retry, &error));
  assert_true (chime_run_on_llm_error (llm, failure, NULL, &error));
  assert_true (chime_run_on_chain_error (chain, failure, &error));
}

/* The retry is an event, the failure the status, error.type and an
 * exception event, on the model's span and on its chain's. */
static void
test_errors_and_retries (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *extra = g_strdup_printf ("endpoint = %s", otlp_receiver_get_url (receiver));
  ChimeRuntime *runtime = otlp_runtime (extra);
  g_autoptr (json_t) spans = NULL;
  json_t *chat, *root, *exception, *retry_event;

  emit_failing_run (runtime);
  chime_runtime_unref (runtime);

  spans = otlp_receiver_spans (receiver);
  otlp_assert_run_tree (spans, 1);
  chat = otlp_span_named (spans, "chat FakeChat");
  assert_int_equal (json_integer_value (json_object_get (json_object_get (chat, "status"), "code")), 2);
  assert_string_equal (json_string_value (json_object_get (json_object_get (chat, "status"), "message")),
                       "openai: HTTP 429 rate_limit_exceeded: slow down");
  assert_string_equal (otlp_string_attribute (chat, "error.type"), "429");
  assert_int_equal (json_array_size (json_object_get (chat, "events")), 2);
  retry_event = json_array_get (json_object_get (chat, "events"), 0);
  assert_string_equal (json_string_value (json_object_get (retry_event, "name")), "retry");
  assert_int_equal (json_integer_value (json_object_get (json_object_get (retry_event, "attributes"),
                                                         "chime.retry.attempt")), 1);
  exception = json_array_get (json_object_get (chat, "events"), 1);
  assert_string_equal (json_string_value (json_object_get (exception, "name")), "exception");
  assert_string_equal (json_string_value (json_object_get (json_object_get (exception, "attributes"),
                                                           "exception.message")),
                       "openai: HTTP 429 rate_limit_exceeded: slow down");
  root = otlp_span_named (spans, "Root");
  assert_int_equal (json_integer_value (json_object_get (json_object_get (root, "status"), "code")), 2);
}

/* Settings from the environment as an OTel SDK takes them: the base
 * endpoint gets /v1/traces, headers, service name and resource
 * attributes, gzip. */
static void
test_environment (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *base = g_strndup (otlp_receiver_get_url (receiver),
                                     strlen (otlp_receiver_get_url (receiver)) - strlen ("/v1/traces"));
  g_autoptr (json_t) requests = NULL;
  json_t *first, *resource;
  ChimeRuntime *runtime;

  g_setenv ("OTEL_EXPORTER_OTLP_ENDPOINT", base, TRUE);
  g_setenv ("OTEL_SERVICE_NAME", "my-agent", TRUE);
  g_setenv ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=a%20b", TRUE);
  g_setenv ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=" SECRET ",x-tenant=t1", TRUE);
  g_setenv ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", TRUE);
  runtime = otlp_runtime ("");
  emit_agent_run (runtime);
  chime_runtime_unref (runtime);

  requests = otlp_receiver_requests (receiver);
  first = json_array_get (requests, 0);
  assert_non_null (first);
  assert_string_equal (json_string_value (json_object_get (first, "path")), "/v1/traces");
  assert_string_equal (json_string_value (json_object_get (first, "content_encoding")), "gzip");
  assert_string_equal (json_string_value (json_object_get (json_object_get (first, "headers"), "x-tenant")), "t1");
  resource = json_object_get (first, "resource");
  assert_string_equal (json_string_value (json_object_get (resource, "service.name")), "my-agent");
  assert_string_equal (json_string_value (json_object_get (resource, "team")), "a b");
  assert_string_equal (json_string_value (json_object_get (resource, "deployment.environment")), "test");
  assert_int_equal (json_array_size (json_object_get (first, "spans")), 3);
}

/* A wrong setting is refused with its name, before any run. */
static void
test_bad_settings (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;

  g_setenv ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign", TRUE);
  runtime = test_runtime_new (&error, "[handler otlp]\nplugin = otlp\n");
  assert_null (runtime);
  assert_non_null (strstr (error->message, "OTEL_EXPORTER_OTLP_HEADERS: \"no-equals-sign\" is not key=value"));
  g_unsetenv ("OTEL_EXPORTER_OTLP_HEADERS");
  g_clear_error (&error);
  runtime = test_runtime_new (&error, "[handler otlp]\nplugin = otlp\nendpoint = ftp://x\n");
  assert_null (runtime);
  assert_non_null (strstr (error->message, "key 'endpoint': \"ftp://x\" is not an http:// or https:// URL"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_protobuf_spans, otlp_setup_receiver, otlp_teardown_receiver),
    cmocka_unit_test_setup_teardown (test_json_spans, otlp_setup_receiver, otlp_teardown_receiver),
    cmocka_unit_test_setup_teardown (test_content_is_opt_in, otlp_setup_receiver, otlp_teardown_receiver),
    cmocka_unit_test_setup_teardown (test_errors_and_retries, otlp_setup_receiver, otlp_teardown_receiver),
    cmocka_unit_test_setup_teardown (test_environment, otlp_setup_receiver, otlp_teardown_receiver),
    cmocka_unit_test_setup_teardown (test_bad_settings, otlp_setup_receiver, otlp_teardown_receiver),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
