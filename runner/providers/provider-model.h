/* The model of an HTTP chat model provider (OpenAI, Anthropic): the
 * settings of its `[model NAME]` section, and the table of what the
 * provider adds to the shared code: its wire format, the request body and
 * headers, and what each server-sent event means. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include <chime/chime.h>
#include "model.h"
#include "sse-parser.h"

typedef struct _ChimeProviderOps ChimeProviderOps;

/* The settings of a `[model NAME]` section of an HTTP provider; each
 * provider's model starts with one. */
typedef struct {
  ChimeModel              parent;
  const ChimeProviderOps *ops;
  char                   *section;            /* "model NAME", for messages */
  char                   *base_url;           /* without a trailing slash */
  char                   *api_key_env;
  char                   *api_key_file;       /* absolute, or NULL: use api_key_env */
  gboolean                warned_key_mode;    /* said once that others can read it */
  gboolean                has_temperature;
  gdouble                 temperature;
  gint64                  max_tokens;         /* 0: not sent */
  char                  **stop;               /* never NULL */
  char                  **headers;            /* "Name: value", never NULL */
  json_t                 *extra_body;         /* an object, or NULL */
  char                   *tool_choice;        /* auto, none, required or a tool's name; NULL: not sent */
  gdouble                 timeout_s;
  gdouble                 connect_timeout_s;
  gint64                  max_retries;
  /* The HTTP client of the last stream's context: holding it keeps its
   * connections open for the next stream. */
  ChimeHttpClient        *client;
} ChimeProviderModel;

struct _ChimeProviderOps {
  const char *name;                    /* "openai": starts every message */
  const char *default_base_url;
  const char *default_api_key_env;
  const char *endpoint;                /* appended to base_url: "/chat/completions" */
  const char *terminator;              /* for messages: "data: [DONE]" */
  gint64      default_max_tokens;      /* 0: none */
  gdouble     max_temperature;
  /* A server-asked delay longer than this is not honoured; with
   * refuse_long_retry_after the request is then not retried at all (as
   * openai-python does), otherwise the usual backoff applies
   * (anthropic-sdk-python). */
  gdouble     max_retry_after_s;
  gboolean    refuse_long_retry_after;
  /* Request body keys extra_body must not set. NULL-terminated. */
  const char *const *reserved_body_keys;

  /* The JSON body for @messages (model.h's shapes) offering @tools
   * (NULL: none); NULL with @error when a message or a tool cannot be
   * sent. New reference. */
  json_t   *(*build_body)   (ChimeProviderModel *model,
                             json_t             *messages,
                             json_t             *tools,
                             GError            **error);
  /* Adds the authentication and protocol headers ("Name: value"). */
  void      (*add_headers)  (ChimeProviderModel *model,
                             const char         *api_key,
                             GPtrArray          *headers);
  /* What a stream remembers of its events (usage, ids), and what it
   * makes of them at the end. */
  gpointer  (*state_new)    (ChimeProviderModel *model);
  void      (*state_free)   (gpointer            state);
  /* One event of a successful (2xx) response. It may look at the
   * event's type and data only; a token it yields must be the text of a
   * JSON string in the data, and an event that yields a token must
   * change nothing else when handled again right after itself: the
   * stream then skips it for events that differ only in the token's
   * string (see ChimeTokenTemplate). */
  void      (*handle_event) (ChimeModelStream    *stream,
                             gpointer             state,
                             const ChimeSseEvent *event);
  /* Fills the result's members with new references (NULL when unknown). */
  void      (*fill_result)  (ChimeProviderModel *model,
                             gpointer            state,
                             ChimeModelResult   *result);
};
