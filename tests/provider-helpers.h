/* Helpers shared by the provider tests (tests/test-providers-*.c): the
 * mock LLM server they all talk to, what each provider's fixture holds,
 * and cases: whole pipelines from INI text, run on a GMainLoop, with the
 * recorder and jsonl handlers writing what the handlers saw. */
#pragma once

#include "test-helpers.h"

#include "pipeline/pipeline.h"
#include "pipeline/pipeline-error.h"

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

/* The server, started before the first test and stopped after the last. */
extern MockServer server;

/* The AIMessage of an LLMResult (borrowed). */
json_t *llm_result_message (json_t *result);

/* The requests the server logged with X-Mock-Key @key, oldest first. */
json_t *server_requests (const char *key);

/* How many requests the server logged with X-Mock-Key @key. */
gsize count_requests (const char *key);

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

extern const ProviderCase openai;

extern const ProviderCase anthropic;

extern const ProviderCase *const providers[2];

/* ------------------------------------------------------------------ */
/* Pipelines                                                          */
/* ------------------------------------------------------------------ */

/* One pipeline run: its INI text, where its handlers write, and (once
 * run) its outcome. */
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

/* What a case changes of the default pipeline. */
typedef struct {
  const char *scenario;       /* X-Mock-Scenario, NULL for none */
  const char *arg;            /* X-Mock-Arg, NULL for none */
  const char *model_extra;    /* more lines for [model m] */
  const char *runtime;        /* lines for [runtime] */
  const char *recorder;       /* more lines for the recorder */
  const char *base_url;       /* instead of the mock server's */
  const char *fixture;        /* X-Mock-Fixture, NULL for the default */
  const char *header;         /* one more request header, "Name: value" */
} CaseSpec;

void case_free (Case *c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Case, case_free)

/* A case of @provider against the mock server, as @spec says. */
Case *case_new (const ProviderCase *provider,
                const CaseSpec     *spec);

/* Runs every case at once on one loop and waits for all; the pipelines
 * are freed afterwards, so that every handler has written everything. */
void run_cases (Case **cases,
                guint  n);

/* Runs one case. */
void run_case (Case *c);

/* The tokens the recorder saw, in order. */
char **recorded_tokens (Case *c);

/* How many @event events the recorder saw. */
guint count_events (Case       *c,
                    const char *event);

/* The events of the jsonl trace named @event, as JSON. */
json_t *trace_events (Case       *c,
                      const char *event);

/* The recorder saw exactly the first @n tokens of @expected, in order. */
void assert_tokens (Case              *c,
                    const char *const *expected,
                    guint              n);

/* The run failed with a model error containing @message, and the
 * handlers got one llm_error and no llm_end. */
void assert_failed_with (Case       *c,
                         const char *message);

/* The run succeeded with a result. */
void assert_succeeded (Case *c);

/* @expected requests reached the server, and the handlers saw one retry
 * event before each but the first. */
void assert_requests (Case *c,
                      gsize expected);

/* Replaces the first @from in the case's INI text. */
void case_replace (Case       *c,
                   const char *from,
                   const char *to);

/* The result is what the provider's fixture holds: output, content,
 * response and usage metadata. */
void assert_fixture_result (Case *c);

/* Runs @tests (those selected by $CHIME_TEST_FILTER) with the test
 * recorders and the uninstalled shipped plugins on CHIME_PLUGIN_PATH, the
 * API key in API_KEY_ENV, no proxy, and the server running. */
int provider_tests_run (const struct CMUnitTest *tests,
                        gsize                    n_tests);
