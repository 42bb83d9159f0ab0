/* Dispatch overhead benchmark: ns per event through real plugins.
 *
 *   bench-dispatch [--n N] [--runs R] [--only SUBSTRING] [--list]
 *
 * Each case builds a runtime with counting handlers loaded from
 * CHIME_PLUGIN_PATH (tests/plugins/counter and recorder_async), emits N
 * tokens on one chat-model run and flushes. It checks that every handler
 * counted every token (the run fails otherwise) and prints one JSON line
 * per case: the median over runs of the wall time per event from the first
 * emit to the end of the flush, the emitter's own time per event, and the
 * process's peak RSS. The "floor" case calls a handler function directly
 * in a loop, the physical floor for one handler. */
#include <chime/chime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct {
  const char *name;
  guint       sync_handlers;
  guint       async_handlers;
  const char *delivery;
  guint       threads;       /* 0: default */
  gboolean    floor;
  const char *note;
} BenchCase;

static const BenchCase cases[] = {
  { "floor_direct_call", 1, 0, NULL, 0, TRUE, "plain loop calling the handler function" },
  { "sync1_fenced", 1, 0, "fenced", 0, FALSE, "1 sync handler, default delivery" },
  { "sync4_fenced", 4, 0, "fenced", 0, FALSE, "4 sync handlers, default delivery" },
  { "async1_fenced", 0, 1, "fenced", 0, FALSE, "1 async handler, default delivery" },
  { "sync1_background", 1, 0, "background", 0, FALSE, NULL },
  { "sync4_background", 4, 0, "background", 0, FALSE, NULL },
  { "async1_background", 0, 1, "background", 0, FALSE, NULL },
  { "sync1_awaited", 1, 0, "awaited", 0, FALSE, NULL },
  { "sync4_awaited", 4, 0, "awaited", 0, FALSE, NULL },
  { "async1_awaited", 0, 1, "awaited", 0, FALSE, NULL },
  { "sync16_fenced", 16, 0, "fenced", 0, FALSE, "no peer figure" },
  { "sync4_fenced_8threads", 4, 0, "fenced", 8, FALSE, "no peer figure" },
  { "sync4_fenced_1thread", 4, 0, "fenced", 1, FALSE, "no peer figure" },
};

static double
peak_rss_mb (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

static guint64 floor_count;

static gboolean
floor_handler (gpointer instance, ChimeEvent *event, GError **error)
{
  floor_count++;
  return TRUE;
}

/* The floor: what calling one handler costs without any runtime. */
static double
run_floor (guint64 n)
{
  ChimeSyncFunc volatile func = floor_handler;
  gint64 start = g_get_monotonic_time ();

  floor_count = 0;
  for (guint64 i = 0; i < n; i++)
    func (NULL, NULL, NULL);
  if (floor_count != n)
    g_error ("floor counted %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, floor_count, n);
  return (g_get_monotonic_time () - start) * 1000.0 / n;
}

static char *
case_ini (const BenchCase *c)
{
  GString *ini = g_string_new ("[runtime]\n");

  g_string_append_printf (ini, "delivery = %s\n", c->delivery);
  if (c->threads > 0)
    g_string_append_printf (ini, "threads = %u\n", c->threads);
  for (guint i = 0; i < c->sync_handlers; i++)
    g_string_append_printf (ini, "[handler sync%u]\nplugin = counter\n", i);
  for (guint i = 0; i < c->async_handlers; i++)
    g_string_append_printf (ini, "[handler async%u]\nplugin = counter_async\n", i);
  return g_string_free (ini, FALSE);
}

/* One run of a runtime case: returns the wall ns per event; *emit_ns gets
 * the emitter's own ns per event. */
static double
run_case (const BenchCase *c,
          guint64          n,
          double          *emit_ns)
{
  g_autofree char *ini = case_ini (c);
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  ChimeCallbackManager *manager;
  ChimeRun *llm;
  json_t *messages;
  gint64 start, emitted, flushed;
  static const char *const tokens[] = { "Why", " don't", " scientists", " trust", " atoms", "?" };

  if (!g_key_file_load_from_data (key_file, ini, -1, G_KEY_FILE_NONE, &error))
    g_error ("%s", error->message);
  runtime = chime_runtime_new_from_key_file (key_file, c->name, NULL, &error);
  if (runtime == NULL)
    g_error ("%s", error->message);
  manager = chime_runtime_new_callback_manager (runtime);
  messages = json_pack ("[{s:s, s:s}]", "type", "human", "content", "tell me a joke");
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "bench", NULL, &error);
  json_decref (messages);

  start = g_get_monotonic_time ();
  for (guint64 i = 0; i < n; i++)
    if (!chime_run_on_llm_new_token (llm, tokens[i % G_N_ELEMENTS (tokens)], NULL, &error))
      g_error ("%s", error->message);
  emitted = g_get_monotonic_time ();
  chime_runtime_flush (runtime);
  flushed = g_get_monotonic_time ();

  /* Honesty check: every handler saw every token. */
  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    {
      ChimeHandlerStats stats;
      const char *name = chime_runtime_get_handler_name (runtime, i);

      chime_runtime_get_handler_stats (runtime, name, &stats);
      /* +1: the chat_model_start, delivered to the async counter. */
      if (stats.delivered < n || stats.failed != 0 || stats.dropped != 0)
        g_error ("case %s: handler %s handled %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " tokens",
                 c->name, name, stats.delivered, n);
    }

  chime_run_unref (llm);
  chime_callback_manager_unref (manager);
  chime_runtime_free (runtime);
  *emit_ns = (emitted - start) * 1000.0 / n;
  return (flushed - start) * 1000.0 / n;
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

int
main (int    argc,
      char **argv)
{
  gint64 n = 1000000;
  gint runs = 3;
  char *only = NULL;
  gboolean list = FALSE;
  GOptionEntry entries[] = {
    { "n", 0, 0, G_OPTION_ARG_INT64, &n, "events per case (default 1000000)", "N" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "runs per case; the median is printed", "R" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "run cases whose name starts with one of these (comma-separated)", "S" },
    { "list", 0, 0, G_OPTION_ARG_NONE, &list, "list the cases", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- chime dispatch benchmark");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) filters = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-dispatch: %s\n", error->message);
      return 2;
    }
  filters = only != NULL ? g_strsplit (only, ",", -1) : NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const BenchCase *c = &cases[i];
      g_autofree double *wall = g_new0 (double, runs);
      g_autofree double *emit = g_new0 (double, runs);
      gboolean selected = filters == NULL;

      for (guint f = 0; filters != NULL && filters[f] != NULL; f++)
        if (g_str_has_prefix (c->name, filters[f]))
          selected = TRUE;
      if (!selected)
        continue;
      if (list)
        {
          g_print ("%s\n", c->name);
          continue;
        }
      for (gint r = 0; r < runs; r++)
        wall[r] = c->floor ? (emit[r] = run_floor (n)) : run_case (c, n, &emit[r]);
      qsort (wall, runs, sizeof (double), compare_doubles);
      qsort (emit, runs, sizeof (double), compare_doubles);
      g_print ("{\"case\":\"%s\",\"n\":%" G_GINT64_FORMAT ",\"handlers\":%u,\"delivery\":\"%s\","
               "\"ns_per_event\":%.1f,\"emit_ns_per_event\":%.1f,\"min_ns\":%.1f,\"max_ns\":%.1f,"
               "\"peak_rss_mb\":%.1f,\"note\":\"%s\"}\n",
               c->name, n, c->sync_handlers + c->async_handlers,
               c->delivery != NULL ? c->delivery : "none",
               wall[runs / 2], emit[runs / 2], wall[0], wall[runs - 1], peak_rss_mb (),
               c->note != NULL ? c->note : "");
    }
  return 0;
}
