/* The real providers through the installed binary, on the mock LLM
 * server: the streamed tokens, the result and its metadata, the API's
 * errors quoted after the retries, a missing key, and the key never
 * anywhere but on the wire.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------
 * Real providers through the installed binary
 * ---------------------------------------------------------------- */

/* What each provider's fixture holds (tests/fixtures), and how its errors
 * are quoted. */
typedef struct {
  const char        *name;
  const char        *config;        /* tests/examples/NAME: the template */
  const char        *key_env;
  const char *const *tokens;
  const char        *model_name;    /* response_metadata.model_name */
  const char        *finish_key;
  const char        *finish_value;
  gint64             input_tokens, output_tokens, total_tokens;
  const char        *quote_429, *quote_500, *quote_401;
  /* The model run's ls_* metadata, as JSON (tests/examples/NAME sets it;
   * Anthropic's max_tokens is always sent, 1024 by default, as
   * LangChain's ChatAnthropic). */
  const char        *ls_params;
} MockProvider;

static const char *const openai_tokens[] = { "I'm", " unable", " app", ".", NULL };
static const char *const anthropic_tokens[] = { "Hello", " there", "!", NULL };

static const MockProvider mock_openai = {
  .name = "openai",
  .config = "openai-mock.ini",
  .key_env = "OPENAI_API_KEY",
  .tokens = openai_tokens,
  .model_name = "gpt-4o-2024-08-06",
  .finish_key = "finish_reason",
  .finish_value = "stop",
  .input_tokens = 14, .output_tokens = 30, .total_tokens = 44,
  .quote_429 = "openai: HTTP 429 rate_limit_exceeded: Rate limit reached for gpt-4o-mini",
  .quote_500 = "openai: HTTP 500 server_error: The server had an error while processing your request.",
  .quote_401 = "openai: HTTP 401 invalid_api_key: Incorrect API key provided.",
  .ls_params = "{\"ls_provider\": \"openai\", \"ls_model_name\": \"gpt-4o-mini\", \"ls_model_type\": \"chat\", "
               "\"ls_temperature\": 0.5, \"ls_max_tokens\": 256, \"ls_stop\": [\"Human:\"]}",
};

static const MockProvider mock_anthropic = {
  .name = "anthropic",
  .config = "anthropic-mock.ini",
  .key_env = "ANTHROPIC_API_KEY",
  .tokens = anthropic_tokens,
  .model_name = "claude-3-opus-latest",
  .finish_key = "stop_reason",
  .finish_value = "end_turn",
  .input_tokens = 11, .output_tokens = 6, .total_tokens = 17,
  .quote_429 = "anthropic: HTTP 429 rate_limit_error: Number of requests has exceeded your rate limit.",
  .quote_500 = "anthropic: HTTP 500 api_error: Internal server error",
  .quote_401 = "anthropic: HTTP 401 authentication_error: invalid x-api-key",
  .ls_params = "{\"ls_provider\": \"anthropic\", \"ls_model_name\": \"claude-sonnet-4-5\", "
               "\"ls_model_type\": \"chat\", \"ls_temperature\": 0.25, \"ls_max_tokens\": 1024}",
};

#define MOCK_HEADERS_LINE "headers = [\"X-Mock-Scenario: ok\"]"

/* The provider's test configuration in @dir, pointed at the mock server,
 * its requests tagged with @mock_key and given @scenario (NULL: ok) and
 * @arg (NULL: none). */
static char *
mock_config (const char         *dir,
             const MockProvider *provider,
             const char         *mock_key,
             const char         *scenario,
             const char         *arg)
{
  g_autofree char *relative = g_build_filename ("tests", "examples", provider->config, NULL);
  g_autofree char *text = read_source_file (relative);
  g_autofree char *port = g_strdup_printf ("%u", mock_port ());
  g_autofree char *with_port = replace_all (text, "MOCK_PORT", port);
  g_autofree char *headers = g_strdup_printf ("headers = [\"X-Mock-Key: %s\", \"X-Mock-Scenario: %s\"%s%s%s]",
                                              mock_key, scenario != NULL ? scenario : "ok",
                                              arg != NULL ? ", \"X-Mock-Arg: " : "",
                                              arg != NULL ? arg : "", arg != NULL ? "\"" : "");
  g_autofree char *final = replace_all (with_port, MOCK_HEADERS_LINE, headers);

  return write_in (dir, provider->config, final);
}

/* "OPENAI_API_KEY=sk-test-..." for the provider. */
static char *
key_setting (const MockProvider *provider)
{
  return g_strdup_printf ("%s=%s", provider->key_env, MOCK_API_KEY);
}

static void
assert_ls_params (const MockProvider *provider,
                  json_t             *metadata)
{
  g_autoptr (json_t) expected = json_loads (provider->ls_params, 0, NULL);
  g_autoptr (json_t) ls = json_object ();
  const char *key;
  json_t *value;

  assert_non_null (expected);
  json_object_foreach (metadata, key, value)
    if (g_str_has_prefix (key, "ls_"))
      json_object_set (ls, key, value);
  if (!json_equal (ls, expected))
    {
      g_autofree char *text = json_dumps (ls, JSON_COMPACT);
      fail_msg ("%s: ls_* metadata %s, expected %s", provider->name, text, provider->ls_params);
    }
}

static void
check_provider_run (const MockProvider *provider)
{
  g_autofree char *dir = fresh_dir (provider->name);
  g_autofree char *mock_key = g_strdup_printf ("runner-%s-ok", provider->name);
  g_autofree char *config = mock_config (dir, provider, mock_key, NULL, NULL);
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *setting = key_setting (provider);
  const char *env[] = { setting, NULL };
  const char *args[] = { "run", config, "--events", events_path, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autofree char *expected = g_strjoinv ("", (char **) provider->tokens);
  g_autofree char *events_text = read_text (events_path);
  g_autoptr (json_t) json = NULL;
  g_autoptr (json_t) events = NULL;
  g_autoptr (GPtrArray) streamed = g_ptr_array_new ();
  json_t *message, *usage, *metadata;
  gsize i;
  json_t *event;

  assert_status (result, 0);
  assert_string_equal (result->err, "");
  json = find_result (result->out);
  assert_non_null (json);
  assert_string_equal (json_string_value (json_object_get (json, "output")), expected);
  assert_string_equal (json_string_value (json_object_get (json_object_get (json, "llm_result"), "type")),
                       "LLMResult");

  /* What the API said about the call. */
  message = result_message (json);
  assert_string_equal (json_string_value (json_object_get (message, "content")), expected);
  usage = json_object_get (message, "usage_metadata");
  assert_int_equal (json_integer_value (json_object_get (usage, "input_tokens")), provider->input_tokens);
  assert_int_equal (json_integer_value (json_object_get (usage, "output_tokens")), provider->output_tokens);
  assert_int_equal (json_integer_value (json_object_get (usage, "total_tokens")), provider->total_tokens);
  metadata = json_object_get (message, "response_metadata");
  assert_string_equal (json_string_value (json_object_get (metadata, "model_name")), provider->model_name);
  assert_string_equal (json_string_value (json_object_get (metadata, provider->finish_key)),
                       provider->finish_value);

  /* The tokens reached the handlers one by one, in order; every event of
   * the model's run has its ls_* metadata, exactly the keys that are set. */
  events = read_json_lines (events_path);
  json_array_foreach (events, i, event)
    if (g_str_has_prefix (json_string_value (json_object_get (event, "event")), "on_chat_model_"))
      assert_ls_params (provider, json_object_get (event, "metadata"));
  json_array_foreach (events, i, event)
    if (g_str_equal (json_string_value (json_object_get (event, "event")), "on_chat_model_stream"))
      g_ptr_array_add (streamed, (gpointer) json_string_value (json_object_get (
                         json_object_get (json_object_get (event, "data"), "chunk"), "content")));
  assert_int_equal (streamed->len, g_strv_length ((char **) provider->tokens));
  for (guint t = 0; t < streamed->len; t++)
    if (g_strcmp0 (streamed->pdata[t], provider->tokens[t]) != 0)
      fail_msg ("%s: streamed token %u is '%s', expected '%s'", provider->name, t,
                (const char *) streamed->pdata[t], provider->tokens[t]);
  assert_int_equal (count_events (events, "on_chat_model_end"), 1);

  assert_int_equal (mock_count_requests (mock_key), 1);
  assert_no_secret ("stdout", result->out);
  assert_no_secret ("stderr", result->err);
  assert_no_secret ("the --events file", events_text);
}

static void
test_openai_run (void **state)
{
  check_provider_run (&mock_openai);
}

static void
test_anthropic_run (void **state)
{
  check_provider_run (&mock_anthropic);
}

/* How many "retrying in" lines @err has. */
static guint
count_retries_said (const char *err)
{
  guint n = 0;

  for (const char *at = strstr (err, "; retrying in "); at != NULL; at = strstr (at + 1, "; retrying in "))
    n++;
  return n;
}

/* One failing run: exit 1, the API's error quoted on stderr, after
 * @requests requests, and the key nowhere but on the wire. */
static void
check_provider_error (const MockProvider *provider,
                      const char         *status,
                      const char         *quote,
                      guint               requests)
{
  g_autofree char *dir = fresh_dir ("provider-error");
  g_autofree char *mock_key = g_strdup_printf ("runner-%s-%s", provider->name, status);
  g_autofree char *config = mock_config (dir, provider, mock_key, "status", status);
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *setting = key_setting (provider);
  const char *env[] = { setting, NULL };
  const char *args[] = { "run", config, "--events", events_path, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autofree char *events_text = read_text (events_path);
  g_autofree char *http_status = g_strdup_printf ("HTTP %s", status);
  g_autofree char *attempts = g_strdup_printf ("(gave up after %u attempts)", requests);

  assert_status (result, 1);
  assert_null (find_result (result->out));
  assert_string_contains (result->err, http_status);
  assert_string_contains (result->err, quote);
  if (requests > 1)
    {
      assert_string_contains (result->err, attempts);
      /* Each retry is said as it happens, not only the giving up. */
      assert_int_equal (count_retries_said (result->err), requests - 1);
    }
  else
    assert_null (strstr (result->err, "attempts"));
  assert_int_equal (mock_count_requests (mock_key), requests);
  /* The handlers heard of the failure too. */
  assert_non_null (events_text);
  assert_string_contains (events_text, "\"on_chat_model_start\"");
  assert_no_secret ("stdout", result->out);
  assert_no_secret ("stderr", result->err);
  assert_no_secret ("the --events file", events_text);
}

static void
test_provider_errors (void **state)
{
  const MockProvider *const providers[] = { &mock_openai, &mock_anthropic };

  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      /* 429 and 500 are retried max_retries (2) times, 401 never. */
      check_provider_error (providers[i], "429", providers[i]->quote_429, 3);
      check_provider_error (providers[i], "500", providers[i]->quote_500, 3);
      check_provider_error (providers[i], "401", providers[i]->quote_401, 1);
    }
}

/* Without a key the run stops before any request, naming the variable
 * (not a value). */
static void
test_provider_missing_key (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-key");
  g_autofree char *config = mock_config (dir, &mock_openai, "runner-no-key", NULL, NULL);
  const char *env[] = { "OPENAI_API_KEY", NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 1);
  assert_string_contains (result->err, "openai: no API key: set OPENAI_API_KEY (api_key_env)");
  assert_int_equal (mock_count_requests ("runner-no-key"), 0);
}

/* An api_key_file every user can read works, with a warning that says
 * how to fix it, once; one only its owner reads gets none. */
static void
test_provider_key_file_mode (void **state)
{
  const mode_t modes[] = { 0644, 0600 };

  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autofree char *dir = fresh_dir ("key-file-mode");
      g_autofree char *mock_key = g_strdup_printf ("runner-key-mode-%u", i);
      g_autofree char *config = mock_config (dir, &mock_openai, mock_key, NULL, NULL);
      g_autofree char *text = read_text (config);
      g_autofree char *with_file = g_strconcat (text, "api_key_file = key.txt\n", NULL);
      g_autofree char *key = write_in (dir, "key.txt", MOCK_API_KEY "\n");
      const char *env[] = { "OPENAI_API_KEY", NULL };
      const char *args[] = { "run", config, NULL };
      RunOptions options = { .cwd = dir, .env = env };
      g_autoptr (RunResult) result = NULL;

      g_free (write_in (dir, mock_openai.config, with_file));
      assert_int_equal (chmod (key, modes[i]), 0);
      result = run_chime_argv (&options, args);
      assert_status (result, 0);
      if (modes[i] == 0644)
        {
          assert_string_contains (result->err, "chime: warning: ");
          assert_string_contains (result->err, "key.txt (api_key_file in [model gpt]) can be read by every "
                                               "user of this machine (mode 0644): run chmod 600 ");
        }
      else
        assert_null (strstr (result->err, "can be read by every user"));
      assert_no_secret ("stderr", result->err);
    }
}

/* ------------------------------------------------------------------
 * The HTTP module: loaded by the first request, not at start-up
 * ---------------------------------------------------------------- */

/* A fake-model run loads neither the HTTP module nor libcurl and its TLS
 * stack; a run of an HTTP provider loads them, at its first request. */
static void
test_http_module_loaded_on_first_request (void **state)
{
  g_autofree char *dir = fresh_dir ("http-module");
  g_autofree char *fake = write_in (dir, "fake.ini",
                                    "[pipeline]\nprompt = hi\nmodel = m\n"
                                    "[model m]\nprovider = fake\nchunks = [\"a\", \"b\"]\n");
  g_autofree char *config = mock_config (dir, &mock_openai, "runner-http-module", NULL, NULL);
  g_autofree char *setting = key_setting (&mock_openai);
  const char *env[] = { setting, "LD_DEBUG=files", NULL };
  const char *fake_args[] = { "run", fake, NULL };
  const char *http_args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) fake_run = run_chime_argv (&options, fake_args);
  g_autoptr (RunResult) http_run = run_chime_argv (&options, http_args);

  assert_status (fake_run, 0);
  assert_false (run_opened (fake_run, "libcurl"));
  assert_false (run_opened (fake_run, "libgnutls"));
  assert_false (run_opened (fake_run, "chime-http-curl"));
  assert_status (http_run, 0);
  assert_true (run_opened (http_run, "libcurl"));
  assert_string_contains (http_run->err, "/chime/chime-http-curl.so [0];  dynamically loaded by");
  assert_int_equal (mock_count_requests ("runner-http-module"), 1);
}

/* Without the module, a request fails at once, saying why and how to fix
 * it, and is not retried. */
static void
test_http_module_missing (void **state)
{
  g_autofree char *dir = fresh_dir ("http-module-missing");
  g_autofree char *config = mock_config (dir, &mock_openai, "runner-http-missing", NULL, NULL);
  g_autofree char *setting = key_setting (&mock_openai);
  g_autofree char *module = g_build_filename (dir, "nowhere", "chime-http-curl.so", NULL);
  g_autofree char *module_setting = g_strdup_printf ("CHIME_HTTP_MODULE=%s", module);
  const char *env[] = { setting, module_setting, NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 1);
  assert_string_contains (result->err, "HTTP is not available: chime's HTTP module did not load (");
  assert_string_contains (result->err, module);
  assert_string_contains (result->err, "install chime completely, or set CHIME_HTTP_MODULE to the "
                                       "path of chime-http-curl.so");
  assert_null (strstr (result->err, "retry"));
  assert_int_equal (mock_count_requests ("runner-http-missing"), 0);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_openai_run),
    cmocka_unit_test (test_anthropic_run),
    cmocka_unit_test (test_provider_errors),
    cmocka_unit_test (test_provider_missing_key),
    cmocka_unit_test (test_provider_key_file_mode),
    cmocka_unit_test (test_http_module_loaded_on_first_request),
    cmocka_unit_test (test_http_module_missing),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
