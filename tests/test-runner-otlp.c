/* `chime run` with the otlp handler, as a user runs it: the installed
 * binary and plugin, real models (OpenAI and Anthropic on the mock LLM
 * server, the fake model, a fake model that fails) and a loopback OTLP
 * receiver (tests/otlp-receiver.c). The spans carry what the API said
 * (model, id, usage, finish reason, server), failures are ERROR spans,
 * the API key is nowhere in the export, and the run's output and exit
 * status are what they are without the handler. */
#include "otlp-helpers.h"
#include "runner-helpers.h"

#include <string.h>

typedef struct {
  const char *name;
  const char *config;            /* tests/examples/NAME */
  const char *key_env;
  const char *request_model;
  const char *response_model;
  gint64      input_tokens, output_tokens;
  const char *finish_reason;
} Provider;

static const Provider openai = {
  "openai", "openai-mock.ini", "OPENAI_API_KEY", "gpt-4o-mini", "gpt-4o-2024-08-06", 14, 30, "stop",
};
static const Provider anthropic = {
  "anthropic", "anthropic-mock.ini", "ANTHROPIC_API_KEY", "claude-sonnet-4-5", "claude-3-opus-latest", 11, 6,
  "end_turn",
};

#define HEADERS_LINE "headers = [\"X-Mock-Scenario: ok\"]"

/* The test configuration @name in @dir with an otlp handler sending to
 * @receiver; MOCK_PORT becomes the mock server's port. */
static char *
otlp_config (const char   *dir,
             const char   *name,
             OtlpReceiver *receiver,
             const char   *mock_key)
{
  g_autofree char *relative = g_build_filename ("tests", "examples", name, NULL);
  g_autofree char *text = read_source_file (relative);
  g_autoptr (GString) config = g_string_new (text);
  g_autofree char *port = NULL;
  g_autofree char *headers = NULL;

  if (strstr (text, "MOCK_PORT") != NULL)
    {
      port = g_strdup_printf ("%u", mock_port ());
      headers = g_strdup_printf ("headers = [\"X-Mock-Key: %s\", \"X-Mock-Scenario: ok\"]", mock_key);
      g_string_replace (config, "MOCK_PORT", port, 0);
      g_string_replace (config, HEADERS_LINE, headers, 0);
    }
  g_string_append_printf (config, "\n[handler otlp]\nplugin = otlp\nendpoint = %s\n",
                          otlp_receiver_get_url (receiver));
  return write_in (dir, name, config->str);
}

/* Runs @name with the otlp handler; the spans the receiver got. */
static json_t *
run_traced (OtlpReceiver *receiver,
            const char   *name,
            const char   *key_setting,
            int           expected_status)
{
  g_autofree char *dir = fresh_dir (name);
  g_autofree char *mock_key = g_strdup_printf ("otlp-%s", name);
  g_autofree char *config = otlp_config (dir, name, receiver, mock_key);
  const char *env[] = { key_setting, NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = key_setting != NULL ? env : NULL };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (json_t) requests = otlp_receiver_requests (receiver);

  assert_status (result, expected_status);
  /* The report, one line at the end of the run. */
  assert_non_null (strstr (result->err, "otlp (otlp): "));
  assert_non_null (strstr (result->err, "spans exported, 0 dropped"));
  assert_non_null (strstr (result->err, ", 0 failed"));
  otlp_assert_no_secret (requests, MOCK_API_KEY);
  assert_no_secret ("stderr", result->err);
  return otlp_receiver_spans (receiver);
}

static void
check_provider (const Provider *provider)
{
  g_autoptr (OtlpReceiver) receiver = otlp_receiver_new ();
  g_autofree char *key = g_strdup_printf ("%s=%s", provider->key_env, MOCK_API_KEY);
  g_autofree char *name = g_strdup_printf ("chat %s", provider->request_model);
  g_autoptr (json_t) spans = run_traced (receiver, provider->config, key, 0);
  json_t *chat = otlp_span_named (spans, name);
  json_t *reasons = otlp_attribute (chat, "gen_ai.response.finish_reasons");

  /* The pipeline, its prompt, model and parser. */
  assert_int_equal (json_array_size (spans), 4);
  otlp_assert_run_tree (spans, 1);
  assert_int_equal (json_integer_value (json_object_get (chat, "kind")), 3);
  assert_string_equal (otlp_string_attribute (chat, "gen_ai.provider.name"), provider->name);
  assert_string_equal (otlp_string_attribute (chat, "gen_ai.request.model"), provider->request_model);
  assert_string_equal (otlp_string_attribute (chat, "gen_ai.response.model"), provider->response_model);
  assert_true (strlen (otlp_string_attribute (chat, "gen_ai.response.id")) > 0);
  assert_int_equal (otlp_int_attribute (chat, "gen_ai.usage.input_tokens"), provider->input_tokens);
  assert_int_equal (otlp_int_attribute (chat, "gen_ai.usage.output_tokens"), provider->output_tokens);
  assert_string_equal (json_string_value (json_array_get (reasons, 0)), provider->finish_reason);
  assert_true (json_is_true (otlp_attribute (chat, "gen_ai.request.stream")));
  assert_true (json_real_value (otlp_attribute (chat, "gen_ai.response.time_to_first_chunk")) > 0);
  assert_string_equal (otlp_string_attribute (chat, "server.address"), "127.0.0.1");
  assert_int_equal (otlp_int_attribute (chat, "server.port"), mock_port ());
  otlp_assert_protobufjs_agrees (otlp_receiver_requests (receiver));
}

static void
test_openai (void **state)
{
  check_provider (&openai);
}

static void
test_anthropic (void **state)
{
  check_provider (&anthropic);
}

static void
test_fake_model (void **state)
{
  g_autoptr (OtlpReceiver) receiver = otlp_receiver_new ();
  g_autoptr (json_t) spans = run_traced (receiver, "events.ini", NULL, 0);
  json_t *span;
  size_t i;
  guint chats = 0;

  otlp_assert_run_tree (spans, 1);
  /* The pipeline's name and tags, on its span. */
  span = otlp_span_named (spans, "JokeChain");
  assert_string_equal (json_string_value (json_array_get (otlp_attribute (span, "chime.run.tags"), 0)), "joke");
  json_array_foreach (spans, i, span)
    if (g_str_has_prefix (json_string_value (json_object_get (span, "name")), "chat "))
      {
        assert_string_equal (json_string_value (json_object_get (span, "name")), "chat fake-claude-3-sonnet");
        assert_string_equal (otlp_string_attribute (span, "gen_ai.provider.name"), "fake");
        assert_int_equal (json_integer_value (json_object_get (json_object_get (span, "status"), "code")), 0);
        chats++;
      }
  assert_int_equal (chats, 1);
}

/* The model fails: its span and the pipeline's are ERROR, with the
 * error's message; the run fails as it would without the handler. */
static void
test_failing_model (void **state)
{
  g_autoptr (OtlpReceiver) receiver = otlp_receiver_new ();
  g_autoptr (json_t) spans = run_traced (receiver, "failing-model.ini", NULL, 1);
  json_t *span;
  size_t i;
  guint errors = 0;

  otlp_assert_run_tree (spans, 1);
  json_array_foreach (spans, i, span)
    {
      const char *name = json_string_value (json_object_get (span, "name"));
      json_t *status = json_object_get (span, "status");

      if (g_str_has_prefix (name, "chat ") || strcmp (name, "RunnableSequence") == 0)
        {
          assert_int_equal (json_integer_value (json_object_get (status, "code")), 2);
          assert_true (strlen (json_string_value (json_object_get (status, "message"))) > 0);
          assert_non_null (otlp_attribute (span, "error.type"));
          assert_string_equal (json_string_value (json_object_get (json_array_get (
                                 json_object_get (span, "events"), 0), "name")), "exception");
          errors++;
        }
    }
  assert_int_equal (errors, 2);
}

/* `chime check` starts and stops the handler without a run: no export,
 * no report line. */
static void
test_check_is_silent (void **state)
{
  g_autoptr (OtlpReceiver) receiver = otlp_receiver_new ();
  g_autofree char *dir = fresh_dir ("check-otlp");
  g_autofree char *config = otlp_config (dir, "events.ini", receiver, NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "check", config, NULL);
  g_autoptr (json_t) requests = otlp_receiver_requests (receiver);

  assert_status (result, 0);
  assert_null (strstr (result->err, "spans exported"));
  assert_int_equal (json_array_size (requests), 0);
}

/* ------------------------------------------------------------------
 * The docs' snippets, run as written
 * ---------------------------------------------------------------- */

/* The collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
static char *
endpoint_setting (OtlpReceiver *receiver)
{
  const char *url = otlp_receiver_get_url (receiver);

  return g_strdup_printf ("OTEL_EXPORTER_OTLP_ENDPOINT=%.*s", (int) (strlen (url) - strlen ("/v1/traces")), url);
}

/* The README's three lines: the first starts a collector (Jaeger, on
 * localhost:4318); here the receiver is the collector, and
 * OTEL_EXPORTER_OTLP_ENDPOINT says where it listens. The other two run
 * as written, in a shell, with the installed chime on the PATH. */
static void
test_readme_snippet (void **state)
{
  g_autoptr (OtlpReceiver) receiver = otlp_receiver_new ();
  g_autofree char *readme = read_source_file ("README.md");
  g_auto (GStrv) lines = doc_block (readme, "## Send your runs to", "sh", "plugin = otlp");
  g_autofree char *dir = fresh_dir ("readme-otlp");
  g_autofree char *examples = g_build_filename (dir, "examples", NULL);
  g_autofree char *seed = read_source_file ("examples/seed.ini");
  g_autofree char *bindir = installed (BINDIR, "");
  g_autofree char *path = g_strdup_printf ("PATH=%s:%s", bindir, g_getenv ("PATH"));
  g_autofree char *endpoint = endpoint_setting (receiver);
  g_autofree char *script = NULL;
  const char *env[] = { path, endpoint, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) spans = NULL;
  g_autoptr (json_t) requests = NULL;

  assert_int_equal (g_strv_length (lines), 3);
  assert_true (g_str_has_prefix (lines[0], "docker run"));
  g_mkdir_with_parents (examples, 0755);
  g_free (write_in (examples, "seed.ini", seed));
  script = g_strdup_printf ("set -e\n%s\n%s\n", lines[1], lines[2]);
  result = run_argv (&options, (const char *[]) { "sh", "-c", script, NULL });
  assert_status (result, 0);
  spans = otlp_receiver_spans (receiver);
  otlp_assert_run_tree (spans, 1);
  assert_int_equal (json_array_size (spans), 4);
  requests = otlp_receiver_requests (receiver);
  assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (requests, 0), "resource"),
                                                           "service.name")), "chime");
}

/* docs/plugins.md's otlp section, pointed at the receiver instead of
 * localhost:4318, on a pipeline of the fake model. */
static void
test_plugins_doc_section (void **state)
{
  g_autoptr (OtlpReceiver) receiver = otlp_receiver_new ();
  g_autofree char *doc = read_source_file ("docs/plugins.md");
  g_auto (GStrv) lines = doc_block (doc, "## otlp", "ini", "plugin = otlp");
  g_autofree char *section = g_strjoinv ("\n", lines);
  g_autoptr (GString) config = g_string_new ("[pipeline]\nprompt = Tell me a joke\nmodel = joker\n"
                                             "[model joker]\nprovider = fake\n");
  g_autofree char *dir = fresh_dir ("doc-otlp");
  g_autofree char *path = NULL;
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) spans = NULL;

  g_string_append (config, section);
  if (g_string_replace (config, "http://localhost:4318/v1/traces", otlp_receiver_get_url (receiver), 0) != 1)
    fail_msg ("the section does not name http://localhost:4318/v1/traces:\n%s", section);
  path = write_in (dir, "doc.ini", config->str);
  result = run_chime_in (dir, "run", path, NULL);
  assert_status (result, 0);
  spans = otlp_receiver_spans (receiver);
  otlp_assert_run_tree (spans, 1);
  assert_non_null (otlp_span_named (spans, "chat fake-chat-model"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_openai),
    cmocka_unit_test (test_anthropic),
    cmocka_unit_test (test_fake_model),
    cmocka_unit_test (test_failing_model),
    cmocka_unit_test (test_check_is_silent),
    cmocka_unit_test (test_readme_snippet),
    cmocka_unit_test (test_plugins_doc_section),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
