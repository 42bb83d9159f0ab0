/* The OpenAI and Anthropic providers end to end: whole pipelines from INI
 * text, run on a GMainLoop against the mock LLM server over real
 * sockets, with the recorder and jsonl handlers writing what the
 * handlers saw. Every fault scenario of the server, for each provider:
 * the replayed tokens and the LLMResult metadata, errors quoted from the
 * API, retries (how many requests reached the server, the retry events,
 * the delays), timeouts, truncated streams, back-pressure, cancellation,
 * secrets kept out of everything produced, and batch runs. */
#include "test-helpers.h"

#include "pipeline/batch.h"
#include "http/http-client.h"
#include "providers/model.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline-error.h"
#include "providers/provider-common.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#define API_KEY_ENV "CHIME_TEST_API_KEY"
#define API_KEY "sk-chime-test-7f3a9c41-d0e2-SECRET"

/* ------------------------------------------------------------------ */
/* The mock server                                                    */
/* ------------------------------------------------------------------ */

typedef struct {
  GSubprocess *process;
  guint        port;
  char        *log_path;
} MockServer;

/* The AIMessage of an LLMResult (borrowed). */
static json_t *
llm_result_message (json_t *result)
{
  json_t *generations = json_object_get (result, "generations");

  return json_object_get (json_array_get (json_array_get (generations, 0), 0), "message");
}

static MockServer server;

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

/* The requests the server logged with X-Mock-Key @key, oldest first. */
static json_t *
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

static gsize
count_requests (const char *key)
{
  g_autoptr (json_t) requests = server_requests (key);

  return json_array_size (requests);
}

/* A port nothing listens on: bound, then closed again. */
static guint
closed_port (void)
{
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  assert_true (g_socket_bind (socket, any, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  g_socket_close (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* ------------------------------------------------------------------ */
/* What each provider's fixture holds                                 */
/* ------------------------------------------------------------------ */

typedef struct {
  const char        *name;
  const char        *path;            /* base_url path before the endpoint */
  const char        *model;
  const char *const *tokens;          /* the fixture's tokens */
  const char        *model_name;      /* response_metadata.model_name */
  const char        *id;
  const char        *finish_key;      /* finish_reason or stop_reason */
  const char        *finish_value;
  gint64             input_tokens, output_tokens, total_tokens;
  const char        *rate_limit;      /* how a 429 is quoted */
  const char        *error_event;     /* how the error-event is quoted */
  const char        *terminator;
  /* Events to send so that exactly two tokens got through first. */
  const char        *two_tokens_arg;
  const char        *key_header;      /* the request header with the key */
} ProviderCase;

static const char *const openai_tokens[] = { "I'm", " unable", " app", ".", NULL };
static const char *const anthropic_tokens[] = { "Hello", " there", "!", NULL };

static const ProviderCase openai = {
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

static const ProviderCase anthropic = {
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

static const ProviderCase *const providers[] = { &openai, &anthropic };

/* ------------------------------------------------------------------ */
/* Pipelines                                                          */
/* ------------------------------------------------------------------ */

typedef struct {
  const ProviderCase *provider;
  char               *label;         /* for failure messages */
  char               *mock_key;
  char               *recorder_log;
  char               *trace;
  char               *ini;
  GCancellable       *cancellable;
  guint               cancel_after_ms;
  /* The outcome. */
  json_t             *result;
  GError             *error;
  gdouble             elapsed;
  gint64              started;
} Case;

typedef struct {
  const char *scenario;       /* X-Mock-Scenario, NULL for none */
  const char *arg;            /* X-Mock-Arg, NULL for none */
  const char *model_extra;    /* more lines for [model m] */
  const char *runtime;        /* lines for [runtime] */
  const char *recorder;       /* more lines for the recorder */
  const char *base_url;       /* instead of the mock server's */
  const char *fixture;        /* X-Mock-Fixture, NULL for the default */
} CaseSpec;

static void
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Case, case_free)

static Case *
case_new (const ProviderCase *provider,
          const CaseSpec     *spec)
{
  static guint counter;
  Case *c = g_new0 (Case, 1);
  g_autoptr (GString) headers = g_string_new (NULL);
  g_autofree char *base_url = NULL;
  guint n = ++counter;

  c->provider = provider;
  c->label = g_strdup_printf ("%s %s %s", provider->name, spec->scenario ? spec->scenario : "ok",
                              spec->arg ? spec->arg : "");
  c->mock_key = g_strdup_printf ("case-%u-%s", n, provider->name);
  c->recorder_log = test_path (c->mock_key);
  c->trace = g_strdup_printf ("%s.jsonl", c->recorder_log);
  g_string_append_printf (headers, "[\"X-Mock-Key: %s\"", c->mock_key);
  if (spec->scenario != NULL)
    g_string_append_printf (headers, ", \"X-Mock-Scenario: %s\"", spec->scenario);
  if (spec->arg != NULL)
    g_string_append_printf (headers, ", \"X-Mock-Arg: %s\"", spec->arg);
  if (spec->fixture != NULL)
    g_string_append_printf (headers, ", \"X-Mock-Fixture: %s\"", spec->fixture);
  g_string_append (headers, "]");
  base_url = spec->base_url != NULL ? g_strdup (spec->base_url)
                                    : g_strdup_printf ("http://127.0.0.1:%u%s", server.port, provider->path);
  c->ini = g_strdup_printf ("[runtime]\nthreads = 1\n%s\n\n"
                            "[pipeline]\nsystem = Be brief.\nprompt = Say hello\nmodel = m\n\n"
                            "[model m]\nprovider = %s\nmodel = %s\nbase_url = %s\n"
                            "api_key_env = " API_KEY_ENV "\nheaders = %s\n%s%s\n\n"
                            "[handler rec]\nplugin = recorder_sync\nlog = %s\n%s\n\n"
                            "[handler trace]\nplugin = jsonl\npath = %s\n",
                            spec->runtime ? spec->runtime : "",
                            provider->name, provider->model, base_url, headers->str,
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
on_case_done (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  Running *running = data;
  Case *c = running->c;

  c->result = chime_pipeline_run_finish (NULL, result, &c->error);
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

/* Runs every case at once on one loop and waits for all; the pipelines
 * are freed afterwards, so that every handler has written everything. */
static void
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

static void
run_case (Case *c)
{
  run_cases (&c, 1);
}

/* The tokens the recorder saw, in order. */
static char **
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

static guint
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

/* The events of the jsonl trace named @event, as JSON. */
static json_t *
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

static void
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

static void
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

static void
assert_succeeded (Case *c)
{
  if (c->error != NULL)
    fail_msg ("%s: %s", c->label, c->error->message);
  assert_non_null (c->result);
}

/* @expected requests reached the server, and the handlers saw one retry
 * event before each but the first. */
static void
assert_requests (Case *c,
                 gsize expected)
{
  gsize n = count_requests (c->mock_key);

  if (n != expected)
    fail_msg ("%s: %zu requests reached the server instead of %zu", c->label, n, expected);
  if (count_events (c, "retry") + 1 != expected)
    fail_msg ("%s: %u retry events for %zu requests", c->label, count_events (c, "retry"), expected);
}

/* Replaces the first @from in the case's INI text. */
static void
case_replace (Case       *c,
              const char *from,
              const char *to)
{
  g_auto (GStrv) parts = g_strsplit (c->ini, from, 2);

  assert_int_equal (g_strv_length (parts), 2);
  g_free (c->ini);
  c->ini = g_strjoinv (to, parts);
}

/* ------------------------------------------------------------------ */
/* The replayed fixtures                                              */
/* ------------------------------------------------------------------ */

static void
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

static void
test_replay (void **state)
{
  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      const ProviderCase *p = providers[i];
      g_autoptr (Case) c = case_new (p, &(CaseSpec) { .model_extra = "temperature = 0.5\n"
                                                                      "stop = [\"\\n\\n\", \"END\"]\n"
                                                                      "extra_body = {\"top_p\": 0.25}\n" });
      g_autoptr (json_t) requests = NULL;
      g_autoptr (json_t) body = NULL;
      g_autoptr (json_t) ends = NULL;
      json_t *headers, *usage, *result_usage;

      run_case (c);
      assert_succeeded (c);
      assert_tokens (c, p->tokens, g_strv_length ((char **) p->tokens));
      assert_fixture_result (c);
      assert_requests (c, 1);

      /* The llm_end event carries the same LLMResult. */
      ends = trace_events (c, "llm_end");
      assert_int_equal (json_array_size (ends), 1);
      usage = json_object_get (llm_result_message (json_object_get (json_array_get (ends, 0),
                                                                              "response")),
                               "usage_metadata");
      assert_int_equal (json_integer_value (json_object_get (usage, "total_tokens")), p->total_tokens);

      /* What went over the wire. */
      requests = server_requests (c->mock_key);
      headers = json_object_get (json_array_get (requests, 0), "headers");
      body = json_loads (json_string_value (json_object_get (json_array_get (requests, 0), "body")), 0, NULL);
      assert_non_null (body);
      assert_string_equal (json_string_value (json_object_get (body, "model")), p->model);
      assert_true (json_is_true (json_object_get (body, "stream")));
      assert_true (json_real_value (json_object_get (body, "top_p")) == 0.25);
      assert_true (json_real_value (json_object_get (body, "temperature")) == 0.5);
      assert_string_equal (json_string_value (json_object_get (headers, "accept")), "text/event-stream");
      if (p == &openai)
        {
          assert_string_equal (json_string_value (json_object_get (headers, "authorization")),
                               "Bearer " API_KEY);
          assert_true (json_is_true (json_object_get (json_object_get (body, "stream_options"),
                                                      "include_usage")));
          assert_string_equal (json_string_value (json_object_get (json_array_get (
                                 json_object_get (body, "messages"), 0), "role")), "system");
          assert_string_equal (json_string_value (json_array_get (json_object_get (body, "stop"), 0)),
                               "\n\n");
          /* completion_tokens_details.reasoning_tokens, as LangChain maps it. */
          result_usage = json_object_get (llm_result_message (json_object_get (c->result, "llm_result")),
                                          "usage_metadata");
          assert_true (json_is_integer (json_object_get (json_object_get (result_usage, "output_token_details"),
                                                         "reasoning")));
        }
      else
        {
          assert_string_equal (json_string_value (json_object_get (headers, "x-api-key")), API_KEY);
          assert_string_equal (json_string_value (json_object_get (headers, "anthropic-version")),
                               "2023-06-01");
          assert_int_equal (json_integer_value (json_object_get (body, "max_tokens")), 1024);
          /* chime's system message becomes the top-level system. */
          assert_string_equal (json_string_value (json_object_get (body, "system")), "Be brief.");
          assert_int_equal (json_array_size (json_object_get (body, "messages")), 1);
          assert_string_equal (json_string_value (json_array_get (json_object_get (body, "stop_sequences"), 1)),
                               "END");
        }
    }
}

/* ------------------------------------------------------------------ */
/* Token templates                                                    */
/* ------------------------------------------------------------------ */

#define TPL_PREFIX "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
#define TPL_SUFFIX "},\"finish_reason\":null}]}"

static const char *
template_match (ChimeTokenTemplate *template,
                const char         *data)
{
  return chime_token_template_match (template, "message", data, strlen (data));
}

static void
test_token_template_unit (void **state)
{
  g_autoptr (ChimeTokenTemplate) template = chime_token_template_new ();
  const char *learned = TPL_PREFIX "\"Hi\"" TPL_SUFFIX;
  const char *refused[] = {
    TPL_PREFIX "\"\"" TPL_SUFFIX,                         /* empty: the provider sends no token */
    TPL_PREFIX "\"a\\u0000b\"" TPL_SUFFIX,                /* jansson refuses NUL */
    TPL_PREFIX "\"\\ud800\"" TPL_SUFFIX,                  /* lone surrogate */
    TPL_PREFIX "\"\\udc00\\ud800\"" TPL_SUFFIX,           /* pair in the wrong order */
    TPL_PREFIX "\"a\tb\"" TPL_SUFFIX,                     /* raw control character */
    TPL_PREFIX "\"\xff\"" TPL_SUFFIX,                     /* not UTF-8 */
    TPL_PREFIX "\"\xed\xa0\x80\"" TPL_SUFFIX,             /* a surrogate in UTF-8 */
    TPL_PREFIX "\"\\x41\"" TPL_SUFFIX,                    /* no such escape */
    TPL_PREFIX "\"\\u12\"" TPL_SUFFIX,                    /* short \u */
    TPL_PREFIX "\"a\",\"content\":\"b\"" TPL_SUFFIX,      /* two literals where one was */
    TPL_PREFIX "\"a\\\"" TPL_SUFFIX,                      /* the quote is escaped: no end */
    TPL_PREFIX "null" TPL_SUFFIX,                         /* not a string */
    "{\"id\":\"c2\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"" TPL_SUFFIX,
    TPL_PREFIX "\"x\"},\"finish_reason\":\"stop\"}]}",    /* another field changed */
    TPL_PREFIX "\"x\"" TPL_SUFFIX " ",                    /* one byte more */
    TPL_PREFIX,                                           /* shorter than the template */
    "",
  };

  /* Nothing learned yet. */
  assert_null (template_match (template, learned));

  assert_true (chime_token_template_learn (template, "message", learned, strlen (learned), "Hi"));
  assert_string_equal (template_match (template, TPL_PREFIX "\" there\"" TPL_SUFFIX), " there");
  assert_string_equal (template_match (template, TPL_PREFIX "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"" TPL_SUFFIX),
                       "a\"b\\c/d\b\f\n\r\t");
  assert_string_equal (template_match (template, TPL_PREFIX "\"caf\\u00e9 \xc3\xa9 \\ud83d\\ude00\"" TPL_SUFFIX),
                       "caf\xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80");
  /* The token may be any text, even one found elsewhere in the event. */
  assert_string_equal (template_match (template, TPL_PREFIX "\"m\"" TPL_SUFFIX), "m");
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    if (template_match (template, refused[i]) != NULL)
      fail_msg ("matched: %s", refused[i]);
  /* Another SSE event type is another event. */
  assert_null (chime_token_template_match (template, "content_block_delta", learned, strlen (learned)));
  chime_token_template_forget (template);
  assert_null (template_match (template, learned));

  /* The token is found by its decoded text. */
  learned = TPL_PREFIX "\"line\\n\\u00e9\"" TPL_SUFFIX;
  assert_true (chime_token_template_learn (template, "message", learned, strlen (learned), "line\n\xc3\xa9"));
  assert_string_equal (template_match (template, TPL_PREFIX "\"x\"" TPL_SUFFIX), "x");

  /* Not learned when the token's text is not there exactly once: which
   * literal it came from cannot be told. */
  learned = TPL_PREFIX "\"m\"" TPL_SUFFIX;
  assert_false (chime_token_template_learn (template, "message", learned, strlen (learned), "m"));
  assert_null (template_match (template, TPL_PREFIX "\"x\"" TPL_SUFFIX));
  learned = TPL_PREFIX "\"Hi\"" TPL_SUFFIX;
  assert_false (chime_token_template_learn (template, "message", learned, strlen (learned), "Ho"));
  assert_null (template_match (template, TPL_PREFIX "\"x\"" TPL_SUFFIX));
}

/* Streams whose token events mostly share a template, with escapes, an
 * empty token, tokens that are also other strings of the event, a field
 * that changes on the way, another event type: every token arrives, in
 * order, and what the other fields said last is what the result says. */
static void
test_token_template_streams (void **state)
{
  static const char *const openai_expected[] = {
    "Hello", " wor\"ld", "\n\t\\/", "caf\xc3\xa9", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "fp_a", " changed",
    " again", "gpt-4o-2024-08-06", " end", NULL
  };
  static const char *const anthropic_expected[] = {
    "Hello", " wor\"ld", "\xc3\xa9", " one", " two", " three", NULL
  };
  const char *const *expected[] = { openai_expected, anthropic_expected };
  const char *fixtures[] = { "openai-template-stream.sse", "anthropic-template-stream.sse" };

  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      g_autoptr (Case) c = case_new (providers[i], &(CaseSpec) { .fixture = fixtures[i] });
      g_autoptr (json_t) tokens = NULL;
      g_autoptr (GString) text = g_string_new (NULL);
      json_t *message, *info;
      guint n = g_strv_length ((char **) expected[i]);

      run_case (c);
      assert_succeeded (c);
      tokens = trace_events (c, "llm_new_token");
      if (json_array_size (tokens) != n)
        fail_msg ("%s: %zu tokens instead of %u", c->label, json_array_size (tokens), n);
      for (guint j = 0; j < n; j++)
        {
          assert_string_equal (json_string_value (json_object_get (json_array_get (tokens, j), "token")),
                               expected[i][j]);
          g_string_append (text, expected[i][j]);
        }
      assert_string_equal (json_string_value (json_object_get (c->result, "output")), text->str);
      message = llm_result_message (json_object_get (c->result, "llm_result"));
      info = json_object_get (json_array_get (json_array_get (json_object_get (
               json_object_get (c->result, "llm_result"), "generations"), 0), 0), "generation_info");
      if (providers[i] == &openai)
        assert_string_equal (json_string_value (json_object_get (info, "system_fingerprint")), "fp_b");
      else
        assert_int_equal (json_integer_value (json_object_get (json_object_get (info, "skipped_deltas"),
                                                               "input_json_delta")), 1);
      assert_non_null (message);
    }
}

/* ------------------------------------------------------------------ */
/* HTTP errors and retries                                            */
/* ------------------------------------------------------------------ */

static void
test_client_errors_are_not_retried (void **state)
{
  static const char *const statuses[] = { "400", "401", "404" };
  static const char *const openai_quotes[] = {
    "openai: HTTP 400 invalid_request_error: We could not parse the JSON body of your request.",
    "openai: HTTP 401 invalid_api_key: Incorrect API key provided.",
    "openai: HTTP 404 model_not_found: The model does not exist",
  };
  static const char *const anthropic_quotes[] = {
    "anthropic: HTTP 400 invalid_request_error: Invalid request.",
    "anthropic: HTTP 401 authentication_error: invalid x-api-key",
    "anthropic: HTTP 404 not_found_error: Not found.",
  };
  Case *cases[6];

  for (guint i = 0; i < 6; i++)
    cases[i] = case_new (providers[i / 3], &(CaseSpec) { .scenario = "status", .arg = statuses[i % 3] });
  run_cases (cases, 6);
  for (guint i = 0; i < 6; i++)
    {
      assert_failed_with (cases[i], (i < 3 ? openai_quotes : anthropic_quotes)[i % 3]);
      /* Not retried: a single attempt, so no "gave up" either. */
      assert_null (strstr (cases[i]->error->message, "attempts"));
      assert_requests (cases[i], 1);
      case_free (cases[i]);
    }
}

static void
test_server_errors_are_retried (void **state)
{
  static const char *const statuses[] = { "429", "500", "503", "529" };
  static const char *const openai_quotes[] = {
    "openai: HTTP 429 rate_limit_exceeded: Rate limit reached",
    "openai: HTTP 500 server_error: The server had an error",
    "openai: HTTP 503 server_error: The server is overloaded or not ready yet.",
    "openai: HTTP 529 server_error: Overloaded",
  };
  static const char *const anthropic_quotes[] = {
    "anthropic: HTTP 429 rate_limit_error: Number of requests has exceeded your rate limit.",
    "anthropic: HTTP 500 api_error: Internal server error",
    "anthropic: HTTP 503 api_error: Service Unavailable",
    "anthropic: HTTP 529 overloaded_error: Overloaded",
  };
  Case *cases[8];

  /* max_retries is 2 by default: three requests each. */
  for (guint i = 0; i < 8; i++)
    cases[i] = case_new (providers[i / 4], &(CaseSpec) { .scenario = "status", .arg = statuses[i % 4] });
  run_cases (cases, 8);
  for (guint i = 0; i < 8; i++)
    {
      g_autoptr (json_t) retries = trace_events (cases[i], "retry");
      json_t *first = json_object_get (json_array_get (retries, 0), "data");
      json_t *second = json_object_get (json_array_get (retries, 1), "data");

      assert_failed_with (cases[i], (i < 4 ? openai_quotes : anthropic_quotes)[i % 4]);
      assert_string_contains (cases[i]->error->message, "(gave up after 3 attempts)");
      assert_requests (cases[i], 3);
      /* LangChain's retry state, with the SDKs' backoff: 0.5 s then 1 s,
       * less up to a quarter of jitter. */
      assert_int_equal (json_array_size (retries), 2);
      assert_int_equal (json_integer_value (json_object_get (first, "attempt")), 1);
      assert_int_equal (json_integer_value (json_object_get (second, "attempt")), 2);
      assert_string_equal (json_string_value (json_object_get (first, "outcome")), "failed");
      assert_string_contains (json_string_value (json_object_get (first, "exception")),
                              (i < 4 ? openai_quotes : anthropic_quotes)[i % 4]);
      assert_true (json_real_value (json_object_get (first, "upcoming_sleep")) >= 0.375 - 1e-9);
      assert_true (json_real_value (json_object_get (first, "upcoming_sleep")) <= 0.5);
      assert_true (json_real_value (json_object_get (second, "upcoming_sleep")) >= 0.75 - 1e-9);
      assert_true (json_real_value (json_object_get (second, "upcoming_sleep")) <= 1.0);
      assert_true (json_real_value (json_object_get (second, "slept")) ==
                   json_real_value (json_object_get (first, "upcoming_sleep")));
      assert_true (cases[i]->elapsed >= 1.1);
      case_free (cases[i]);
    }
  /* The exception types name the SDK classes. */
  assert_string_equal (chime_provider_exception_type (429), "RateLimitError");
  assert_string_equal (chime_provider_exception_type (529), "OverloadedError");
  assert_string_equal (chime_provider_exception_type (503), "InternalServerError");
}

typedef struct {
  const char *arg;
  guint       openai_requests;
  guint       anthropic_requests;
  gdouble     min_elapsed;
} RetryAfterCase;

/* Retries that find the ring full (a handler stuck far behind, a small
 * queue, background delivery) are held back, not lost, and still reach
 * every handler before the tokens of the attempt that succeeds. */
static void
test_retry_events_wait_for_room (void **state)
{
  g_autoptr (Case) c = case_new (&openai, &(CaseSpec) {
    .scenario = "flaky", .arg = "14,429,1",
    .model_extra = "max_retries = 14\n",
    .runtime = "delivery = background\nqueue_limit = 16",
    .recorder = "delay_us = 60000",
  });
  g_auto (GStrv) lines = NULL;
  int first_token;

  run_cases (&c, 1);
  assert_succeeded (c);
  assert_requests (c, 15);
  assert_tokens (c, openai.tokens, g_strv_length ((char **) openai.tokens));
  lines = test_read_lines (c->trace);
  first_token = test_find_line (lines, "\"event\":\"llm_new_token\"", 0);
  assert_int_not_equal (first_token, -1);
  assert_int_equal (test_find_last_line (lines, "\"event\":\"retry\"") < first_token, TRUE);
}

static void
test_retry_after (void **state)
{
  static const RetryAfterCase plans[] = {
    { "ms=700", 2, 2, 0.7 },
    { "s=1", 2, 2, 1.0 },
    /* An HTTP date 2 s ahead, at one-second resolution: at least 1 s. */
    { "date=2", 2, 2, 0.95 },
    { "should-retry=false,status=503", 1, 1, 0 },
    /* x-should-retry: true retries even a 400. */
    { "should-retry=true,status=400", 2, 2, 0.3 },
    /* Over the SDKs' caps: openai-python gives up at once,
     * anthropic-sdk-python ignores the header and backs off. */
    { "s=200", 1, 2, 0 },
  };
  Case *cases[G_N_ELEMENTS (plans) * 2];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    cases[i] = case_new (providers[i % 2], &(CaseSpec) { .scenario = "retry-after",
                                                         .arg = plans[i / 2].arg,
                                                         .model_extra = "max_retries = 1\n" });
  run_cases (cases, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const RetryAfterCase *plan = &plans[i / 2];

      assert_non_null (cases[i]->error);
      assert_requests (cases[i], i % 2 == 0 ? plan->openai_requests : plan->anthropic_requests);
      if (cases[i]->elapsed < plan->min_elapsed)
        fail_msg ("%s: retried after %.3f s, asked for %.3f s", cases[i]->label, cases[i]->elapsed,
                  plan->min_elapsed);
      case_free (cases[i]);
    }
}

static void
test_retry_helpers (void **state)
{
  const ChimeProviderOps ops = { .max_retry_after_s = 60.0 };
  static const char openai_json[] =
    "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
  static const char ollama_json[] = "{\"error\":\"model \\\"x\\\" not found\"}";
  static const char llama_json[] =
    "{\"error\":{\"code\":401,\"message\":\"Invalid API Key\",\"type\":\"authentication_error\"}}";
  static const char html_body[] = "<html>\n<b>Bad gateway</b></html>";
  g_autofree char *openai_body = chime_provider_describe_http_error (429, openai_json, strlen (openai_json));
  g_autofree char *ollama_body = chime_provider_describe_http_error (404, ollama_json, strlen (ollama_json));
  g_autofree char *llama_body = chime_provider_describe_http_error (401, llama_json, strlen (llama_json));
  g_autofree char *html = chime_provider_describe_http_error (502, html_body, strlen (html_body));
  g_autofree char *empty = chime_provider_describe_http_error (503, "", 0);

  assert_string_equal (openai_body, "HTTP 429 rate_limit_exceeded: slow down");
  assert_string_equal (ollama_body, "HTTP 404: model \"x\" not found");
  assert_string_equal (llama_body, "HTTP 401 authentication_error: Invalid API Key");
  assert_string_equal (html, "HTTP 502: <html> <b>Bad gateway</b></html>");
  assert_string_equal (empty, "HTTP 503 (empty body)");

  assert_true (chime_provider_parse_retry_after ("1500", "9", 0) == 1.5);
  assert_true (chime_provider_parse_retry_after (NULL, "2.5", 0) == 2.5);
  assert_true (chime_provider_parse_retry_after (NULL, "Thu, 01 Jan 1970 00:00:30 GMT", 10) == 20.0);
  assert_true (isnan (chime_provider_parse_retry_after (NULL, "soon", 0)));
  assert_true (isnan (chime_provider_parse_retry_after (NULL, NULL, 0)));

  /* The backoff doubles from 0.5 s, caps at 8 s, and jitters down by at
   * most a quarter. */
  for (guint taken = 0; taken < 8; taken++)
    {
      gdouble delay = chime_provider_retry_delay (&ops, 500, FALSE, NULL, NAN, taken, 100);
      gdouble full = MIN (0.5 * (1 << taken), 8.0);

      assert_true (delay > 0.75 * full - 1e-9 && delay <= full);
    }
  assert_true (chime_provider_retry_delay (&ops, 500, FALSE, NULL, NAN, 2, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 0, TRUE, NULL, NAN, 0, 2) > 0);
  assert_true (chime_provider_retry_delay (&ops, 0, FALSE, NULL, NAN, 0, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 408, FALSE, NULL, NAN, 0, 2) > 0);
  assert_true (chime_provider_retry_delay (&ops, 409, FALSE, NULL, NAN, 0, 2) > 0);
  assert_true (chime_provider_retry_delay (&ops, 422, FALSE, NULL, NAN, 0, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 429, FALSE, NULL, 3.0, 0, 2) == 3.0);
  assert_true (chime_provider_retry_delay (&ops, 429, FALSE, "false", NAN, 0, 2) < 0);
  assert_true (chime_provider_retry_delay (&ops, 400, FALSE, "true", NAN, 0, 2) > 0);
}

static void
test_flaky_succeeds_after_retries (void **state)
{
  Case *cases[2];

  /* flaky counts the requests of each X-Mock-Key: each case has its own. */
  for (guint i = 0; i < 2; i++)
    cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "flaky", .arg = "2,503" });
  run_cases (cases, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) retries = trace_events (cases[i], "retry");

      assert_succeeded (cases[i]);
      assert_tokens (cases[i], providers[i]->tokens, g_strv_length ((char **) providers[i]->tokens));
      assert_fixture_result (cases[i]);
      /* One retry event per retry, before the tokens. */
      assert_requests (cases[i], 3);
      assert_int_equal (json_array_size (retries), 2);
      assert_int_equal (json_integer_value (json_object_get (json_object_get (json_array_get (retries, 0),
                                                                              "data"), "status")), 503);
      case_free (cases[i]);
    }
}

static void
test_connection_refused_and_dns (void **state)
{
  g_autofree char *refused = g_strdup_printf ("http://127.0.0.1:%u/v1", closed_port ());
  Case *cases[4];

  for (guint i = 0; i < 2; i++)
    {
      cases[i] = case_new (providers[i], &(CaseSpec) { .base_url = refused, .model_extra = "max_retries = 1\n" });
      /* RFC 6761: .invalid never resolves. */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .base_url = "http://chime-test.invalid",
                                                           .model_extra = "max_retries = 0\n"
                                                                          "connect_timeout_s = 5\n" });
    }
  run_cases (cases, 4);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (json_t) retries = trace_events (cases[i], "retry");
      const char *name = i % 2 == 0 ? "openai" : "anthropic";
      g_autofree char *prefix = g_strdup_printf ("%s: cannot connect to http", name);

      assert_failed_with (cases[i], prefix);
      if (i < 2)
        {
          /* Connection errors are retried, as the SDKs do. */
          assert_string_contains (cases[i]->error->message, "(gave up after 2 attempts)");
          assert_int_equal (json_array_size (retries), 1);
          assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (retries, 0),
                                                                                    "data"),
                                                                   "exception_type")),
                               "APIConnectionError");
        }
      else
        assert_string_contains (cases[i]->error->message, "chime-test.invalid");
      case_free (cases[i]);
    }
}

/* ------------------------------------------------------------------ */
/* Broken streams                                                     */
/* ------------------------------------------------------------------ */

static void
test_slow_stream (void **state)
{
  Case *cases[2];

  for (guint i = 0; i < 2; i++)
    cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "slow", .arg = "120",
                                                     .model_extra = "timeout_s = 1\n" });
  run_cases (cases, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) tokens = trace_events (cases[i], "llm_new_token");
      g_autoptr (GDateTime) first = NULL;
      g_autoptr (GDateTime) last = NULL;

      assert_succeeded (cases[i]);
      assert_tokens (cases[i], providers[i]->tokens, g_strv_length ((char **) providers[i]->tokens));
      assert_fixture_result (cases[i]);
      assert_requests (cases[i], 1);
      /* The tokens were handed on as they came, not at the end. */
      first = g_date_time_new_from_iso8601 (json_string_value (json_object_get (json_array_get (tokens, 0),
                                                                                "time")), NULL);
      last = g_date_time_new_from_iso8601 (json_string_value (json_object_get (
                                             json_array_get (tokens, json_array_size (tokens) - 1), "time")),
                                           NULL);
      assert_true (g_date_time_difference (last, first) >= 200 * 1000);
      assert_true (cases[i]->elapsed >= 0.6);
      case_free (cases[i]);
    }
}

static void
test_stall_times_out (void **state)
{
  Case *cases[4];

  for (guint i = 0; i < 2; i++)
    {
      /* Two tokens, then silence: not retried, tokens went out. */
      cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "stall", .arg = providers[i]->two_tokens_arg,
                                                       .model_extra = "timeout_s = 0.5\n" });
      /* No response at all in time: retried, like the SDKs' timeouts. */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "delay", .arg = "1500",
                                                           .model_extra = "timeout_s = 0.4\nmax_retries = 1\n" });
    }
  run_cases (cases, 4);
  for (guint i = 0; i < 2; i++)
    {
      assert_failed_with (cases[i], "the stream stalled: nothing received for 0.5 s (timeout_s in [model m])");
      assert_tokens (cases[i], providers[i]->tokens, 2);
      assert_requests (cases[i], 1);
      assert_true (cases[i]->elapsed >= 0.5 && cases[i]->elapsed < 3.0);

      assert_failed_with (cases[2 + i], "within 0.4 s (timeout_s in [model m]) (gave up after 2 attempts)");
      assert_string_contains (cases[2 + i]->error->message, ": no response from http://127.0.0.1:");
      assert_requests (cases[2 + i], 2);
      case_free (cases[i]);
      case_free (cases[2 + i]);
    }
}

static void
test_truncated_streams (void **state)
{
  Case *cases[6];

  for (guint i = 0; i < 2; i++)
    {
      cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "disconnect",
                                                       .arg = providers[i]->two_tokens_arg });
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "no-terminator" });
      cases[4 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "error-event",
                                                           .arg = providers[i]->two_tokens_arg });
    }
  run_cases (cases, 6);
  for (guint i = 0; i < 2; i++)
    {
      const ProviderCase *p = providers[i];
      g_autofree char *truncated = g_strdup_printf ("%s: the stream ended before its terminator %s", p->name,
                                                    p->terminator);

      /* Cut mid-body after two tokens: an error, not retried. */
      assert_failed_with (cases[i], truncated);
      assert_tokens (cases[i], p->tokens, 2);
      assert_requests (cases[i], 1);
      /* Everything but the terminator: every token, still an error. */
      assert_failed_with (cases[2 + i], truncated);
      assert_tokens (cases[2 + i], p->tokens, g_strv_length ((char **) p->tokens));
      assert_requests (cases[2 + i], 1);
      /* The provider's own error event, quoted. */
      assert_failed_with (cases[4 + i], p->error_event);
      assert_tokens (cases[4 + i], p->tokens, 2);
      assert_requests (cases[4 + i], 1);
      for (guint j = 0; j < 3; j++)
        case_free (cases[2 * j + i]);
    }
}

/* ------------------------------------------------------------------ */
/* Back-pressure and cancellation                                     */
/* ------------------------------------------------------------------ */

#define HUGE_TOKENS 3000

static void
test_back_pressure (void **state)
{
  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      g_autoptr (Case) c = case_new (providers[i], &(CaseSpec) { .scenario = "huge",
                                                                 .arg = G_STRINGIFY (HUGE_TOKENS),
                                                                 .runtime = "delivery = awaited",
                                                                 .recorder = "delay_us = 50" });
      g_auto (GStrv) tokens = NULL;
      ChimeHttpStats stats;

      chime_http_reset_stats ();
      run_case (c);
      assert_succeeded (c);
      tokens = recorded_tokens (c);
      assert_int_equal (g_strv_length (tokens), HUGE_TOKENS);
      assert_int_equal (strlen (json_string_value (json_object_get (c->result, "output"))), 4 * HUGE_TOKENS);
      chime_http_get_stats (&stats);
      /* Each awaited token held the transfer: curl stopped reading, and
       * no more than one write callback's worth waited on our side. */
      if (stats.pauses < 100)
        fail_msg ("%s: the transfer was paused only %" G_GUINT64_FORMAT " times", c->label, stats.pauses);
      assert_true (stats.max_pending <= 64 * 1024);
    }
}

static void
test_cancel (void **state)
{
  Case *cases[6];
  ChimeHttpStats stats;

  for (guint i = 0; i < 2; i++)
    {
      /* While the stream waits for bytes. */
      cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "stall", .arg = "1",
                                                       .model_extra = "timeout_s = 30\n" });
      /* During the backoff before a retry. */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "status", .arg = "500",
                                                           .model_extra = "max_retries = 5\n" });
      /* While paused by a slow handler. */
      cases[4 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "huge", .arg = "100000",
                                                           .runtime = "delivery = awaited",
                                                           .recorder = "delay_us = 200" });
    }
  for (guint i = 0; i < 6; i++)
    cases[i]->cancel_after_ms = 250;
  run_cases (cases, 6);
  for (guint i = 0; i < 6; i++)
    {
      if (!g_error_matches (cases[i]->error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED))
        fail_msg ("%s: %s", cases[i]->label, cases[i]->error ? cases[i]->error->message : "succeeded");
      assert_true (cases[i]->elapsed < 2.0);
      assert_int_equal (count_events (cases[i], "llm_error"), 1);
      /* The backoff was cut short: one request, one retry announced. */
      if (i / 2 == 1)
        assert_int_equal (count_requests (cases[i]->mock_key), 1);
      case_free (cases[i]);
    }
  /* Every transfer ended. */
  chime_http_get_stats (&stats);
  assert_int_equal (stats.active, 0);
}

/* ------------------------------------------------------------------ */
/* Keys and configuration                                             */
/* ------------------------------------------------------------------ */

static gboolean
file_contains (const char *path,
               const char *needle)
{
  g_autofree char *text = NULL;

  return g_file_get_contents (path, &text, NULL, NULL) && strstr (text, needle) != NULL;
}

static void
test_secrets_stay_out (void **state)
{
  static const CaseSpec specs[] = {
    { NULL },
    { .scenario = "status", .arg = "401" },
    { .scenario = "flaky", .arg = "1,429" },
    { .scenario = "error-event", .arg = "3" },
  };
  Case *cases[G_N_ELEMENTS (specs) * 2];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    cases[i] = case_new (providers[i % 2], &specs[i / 2]);
  run_cases (cases, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (json_t) requests = server_requests (cases[i]->mock_key);
      g_autoptr (json_t) starts = trace_events (cases[i], "chat_model_start");
      json_t *params = json_object_get (json_object_get (json_array_get (starts, 0), "kwargs"),
                                        "invocation_params");
      g_autofree char *params_text = json_dumps (params, 0);
      g_autofree char *result_text = cases[i]->result ? json_dumps (cases[i]->result, 0) : g_strdup ("");
      const char *sent = json_string_value (json_object_get (json_object_get (json_array_get (requests, 0),
                                                                              "headers"),
                                                             cases[i]->provider->key_header));

      /* The key did go to the server... */
      assert_non_null (sent);
      assert_non_null (strstr (sent, API_KEY));
      /* ...and nowhere else. */
      assert_false (file_contains (cases[i]->recorder_log, API_KEY));
      assert_false (file_contains (cases[i]->trace, API_KEY));
      assert_false (file_contains (cases[i]->trace, "SECRET"));
      assert_null (strstr (params_text, API_KEY));
      assert_null (json_object_get (params, "api_key"));
      assert_string_equal (json_string_value (json_object_get (params, "model")), cases[i]->provider->model);
      assert_null (strstr (result_text, API_KEY));
      if (cases[i]->error != NULL)
        assert_null (strstr (cases[i]->error->message, API_KEY));
      case_free (cases[i]);
    }
}

static void
test_missing_key_and_key_file (void **state)
{
  g_autofree char *key_file = test_write_file ("api.key", "sk-from-file-1234\n");
  Case *cases[4];

  for (guint i = 0; i < 2; i++)
    {
      /* A key that is not set: found out when the stream starts. */
      cases[i] = case_new (providers[i], &(CaseSpec) { NULL });
      case_replace (cases[i], "api_key_env = " API_KEY_ENV, "api_key_env = CHIME_TEST_UNSET_KEY");
      /* A key file, relative to the INI file's folder (test_tmpdir()). */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { NULL });
      case_replace (cases[2 + i], "api_key_env = " API_KEY_ENV, "api_key_file = api.key");
    }
  g_unsetenv ("CHIME_TEST_UNSET_KEY");
  run_cases (cases, 4);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *message = g_strdup_printf ("%s: no API key: set CHIME_TEST_UNSET_KEY (api_key_env) or "
                                                  "api_key_file in [model m]", providers[i]->name);
      g_autoptr (json_t) requests = server_requests (cases[2 + i]->mock_key);

      assert_failed_with (cases[i], message);
      assert_int_equal (count_requests (cases[i]->mock_key), 0);
      assert_succeeded (cases[2 + i]);
      assert_string_contains (json_string_value (json_object_get (json_object_get (json_array_get (requests, 0),
                                                                                   "headers"),
                                                                  providers[i]->key_header)),
                              "sk-from-file-1234");
      case_free (cases[i]);
      case_free (cases[2 + i]);
    }
}

/* `api_key_env =` (empty) sends no key, for local servers that want none:
 * the mock server, which does, then says that none came. */
static void
test_empty_api_key_env_sends_none (void **state)
{
  Case *cases[2];

  for (guint i = 0; i < 2; i++)
    {
      cases[i] = case_new (providers[i], &(CaseSpec) { .model_extra = "max_retries = 0\n" });
      case_replace (cases[i], "api_key_env = " API_KEY_ENV, "api_key_env =");
    }
  run_cases (cases, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) requests = server_requests (cases[i]->mock_key);
      json_t *headers = json_object_get (json_array_get (requests, 0), "headers");

      assert_int_equal (json_array_size (requests), 1);
      assert_null (json_object_get (headers, providers[i]->key_header));
      assert_failed_with (cases[i], "HTTP 401");
      case_free (cases[i]);
    }
}

static void
test_configuration_problems (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimePipeline) pipeline = chime_pipeline_new_from_data (
    "[pipeline]\nprompt = hi\nmodel = m\n\n"
    "[model m]\nprovider = openai\nbase_url = ftp://example.com\n"
    "api_key_env = A\napi_key_file = key.txt\n"
    "headers = [\"Authorization: Bearer sk-in-the-file\", \"X-Fine: yes\", \"no colon\"]\n"
    "extra_body = {\"stream\": false}\nstop = [1]\ntemperature = 3\ntimeout_s = 0\nmax_retries = -1\n"
    "colour = blue\n",
    "bad.ini", test_tmpdir (), NULL, NULL, &error);
  static const char *const expected[] = {
    "missing required key 'model' in [model m] of bad.ini",
    "invalid value 'ftp://example.com' for 'base_url' in [model m] of bad.ini (line 7): expected an http://",
    "set either 'api_key_env' or 'api_key_file'",
    "'headers' in [model m] of bad.ini (line 10) must not set Authorization",
    "invalid header 'no colon' in 'headers'",
    "'extra_body' in [model m] of bad.ini (line 11) must not set 'stream'",
    "invalid value for 'stop' in [model m] of bad.ini (line 12): element 0 is not a string",
    "'temperature'",
    "'timeout_s'",
    "'max_retries'",
    "colour",
  };

  assert_null (pipeline);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    assert_string_contains (error->message, expected[i]);
  /* The key in a header is refused without being quoted back. */
  assert_null (strstr (error->message, "sk-in-the-file"));
}

static void
test_check_needs_no_key (void **state)
{
  g_autoptr (ChimeConfig) ini = chime_config_new_from_data ("[model a]\nprovider = anthropic\nmodel = claude-x\n"
                                                            "api_key_env = CHIME_TEST_UNSET_KEY\nmax_tokens = 50\n"
                                                            "system = Be terse.\n",
                                                            "a.ini", test_tmpdir (), NULL);
  g_autoptr (ChimeModel) model = chime_model_new (ini, "a");
  g_autoptr (json_t) params = NULL;

  assert_int_equal (chime_config_get_n_problems (ini), 0);
  assert_non_null (model);
  assert_string_equal (model->model_name, "claude-x");
  params = model->provider->invocation_params (model);
  assert_string_equal (json_string_value (json_object_get (params, "_type")), "anthropic-chat");
  assert_int_equal (json_integer_value (json_object_get (params, "max_tokens")), 50);
  assert_int_equal (json_integer_value (json_object_get (params, "max_retries")), 2);
  assert_true (json_real_value (json_object_get (params, "timeout")) == 600.0);
  assert_string_equal (model->provider->class_name, "ChatAnthropic");
}

/* ------------------------------------------------------------------ */
/* Batch runs                                                         */
/* ------------------------------------------------------------------ */

static void
test_batch (void **state)
{
  g_autofree char *ini = g_strdup_printf ("[runtime]\nthreads = 1\n\n"
                                          "[pipeline]\nprompt = Tell me about {topic}\nmodel = m\n\n"
                                          "[model m]\nprovider = openai\nmodel = gpt-4o-mini\n"
                                          "base_url = http://127.0.0.1:%u/v1\napi_key_env = " API_KEY_ENV "\n"
                                          "headers = [\"X-Mock-Scenario: delay\", \"X-Mock-Arg: 300\"]\n",
                                          server.port);
  g_autofree char *inputs = test_write_file ("inputs.jsonl",
                                             "{\"topic\": \"a\"}\n{\"topic\": \"b\"}\n\n"
                                             "{\"topic\": 3}\nnot json\n{\"topic\": \"d\"}\n"
                                             "{\"other\": \"x\"}\n{\"topic\": \"f\"}\n{\"topic\": \"g\"}\n"
                                             "{\"topic\": \"h\"}\n{\"topic\": \"i\"}\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimePipeline) pipeline = chime_pipeline_new_from_data (ini, "batch.ini", test_tmpdir (), NULL, NULL,
                                                                     &error);
  g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_auto (GStrv) lines = NULL;
  ChimeHttpStats stats;
  gint64 started;
  gdouble elapsed;
  int failed;

  assert_non_null (pipeline);
  chime_http_reset_stats ();
  started = g_get_monotonic_time ();
  failed = chime_batch_run (pipeline, inputs, NULL, 4, NULL, out, &error);
  elapsed = (g_get_monotonic_time () - started) / (gdouble) G_USEC_PER_SEC;
  g_output_stream_write_all (out, "", 1, NULL, NULL, NULL);
  g_output_stream_close (out, NULL, NULL);
  chime_http_get_stats (&stats);

  /* "not json" and the missing {topic} fail; the eight others run. */
  assert_int_equal (failed, 2);
  lines = g_strsplit (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)), "\n", -1);
  assert_int_equal (g_strv_length (lines), 11);   /* ten results and the empty tail */
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr (json_t) line = json_loads (lines[i], 0, NULL);

      assert_non_null (line);
      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      if (i == 3 || i == 5)
        assert_non_null (json_object_get (line, "error"));
      else
        assert_string_equal (json_string_value (json_object_get (line, "output")), "I'm unable app.");
    }
  assert_string_contains (lines[3], "not a JSON object");
  /* The variables come from the line, not from --input/--var. */
  assert_string_contains (lines[5], "the input has no \\\"topic\\\", which the prompt uses; add it to the line");
  assert_string_not_contains (lines[5], "--input");
  /* Eight 300 ms requests, four at a time: two rounds (the wall time is
   * for the benchmarks to judge; the concurrency is counted here). */
  assert_int_equal (stats.max_active, 4);
  assert_true (elapsed >= 0.6);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_replay),
    cmocka_unit_test (test_token_template_unit),
    cmocka_unit_test (test_token_template_streams),
    cmocka_unit_test (test_client_errors_are_not_retried),
    cmocka_unit_test (test_server_errors_are_retried),
    cmocka_unit_test (test_retry_after),
    cmocka_unit_test (test_retry_events_wait_for_room),
    cmocka_unit_test (test_retry_helpers),
    cmocka_unit_test (test_flaky_succeeds_after_retries),
    cmocka_unit_test (test_connection_refused_and_dns),
    cmocka_unit_test (test_slow_stream),
    cmocka_unit_test (test_stall_times_out),
    cmocka_unit_test (test_truncated_streams),
    cmocka_unit_test (test_back_pressure),
    cmocka_unit_test (test_cancel),
    cmocka_unit_test (test_secrets_stay_out),
    cmocka_unit_test (test_missing_key_and_key_file),
    cmocka_unit_test (test_empty_api_key_env_sends_none),
    cmocka_unit_test (test_configuration_problems),
    cmocka_unit_test (test_check_needs_no_key),
    cmocka_unit_test (test_batch),
  };
  const char *filter = g_getenv ("CHIME_TEST_FILTER");
  g_autofree struct CMUnitTest *selected = g_new0 (struct CMUnitTest, G_N_ELEMENTS (tests));
  gsize n = 0;
  g_autoptr (GStrvBuilder) path = g_strv_builder_new ();
  g_autoptr (GDir) dir = g_dir_open (SHIPPED_PLUGIN_DIR, 0, NULL);
  g_auto (GStrv) folders = NULL;
  g_autofree char *joined = NULL;
  const char *name;

  /* The test recorders, and the uninstalled shipped plugins (jsonl). */
  g_strv_builder_add (path, TEST_PLUGIN_DIR);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *folder = g_build_filename (SHIPPED_PLUGIN_DIR, name, NULL);

      if (g_file_test (folder, G_FILE_TEST_IS_DIR))
        g_strv_builder_add (path, folder);
    }
  folders = g_strv_builder_end (path);
  joined = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, folders);
  g_setenv ("CHIME_PLUGIN_PATH", joined, TRUE);
  g_setenv (API_KEY_ENV, API_KEY, TRUE);
  /* Requests to 127.0.0.1 must not go through a proxy of the machine. */
  g_setenv ("NO_PROXY", "*", TRUE);
  g_setenv ("no_proxy", "*", TRUE);

  for (gsize i = 0; i < G_N_ELEMENTS (tests); i++)
    if (filter == NULL || strstr (tests[i].name, filter) != NULL)
      selected[n++] = tests[i];
  return _cmocka_run_group_tests ("providers", selected, n, start_server, stop_server);
}
