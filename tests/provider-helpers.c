/* Helpers shared by the provider tests: see provider-helpers.h. */
#include "provider-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* The mock server                                                    */
/* ------------------------------------------------------------------ */

json_t *
llm_result_message (json_t *result)
{
  json_t *generations = json_object_get (result, "generations");

  return json_object_get (json_array_get (json_array_get (generations, 0), 0), "message");
}

MockServer server;

static int
start_server (void **state)
{
  g_autofree char *log_path = test_path ("requests.jsonl");
  const char *args[] = { "--fixture-dir", FIXTURE_DIR, "--log", log_path, NULL };

  server.process = test_mock_server_start (MOCK_SERVER_PATH, args, &server.port);
  server.log_path = g_steal_pointer (&log_path);
  return 0;
}

static int
stop_server (void **state)
{
  test_mock_server_stop (&server.process);
  g_clear_pointer (&server.log_path, g_free);
  return 0;
}

json_t *
server_requests (const char *key)
{
  g_auto (GStrv) lines = test_read_lines (server.log_path);
  json_t *requests = json_array ();

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (json_t) request = json_loads (lines[i], 0, NULL);
      json_t *headers = json_object_get (request, "headers");

      if (g_strcmp0 (json_string_value (json_object_get (headers, "x-mock-key")), key) == 0)
        json_array_append (requests, request);
    }
  return requests;
}

gsize
count_requests (const char *key)
{
  g_autoptr (json_t) requests = server_requests (key);

  return json_array_size (requests);
}

/* ------------------------------------------------------------------ */
/* What each provider's fixture holds                                 */
/* ------------------------------------------------------------------ */

static const char *const openai_tokens[] = { "I'm", " unable", " app", ".", NULL };
static const char *const anthropic_tokens[] = { "Hello", " there", "!", NULL };

const ProviderCase openai = {
  .name = "openai",
  .path = "/v1",
  .model = "gpt-4o-mini",
  .tokens = openai_tokens,
  .model_name = "gpt-4o-2024-08-06",
  .id = "chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL",
  .finish_key = "finish_reason",
  .finish_value = "stop",
  .input_tokens = 14, .output_tokens = 30, .total_tokens = 44,
  .rate_limit = "openai: HTTP 429 rate_limit_exceeded: Rate limit reached for gpt-4o-mini",
  .error_event = "openai: the stream reported an error: server_error: The server had an error "
                 "while processing your request.",
  .terminator = "(data: [DONE])",
  .two_tokens_arg = "3",
  .key_header = "authorization",
};

const ProviderCase anthropic = {
  .name = "anthropic",
  .path = "",
  .model = "claude-sonnet-4-5",
  .tokens = anthropic_tokens,
  .model_name = "claude-3-opus-latest",
  .id = "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK",
  .finish_key = "stop_reason",
  .finish_value = "end_turn",
  .input_tokens = 11, .output_tokens = 6, .total_tokens = 17,
  .rate_limit = "anthropic: HTTP 429 rate_limit_error: Number of requests has exceeded your rate limit.",
  .error_event = "anthropic: the stream reported an error: overloaded_error: Overloaded",
  .terminator = "(message_stop)",
  .two_tokens_arg = "5",
  .key_header = "x-api-key",
};

const ProviderCase *const providers[] = { &openai, &anthropic };

/* ------------------------------------------------------------------ */
/* Pipelines                                                          */
/* ------------------------------------------------------------------ */

void
case_free (Case *c)
{
  g_free (c->label);
  g_free (c->mock_key);
  g_free (c->recorder_log);
  g_free (c->trace);
  g_free (c->ini);
  g_clear_object (&c->cancellable);
  g_clear_pointer (&c->result, json_decref);
  g_clear_error (&c->error);
  g_free (c);
}

Case *
case_new (const ProviderCase *provider,
          const CaseSpec     *spec)
{
  static guint counter;
  Case *c = g_new0 (Case, 1);
  g_autoptr (json_t) header_list = json_array ();
  g_autofree char *headers = NULL;
  g_autofree char *base_url = NULL;
  guint n = ++counter;

  c->provider = provider;
  c->label = g_strdup_printf ("%s %s %s", provider->name, spec->scenario ? spec->scenario : "ok",
                              spec->arg ? spec->arg : "");
  c->mock_key = g_strdup_printf ("case-%u-%s", n, provider->name);
  c->recorder_log = test_path (c->mock_key);
  c->trace = g_strdup_printf ("%s.jsonl", c->recorder_log);
  /* A JSON array, so that an X-Mock-Arg may hold quotes (patch). */
  json_array_append_new (header_list, json_sprintf ("X-Mock-Key: %s", c->mock_key));
  if (spec->scenario != NULL)
    json_array_append_new (header_list, json_sprintf ("X-Mock-Scenario: %s", spec->scenario));
  if (spec->arg != NULL)
    json_array_append_new (header_list, json_sprintf ("X-Mock-Arg: %s", spec->arg));
  if (spec->fixture != NULL)
    json_array_append_new (header_list, json_sprintf ("X-Mock-Fixture: %s", spec->fixture));
  if (spec->header != NULL)
    json_array_append_new (header_list, json_string (spec->header));
  {
    char *text = json_dumps (header_list, JSON_COMPACT);

    headers = g_strdup (text);
    free (text);
  }
  base_url = spec->base_url != NULL ? g_strdup (spec->base_url)
                                    : g_strdup_printf ("http://127.0.0.1:%u%s", server.port, provider->path);
  c->ini = g_strdup_printf ("[runtime]\nthreads = 1\n%s\n\n"
                            "[pipeline]\nsystem = Be brief.\nprompt = Say hello\nmodel = m\n\n"
                            "[model m]\nprovider = %s\nmodel = %s\nbase_url = %s\n"
                            "api_key_env = " API_KEY_ENV "\nheaders = %s\n%s%s\n\n"
                            "[handler rec]\nplugin = recorder_sync\nlog = %s\n%s\n\n"
                            "[handler trace]\nplugin = jsonl\npath = %s\n",
                            spec->runtime ? spec->runtime : "",
                            provider->name, provider->model, base_url, headers,
                            spec->model_extra ? spec->model_extra : "",
                            spec->model_extra && strstr (spec->model_extra, "timeout_s =") ? "" : "timeout_s = 5\n",
                            c->recorder_log, spec->recorder ? spec->recorder : "", c->trace);
  return c;
}

typedef struct {
  GMainLoop *loop;
  guint      pending;
} Waiter;

typedef struct {
  Waiter *waiter;
  Case   *c;
} Running;

static void
on_case_done (json_t  *result,
              GError  *error,
              gpointer data)
{
  Running *running = data;
  Case *c = running->c;

  c->result = result;
  c->error = error;
  c->elapsed = (g_get_monotonic_time () - c->started) / (gdouble) G_USEC_PER_SEC;
  if (--running->waiter->pending == 0)
    g_main_loop_quit (running->waiter->loop);
  g_free (running);
}

static gboolean
cancel_case (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

void
run_cases (Case **cases,
           guint  n)
{
  g_autoptr (GPtrArray) pipelines = g_ptr_array_new_with_free_func ((GDestroyNotify) chime_pipeline_free);
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GHashTable) variables = g_hash_table_new (g_str_hash, g_str_equal);
  Waiter waiter = { loop, n };

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *dir = g_path_get_dirname (cases[i]->recorder_log);
      ChimePipeline *pipeline = chime_pipeline_new_from_data (cases[i]->ini, "case.ini", dir, NULL, NULL, &error);

      if (pipeline == NULL)
        fail_msg ("%s: %s\n%s", cases[i]->label, error->message, cases[i]->ini);
      g_ptr_array_add (pipelines, pipeline);
    }
  for (guint i = 0; i < n; i++)
    {
      Running *running = g_new0 (Running, 1);

      running->waiter = &waiter;
      running->c = cases[i];
      cases[i]->started = g_get_monotonic_time ();
      if (cases[i]->cancel_after_ms > 0)
        {
          cases[i]->cancellable = g_cancellable_new ();
          g_timeout_add (cases[i]->cancel_after_ms, cancel_case, cases[i]->cancellable);
        }
      chime_pipeline_run_async (g_ptr_array_index (pipelines, i), variables, cases[i]->cancellable,
                                on_case_done, running);
    }
  g_main_loop_run (loop);
}

void
run_case (Case *c)
{
  run_cases (&c, 1);
}

char **
recorded_tokens (Case *c)
{
  g_auto (GStrv) lines = test_read_lines (c->recorder_log);
  g_autoptr (GStrvBuilder) tokens = g_strv_builder_new ();
  const char *prefix = "rec llm_new_token ";

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      g_strv_builder_add (tokens, lines[i] + strlen (prefix));
  return g_strv_builder_end (tokens);
}

guint
count_events (Case       *c,
              const char *event)
{
  g_auto (GStrv) lines = test_read_lines (c->recorder_log);
  g_autofree char *prefix = g_strdup_printf ("rec %s ", event);
  guint count = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      count++;
  return count;
}

json_t *
trace_events (Case       *c,
              const char *event)
{
  g_auto (GStrv) lines = test_read_lines (c->trace);
  json_t *events = json_array ();

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (json_t) object = json_loads (lines[i], 0, NULL);

      if (g_strcmp0 (json_string_value (json_object_get (object, "event")), event) == 0)
        json_array_append (events, object);
    }
  return events;
}

void
assert_tokens (Case              *c,
               const char *const *expected,
               guint              n)
{
  g_auto (GStrv) tokens = recorded_tokens (c);

  if (g_strv_length (tokens) != n)
    fail_msg ("%s: %u tokens instead of %u", c->label, g_strv_length (tokens), n);
  for (guint i = 0; i < n; i++)
    if (!g_str_equal (tokens[i], expected[i]))
      fail_msg ("%s: token %u is '%s', not '%s'", c->label, i, tokens[i], expected[i]);
}

void
assert_failed_with (Case       *c,
                    const char *message)
{
  if (c->error == NULL)
    fail_msg ("%s: succeeded, expected \"%s\"", c->label, message);
  if (!g_error_matches (c->error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL))
    fail_msg ("%s: %s (%s %d)", c->label, c->error->message, g_quark_to_string (c->error->domain),
              c->error->code);
  if (strstr (c->error->message, message) == NULL)
    fail_msg ("%s: expected \"%s\" in:\n%s", c->label, message, c->error->message);
  /* The handlers were told, with the same message. */
  if (count_events (c, "llm_error") != 1 || count_events (c, "llm_end") != 0)
    fail_msg ("%s: %u llm_error and %u llm_end events", c->label, count_events (c, "llm_error"),
              count_events (c, "llm_end"));
}

void
assert_succeeded (Case *c)
{
  if (c->error != NULL)
    fail_msg ("%s: %s", c->label, c->error->message);
  assert_non_null (c->result);
}

void
assert_requests (Case *c,
                 gsize expected)
{
  gsize n = count_requests (c->mock_key);

  if (n != expected)
    fail_msg ("%s: %zu requests reached the server instead of %zu", c->label, n, expected);
  if (count_events (c, "retry") + 1 != expected)
    fail_msg ("%s: %u retry events for %zu requests", c->label, count_events (c, "retry"), expected);
}

void
case_replace (Case       *c,
              const char *from,
              const char *to)
{
  g_auto (GStrv) parts = g_strsplit (c->ini, from, 2);

  assert_int_equal (g_strv_length (parts), 2);
  g_free (c->ini);
  c->ini = g_strjoinv (to, parts);
}

void
assert_fixture_result (Case *c)
{
  const ProviderCase *p = c->provider;
  json_t *message = llm_result_message (json_object_get (c->result, "llm_result"));
  json_t *metadata = json_object_get (message, "response_metadata");
  json_t *usage = json_object_get (message, "usage_metadata");
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; p->tokens[i] != NULL; i++)
    g_string_append (text, p->tokens[i]);
  assert_string_equal (json_string_value (json_object_get (c->result, "output")), text->str);
  assert_string_equal (json_string_value (json_object_get (message, "content")), text->str);
  assert_string_equal (json_string_value (json_object_get (metadata, "model_name")), p->model_name);
  assert_string_equal (json_string_value (json_object_get (metadata, "id")), p->id);
  assert_string_equal (json_string_value (json_object_get (metadata, p->finish_key)), p->finish_value);
  assert_int_equal (json_integer_value (json_object_get (usage, "input_tokens")), p->input_tokens);
  assert_int_equal (json_integer_value (json_object_get (usage, "output_tokens")), p->output_tokens);
  assert_int_equal (json_integer_value (json_object_get (usage, "total_tokens")), p->total_tokens);
  assert_true (json_is_object (json_object_get (usage, "input_token_details")));
}

/* ------------------------------------------------------------------ */

int
provider_tests_run (const struct CMUnitTest *tests,
                    gsize                    n_tests)
{
  /* The test recorders, and the uninstalled shipped plugins (jsonl). */
  test_set_plugin_path (SHIPPED_PLUGIN_DIR);
  g_setenv (API_KEY_ENV, API_KEY, TRUE);
  /* Requests to 127.0.0.1 must not go through a proxy of the machine. */
  g_setenv ("NO_PROXY", "*", TRUE);
  g_setenv ("no_proxy", "*", TRUE);
  return test_run_group_with_fixtures ("providers", tests, n_tests, start_server, stop_server);
}
