/* What the parts of tests/mock-llm-server share. The program is four
 * files: mock-llm-server.c (main, reading requests and answering them),
 * mock-llm-responses.c (writing responses, provider-shaped errors),
 * mock-llm-replay.c (replaying recorded streams) and
 * mock-llm-scenarios.c (the faults X-Mock-Scenario picks). */
#pragma once

#include <gio/gio.h>
#include <jansson.h>
#include <stdio.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

typedef enum
{
  PROVIDER_NONE,
  PROVIDER_OPENAI,
  PROVIDER_ANTHROPIC,
} Provider;

typedef struct
{
  char       *fixture_dir;
  GMutex      lock;
  /* Both guarded by lock. */
  FILE       *log;
  GHashTable *flaky_counts;
  guint64     seq;
  gint        max_requests;
  gint        n_answered;
  GMainLoop  *loop;
} Server;

/* The one server of the process. */
extern Server server;

typedef struct
{
  guint64     seq;
  char       *method;
  char       *target;
  char       *path;
  char       *version;
  /* Lower-cased names in arrival order; repeated headers are joined with
   * ", " as HTTP allows. */
  GPtrArray  *header_names;
  GHashTable *headers;
  GBytes     *body;
} Request;

typedef struct
{
  GSocket           *socket;
  GDataInputStream  *in;
  GOutputStream     *out;
  Request           *request;
  Provider           provider;
  gboolean           chunked;
  /* FALSE once a write failed: the client has gone. */
  gboolean           alive;
} Exchange;

/* The value of the header @lower_name, or NULL. */
const char *request_header (Request    *request,
                            const char *lower_name);

/* Writing responses (mock-llm-responses.c) */

/* Writes raw bytes; FALSE once the client has gone. */
gboolean write_bytes (Exchange   *exchange,
                      const char *data,
                      gsize       length);

/* Sends the status line and headers. @content_length < 0 means a chunked
 * body. @extra_headers holds complete "Name: value" lines. */
void send_head (Exchange          *exchange,
                guint              status,
                const char        *content_type,
                gssize             content_length,
                const char *const *extra_headers);

/* Sends part of the body: one HTTP chunk when the body is chunked. */
gboolean send_piece (Exchange   *exchange,
                     const char *data,
                     gsize       length);

/* Ends a chunked body. */
void send_end (Exchange *exchange);

/* A whole response with @body. */
void send_complete (Exchange          *exchange,
                    guint              status,
                    const char        *content_type,
                    const char        *body,
                    const char *const *extra_headers);

/* Compact JSON text, in key order. */
char *json_to_text (json_t *json);

/* The JSON body a provider answers @status with; @message overrides the
 * usual one when not NULL. */
char *error_body (Provider    provider,
                  guint       status,
                  const char *message);

/* The provider's error response for @status; @message overrides the
 * usual one when not NULL. */
void send_error (Exchange          *exchange,
                 guint              status,
                 const char        *message,
                 const char *const *extra_headers);

/* What OpenAI answers for a path it does not serve. */
void send_unknown_url (Exchange *exchange);

/* A mistake in how a test drove the mock, as opposed to a provider error:
 * shaped unlike any provider's error so that it cannot pass for one. */
void send_mock_error (Exchange   *exchange,
                      const char *format,
                      ...) G_GNUC_PRINTF (2, 3);

/* Replaying streams (mock-llm-replay.c) */

typedef enum
{
  REPLAY_END_NORMAL,
  REPLAY_END_STALL,
  REPLAY_END_DISCONNECT,
  REPLAY_END_ERROR_EVENT,
} ReplayEnd;

/* One member of one event changed: `patch`. */
typedef struct
{
  guint   event;        /* which event of the fixture, from 0 */
  char  **path;         /* member names, or array indices in digits */
  json_t *value;        /* NULL: remove the member */
} Patch;

typedef struct
{
  const char        *fixture;
  /* Send at most this many events. */
  guint              limit;
  guint              pause_ms;
  gboolean           drop_terminator;
  ReplayEnd          end;
  /* A change to one event's JSON data, or NULL. */
  const Patch       *patch;
  /* More response headers ("Name: value"), or NULL. */
  const char *const *extra_headers;
} Replay;

/* Sends the fixture as @replay says: all or some of its events,
 * paced, without its terminator, with one member changed, and ended in
 * one of four ways. */
void replay (Exchange     *exchange,
             const Replay *replay);

/* The fixture @name, or NULL after answering with a mock error. */
GBytes *load_fixture_or_answer (Exchange   *exchange,
                                const char *name);

/* `huge`: @n token chunks of synthetic but well-formed provider events,
 * written in large batches so that the server is never the bottleneck. */
void send_huge (Exchange *exchange,
                guint     n);

/* Scenarios (mock-llm-scenarios.c) */

/* What a scenario is given: the fixture to replay, X-Mock-Arg and the
 * request's JSON body. */
typedef struct
{
  const char *fixture;
  const char *arg;
  json_t     *body;
} ScenarioContext;

typedef void (*ScenarioFunc) (Exchange              *exchange,
                              const ScenarioContext *context);

/* The scenario named @name, or NULL. */
ScenarioFunc find_scenario (const char *name);

/* @text as a number from @min to @max; FALSE when it is not one. */
gboolean parse_uint (const char *text,
                     guint64     min,
                     guint64     max,
                     guint64    *out);
