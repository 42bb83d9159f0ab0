/* mock-llm-server: writing responses, and the errors each provider
 * answers with. */
#include "config.h"

#include "mock-llm-server.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Writing responses                                                  */
/* ------------------------------------------------------------------ */

static const char *
reason_phrase (guint status)
{
  switch (status)
    {
    case 100: return "Continue";
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return status < 500 ? "Client Error" : "Server Error";
    }
}

static gboolean
write_vectors (Exchange      *exchange,
               GOutputVector *vectors,
               gsize          n_vectors)
{
  g_autoptr (GError) error = NULL;

  if (!exchange->alive)
    return FALSE;
  if (!g_output_stream_writev_all (exchange->out, vectors, n_vectors, NULL, NULL, &error))
    {
      /* The client hung up; that is its right, not our failure. */
      exchange->alive = FALSE;
      return FALSE;
    }
  return TRUE;
}

gboolean
write_bytes (Exchange   *exchange,
             const char *data,
             gsize       length)
{
  GOutputVector vector = { data, length };

  return write_vectors (exchange, &vector, 1);
}

void
send_head (Exchange          *exchange,
           guint              status,
           const char        *content_type,
           gssize             content_length,
           const char *const *extra_headers)
{
  g_autoptr (GString) head = g_string_new (NULL);

  g_string_append_printf (head, "HTTP/1.1 %u %s\r\n", status, reason_phrase (status));
  g_string_append_printf (head, "Content-Type: %s\r\n", content_type);
  if (content_length >= 0)
    g_string_append_printf (head, "Content-Length: %" G_GSSIZE_FORMAT "\r\n", content_length);
  else
    g_string_append (head, "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n");
  g_string_append (head, "Connection: close\r\n");
  /* Each provider names its request id header differently. */
  if (exchange->provider == PROVIDER_ANTHROPIC)
    g_string_append_printf (head, "request-id: req_mock_%" G_GUINT64_FORMAT "\r\n", exchange->request->seq);
  else
    g_string_append_printf (head, "x-request-id: req_mock_%" G_GUINT64_FORMAT "\r\n", exchange->request->seq);
  for (guint i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
    g_string_append_printf (head, "%s\r\n", extra_headers[i]);
  g_string_append (head, "\r\n");

  exchange->chunked = content_length < 0;
  write_bytes (exchange, head->str, head->len);
}

gboolean
send_piece (Exchange   *exchange,
            const char *data,
            gsize       length)
{
  char size_line[32];
  GOutputVector vectors[3];

  if (length == 0)
    return exchange->alive;
  if (!exchange->chunked)
    return write_bytes (exchange, data, length);

  g_snprintf (size_line, sizeof size_line, "%" G_GSIZE_MODIFIER "x\r\n", length);
  vectors[0] = (GOutputVector) { size_line, strlen (size_line) };
  vectors[1] = (GOutputVector) { data, length };
  vectors[2] = (GOutputVector) { "\r\n", 2 };
  return write_vectors (exchange, vectors, G_N_ELEMENTS (vectors));
}

void
send_end (Exchange *exchange)
{
  if (exchange->chunked)
    write_bytes (exchange, "0\r\n\r\n", 5);
}

void
send_complete (Exchange          *exchange,
               guint              status,
               const char        *content_type,
               const char        *body,
               const char *const *extra_headers)
{
  gsize length = strlen (body);

  send_head (exchange, status, content_type, (gssize) length, extra_headers);
  send_piece (exchange, body, length);
}

char *
json_to_text (json_t *json)
{
  char *dumped = json_dumps (json, JSON_COMPACT | JSON_PRESERVE_ORDER);
  char *text = g_strdup (dumped);

  free (dumped);
  return text;
}

/* ------------------------------------------------------------------ */
/* Provider-shaped errors                                             */
/* ------------------------------------------------------------------ */

typedef struct
{
  guint       status;
  const char *type;
  const char *code;
  const char *message;
} ErrorShape;

/* OpenAI: {"error":{"message","type","param","code"}}. Messages follow the
 * ones observed from the real API where the reference quotes them. */
static const ErrorShape openai_errors[] = {
  { 400, "invalid_request_error", NULL, "We could not parse the JSON body of your request." },
  { 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided." },
  { 403, "invalid_request_error", "unsupported_country_region_territory",
    "Country, region, or territory not supported" },
  { 404, "invalid_request_error", "model_not_found",
    "The model does not exist or you do not have access to it." },
  { 429, "requests", "rate_limit_exceeded",
    "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1." },
  { 500, "server_error", NULL,
    "The server had an error while processing your request. Sorry about that!" },
  { 503, "server_error", NULL, "The server is overloaded or not ready yet." },
};

/* Anthropic: {"type":"error","error":{"type","message"}}, one error type per
 * status as listed in the API's errors page; other 4xx statuses use
 * invalid_request_error, other 5xx api_error. */
static const ErrorShape anthropic_errors[] = {
  { 400, "invalid_request_error", NULL, "Invalid request." },
  { 401, "authentication_error", NULL, "invalid x-api-key" },
  { 402, "billing_error", NULL, "Your credit balance is too low to access the Anthropic API." },
  { 403, "permission_error", NULL, "Your API key does not have permission to use the specified resource." },
  { 404, "not_found_error", NULL, "Not found." },
  { 413, "request_too_large", NULL, "Request exceeds the maximum allowed number of bytes." },
  { 429, "rate_limit_error", NULL, "Number of requests has exceeded your rate limit." },
  { 500, "api_error", NULL, "Internal server error" },
  { 504, "timeout_error", NULL, "Request timed out." },
  { 529, "overloaded_error", NULL, "Overloaded" },
};

static ErrorShape
find_error_shape (Provider provider,
                  guint    status)
{
  const ErrorShape *table = provider == PROVIDER_ANTHROPIC ? anthropic_errors : openai_errors;
  gsize n = provider == PROVIDER_ANTHROPIC ? G_N_ELEMENTS (anthropic_errors) : G_N_ELEMENTS (openai_errors);
  ErrorShape shape = { status, NULL, NULL, reason_phrase (status) };

  for (gsize i = 0; i < n; i++)
    if (table[i].status == status)
      return table[i];
  if (provider == PROVIDER_ANTHROPIC)
    shape.type = status < 500 ? "invalid_request_error" : "api_error";
  else
    shape.type = status < 500 ? "invalid_request_error" : "server_error";
  return shape;
}

char *
error_body (Provider    provider,
            guint       status,
            const char *message)
{
  ErrorShape shape = find_error_shape (provider, status);
  g_autoptr (json_t) json = NULL;

  if (message == NULL)
    message = shape.message;
  if (provider == PROVIDER_ANTHROPIC)
    json = json_pack ("{s:s, s:{s:s, s:s}}", "type", "error",
                      "error", "type", shape.type, "message", message);
  else
    json = json_pack ("{s:{s:s, s:s, s:n, s:o}}", "error", "message", message, "type", shape.type,
                      "param", "code", shape.code ? json_string (shape.code) : json_null ());
  return json_to_text (json);
}

void
send_error (Exchange          *exchange,
            guint              status,
            const char        *message,
            const char *const *extra_headers)
{
  g_autofree char *body = error_body (exchange->provider, status, message);

  send_complete (exchange, status, "application/json", body, extra_headers);
}

void
send_unknown_url (Exchange *exchange)
{
  g_autofree char *message = g_strdup_printf ("Invalid URL (%s %s)", exchange->request->method,
                                              exchange->request->path);
  g_autoptr (json_t) json = json_pack ("{s:{s:s, s:s, s:n, s:n}}", "error", "message", message,
                                       "type", "invalid_request_error", "param", "code");
  g_autofree char *body = json_to_text (json);

  send_complete (exchange, 404, "application/json", body, NULL);
}

void
send_mock_error (Exchange   *exchange,
                 const char *format,
                 ...)
{
  g_autofree char *message = NULL;
  g_autofree char *body = NULL;
  g_autoptr (json_t) json = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  json = json_pack ("{s:s}", "mock_error", message);
  body = json_to_text (json);
  send_complete (exchange, 400, "application/json", body, NULL);
}
