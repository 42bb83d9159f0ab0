/* live — the trace page, served while the run goes on.
 *
 *   [handler live]
 *   plugin = live
 *   # an IP address and a port (0: any free port); loopback by default
 *   listen = 127.0.0.1:8470
 *   # listening on any other address needs this, said in so many words
 *   allow_remote = false
 *
 * At start the handler logs where it serves ("live view on
 * http://127.0.0.1:8470/"). GET / is the page trace_html writes
 * (trace-page.html), without runs; the page then follows GET /events, a
 * stream of Server-Sent Events: first the whole tree so far ({"op":
 * "reset", "trace": ...}), then every change as it happens (the updates
 * of trace-runs.h), so a long run or a batch can be watched in a browser,
 * and a page opened mid-run (or reloaded) starts from everything seen.
 *
 * It is an async handler: everything happens on the main loop, and an
 * event is complete once its update is queued to every browser. A browser
 * that falls more than max_buffer_kb behind is disconnected (its
 * EventSource reconnects, from a fresh snapshot), so a slow or stuck
 * browser never blocks the run nor grows its memory; how many were is
 * logged at the end. Payloads are redacted as trace_html's are.
 *
 * The run's inputs and outputs are on that port for anyone who can reach
 * it: an address that is not loopback is refused unless allow_remote =
 * true. When the run ends, the streams end and the server stops; the
 * page keeps what it shows.
 */
#include <chime/plugin.h>

#include "live-server.h"
#include "trace-page.h"
#include "trace-runs.h"

#include <string.h>

typedef struct {
  ChimeHandlerContext *context;
  char                *title;
  TraceRuns           *runs;
  LiveServer          *server;
} LiveView;

static const ChimeConfigKey live_keys[] = {
  { "listen", CHIME_CONFIG_STRING, "127.0.0.1:8470",
    "where to serve the page: IP:PORT ([v6]:PORT), port 0 for any free one" },
  { "allow_remote", CHIME_CONFIG_BOOL, "false",
    "allow a listen address that is not loopback (the run's inputs and outputs are served to whoever connects)" },
  { "title", CHIME_CONFIG_STRING, "chime run", "the page's heading" },
  { "max_buffer_kb", CHIME_CONFIG_INT, "1024",
    "how far (KiB) a browser may fall behind before it is disconnected" },
  { "max_clients", CHIME_CONFIG_INT, "16", "how many connections at once" },
  { NULL }
};

static void live_view_free (gpointer instance);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LiveView, live_view_free)

/* @listen ("127.0.0.1:8470", "[::1]:0", "localhost:8470") as an address;
 * a host name other than localhost is refused: what it resolves to is
 * not something to guess at when deciding whom to serve. */
static GInetSocketAddress *
parse_listen (const char *listen,
              gboolean    allow_remote,
              GError    **error)
{
  g_autoptr (GSocketConnectable) parsed = NULL;
  g_autoptr (GInetAddress) address = NULL;
  const char *colon = strrchr (listen, ':');
  const char *host;
  guint16 port;

  /* The port must be written: "127.0.0.1" alone would quietly mean a
   * default the user never chose. */
  if (colon != NULL && colon[1] != '\0' && strspn (colon + 1, "0123456789") == strlen (colon + 1))
    parsed = g_network_address_parse (listen, 0, NULL);
  if (parsed == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "listen = %s: give an IP address and a port, as 127.0.0.1:8470 ([::1]:8470 for IPv6)",
                   listen);
      return NULL;
    }
  host = g_network_address_get_hostname (G_NETWORK_ADDRESS (parsed));
  port = g_network_address_get_port (G_NETWORK_ADDRESS (parsed));
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    address = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  else
    address = g_inet_address_new_from_string (host);
  if (address == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "listen = %s: '%s' is not an IP address (use 127.0.0.1, ::1 or localhost)", listen, host);
      return NULL;
    }
  if (!g_inet_address_get_is_loopback (address) && !allow_remote)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "listen = %s is not a loopback address: the live view would serve the run's inputs and "
                   "outputs to other machines. Use 127.0.0.1:PORT, or set allow_remote = true to mean it",
                   listen);
      return NULL;
    }
  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, port));
}

/* The page as GET / serves it: no runs yet, following /events. */
static GBytes *
empty_page (const char *title)
{
  g_autoptr (TraceRuns) none = trace_runs_new ();
  g_autoptr (json_t) trace = trace_runs_to_json (none, title);
  GString *page;

  json_object_set_new (trace, "live", json_true ());
  page = trace_page_render (trace);
  return g_string_free_to_bytes (page);
}

/* The first message of every stream: the whole tree so far. */
static char *
snapshot (gpointer data)
{
  LiveView *self = data;
  g_autoptr (json_t) trace = trace_runs_to_json (self->runs, self->title);
  g_autoptr (json_t) reset = NULL;

  json_object_set_new (trace, "live", json_true ());
  reset = json_pack ("{s:s, s:O}", "op", "reset", "trace", trace);
  return json_dumps (reset, JSON_COMPACT | JSON_REAL_PRECISION (12));
}

static gpointer
live_view_new (ChimeHandlerContext *context,
               GError             **error)
{
  g_autoptr (LiveView) self = g_new0 (LiveView, 1);
  g_autoptr (GInetSocketAddress) address = NULL;
  g_autoptr (GBytes) page = NULL;
  gint64 max_buffer_kb = chime_handler_context_get_int (context, "max_buffer_kb");
  gint64 max_clients = chime_handler_context_get_int (context, "max_clients");
  LiveServerOptions options = { 0 };

  self->context = context;
  self->title = g_strdup (chime_handler_context_get_string (context, "title"));
  self->runs = trace_runs_new ();
  if (max_buffer_kb < 1 || max_buffer_kb > 1024 * 1024)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "max_buffer_kb = %" G_GINT64_FORMAT ": give a size from 1 to 1048576 (KiB)", max_buffer_kb);
      return NULL;
    }
  if (max_clients < 1 || max_clients > 1024)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "max_clients = %" G_GINT64_FORMAT ": give a count from 1 to 1024", max_clients);
      return NULL;
    }
  address = parse_listen (chime_handler_context_get_string (context, "listen"),
                          chime_handler_context_get_bool (context, "allow_remote"), error);
  if (address == NULL)
    return NULL;
  page = empty_page (self->title);
  options.address = address;
  options.context = chime_handler_context_get_main_context (context);
  options.page = page;
  options.snapshot = snapshot;
  options.user_data = self;
  options.max_buffer = (gsize) max_buffer_kb * 1024;
  options.max_clients = (guint) max_clients;
  self->server = live_server_new (&options, error);
  if (self->server == NULL)
    return NULL;
  {
    g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (address));
    gboolean v6 = strchr (host, ':') != NULL;

    chime_handler_log (context, G_LOG_LEVEL_MESSAGE, "live view on http://%s%s%s:%u/", v6 ? "[" : "", host,
                       v6 ? "]" : "", live_server_get_port (self->server));
  }
  return g_steal_pointer (&self);
}

static void
live_view_free (gpointer instance)
{
  LiveView *self = instance;

  if (self->server != NULL && live_server_get_n_dropped (self->server) > 0)
    chime_handler_log (self->context, G_LOG_LEVEL_WARNING,
                       "%u browser stream(s) fell more than max_buffer_kb behind and were disconnected",
                       live_server_get_n_dropped (self->server));
  g_clear_pointer (&self->server, live_server_free);
  g_clear_pointer (&self->runs, trace_runs_free);
  g_free (self->title);
  g_free (self);
}

static void
live_view_on_event (gpointer         instance,
                    ChimeEvent      *event,
                    ChimeCompletion *completion)
{
  LiveView *self = instance;
  g_autoptr (json_t) update = trace_runs_apply (self->runs, event);

  if (update != NULL)
    {
      g_autofree char *line = json_dumps (update, JSON_COMPACT | JSON_REAL_PRECISION (12));

      live_server_broadcast (self->server, line);
    }
  chime_completion_complete (completion);
}

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "live",
  .description = "serves the trace page on 127.0.0.1 and pushes the run to it as it happens (Server-Sent Events)",
  .version = CHIME_VERSION_STRING,
  .config_keys = live_keys,
  .instance_new = live_view_new,
  .instance_free = live_view_free,
  .on_event = live_view_on_event,
);
