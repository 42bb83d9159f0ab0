/* A libcurl client of the mock LLM server (tests/mock-llm-server), shared
 * by its tests (tests/test-mock-server-*.c): starting servers, sending
 * requests as the providers' SDKs do, and reading the replies. */
#pragma once

#include "config.h"

#include "test-helpers.h"

#include <curl/curl.h>
#include <jansson.h>

#define OPENAI_PATH "/v1/chat/completions"
#define ANTHROPIC_PATH "/v1/messages"
#define OPENAI_BODY "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]," \
                    "\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
#define ANTHROPIC_BODY "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024," \
                       "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"stream\":true}"

/* A running server: its process, its port, and the file it logs every
 * request to, in a temporary folder of its own. */
typedef struct
{
  GSubprocess *process;
  guint        port;
  char        *dir;
  char        *log_path;
} MockServer;

/* The server every test talks to unless it starts its own: started
 * before the first test, stopped after the last. */
extern MockServer *shared;

/* Starts a server; @extra_arg (may be NULL) is one more argument. */
MockServer *mock_server_start (const char *extra_arg);

/* Stops @server and removes its folder. */
void mock_server_free (MockServer *server);

/* One response as the client saw it. */
typedef struct
{
  CURLcode           code;
  long               status;
  GString           *body;
  /* "Name: value" lines of the final response (not of a 100 Continue). */
  GPtrArray         *headers;
  gboolean           saw_continue;
  gint64             elapsed_ms;
  struct curl_slist *request_headers;
  gint64             started;
} Reply;

void reply_free (Reply *reply);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

/* The value of the response header @name (any case), or NULL. */
const char *reply_header (Reply      *reply,
                          const char *name);

/* An easy handle for a request to @port; @reply receives the answer. */
CURL *new_easy (guint       port,
                const char *path,
                const char *body,
                GPtrArray  *headers,
                long        timeout_ms,
                Reply      *reply);

/* Records how the transfer of @easy ended in @reply. */
void reply_finish (Reply *reply,
                   CURL  *easy,
                   CURLcode code);

/* Sends one request to @port with exactly @headers and waits for the reply.
 * @body NULL makes it a GET. */
Reply *request_full (guint       port,
                     const char *path,
                     const char *body,
                     GPtrArray  *headers,
                     long        timeout_ms);

/* POSTs @body to @path on the shared server, with the provider's auth
 * headers and the NULL-terminated extra headers. */
Reply *post (const char *path,
             const char *body,
             ...) G_GNUC_NULL_TERMINATED;

/* The same with a timeout and no implicit headers. */
Reply *post_raw (const char *path,
                 const char *body,
                 long        timeout_ms,
                 ...) G_GNUC_NULL_TERMINATED;

/* The contents of tests/fixtures/@name. */
char *read_fixture (const char *name);

/* A complete 200 whose body is @fixture, byte for byte. */
void assert_body_is_fixture (Reply      *reply,
                             const char *fixture);

/* The reply body as JSON (fails the test when it is not). */
json_t *reply_json (Reply *reply);

/* An "X-Mock-Key: PREFIX-..." header no other request carries. */
char *unique_key (const char *prefix);

/* Runs @tests (those selected by $CHIME_TEST_FILTER) against the shared
 * server. */
int mock_client_run_tests (const struct CMUnitTest *tests,
                           gsize                    n_tests);
