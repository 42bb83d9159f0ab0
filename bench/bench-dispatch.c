/* Dispatch overhead benchmark: ns per event through real plugins.
 *
 *   bench-dispatch [--n N] [--runs R] [--only PREFIX,...] [--list] [--phases K]
 *
 * Each case builds a runtime with counting handlers loaded from
 * CHIME_PLUGIN_PATH (tests/plugins/counter and counter_async), emits N
 * tokens cycling "0".."9" on one chat-model run and flushes. Every handler
 * checks it saw every token in order and reports it; a case whose handlers
 * missed, reordered or dropped anything fails the whole program. It prints
 * one JSON line per case: the median over runs of the wall time per event
 * from the first emit to the end of the flush, the emitter's own time per
 * event (how long the emitting code was held up), the CPU time of the
 * whole process per event over the same span (every thread: a consumer
 * spinning on another core counts), and the process's peak RSS. The "floor" case calls a handler function directly in a loop: the
 * physical floor for one handler. Run each case in a fresh process for a
 * meaningful peak RSS (bench/run does).
 *
 * --phases K also prints, for each case's first run, how long the
 * emitter took for each K tokens in turn, in µs, as one JSON line
 * {"phases":CASE,"every":K,"us":[...]}: where a fresh runtime's time goes
 * (its ring's first lap, its pool threads' start, waits for room). */
#include <chime/chime.h>

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench-usage.h"

typedef struct {
  const char *name;
  guint       sync_handlers;
  guint       async_handlers;
  const char *delivery;
  guint       threads;       /* 0: the runtime's default */
  gint64      delay_us;      /* per token, in each sync handler */
  gint64      n;             /* 0: --n */
  gboolean    floor;
  const char *note;
  gboolean    isolated;      /* isolation = process for the sync handlers */
} BenchCase;

static const BenchCase cases[] = {
  { "floor_direct_call", 1, 0, NULL, 0, 0, 0, TRUE, "a plain loop calling the handler function" },
  { "sync1_fenced", 1, 0, "fenced", 0, 0, 0, FALSE, "1 sync handler, default delivery" },
  { "sync4_fenced", 4, 0, "fenced", 0, 0, 0, FALSE, "4 sync handlers, default delivery" },
  { "sync4_awaited", 4, 0, "awaited", 0, 0, 0, FALSE, "4 sync handlers, awaited" },
  { "sync1_awaited", 1, 0, "awaited", 0, 0, 0, FALSE, "1 sync handler, awaited" },
  { "slow4_background", 4, 0, "background", 4, 1000, 2000, FALSE, "4 handlers x 1 ms per token" },
  { "slow4_awaited", 4, 0, "awaited", 4, 1000, 2000, FALSE, "4 handlers x 1 ms per token" },
  { "async1_fenced", 0, 1, "fenced", 0, 0, 0, FALSE, "1 async handler on the main loop" },
  { "sync1_background", 1, 0, "background", 0, 0, 0, FALSE, NULL },
  { "sync4_background", 4, 0, "background", 0, 0, 0, FALSE, NULL },
  { "async1_background", 0, 1, "background", 0, 0, 0, FALSE, NULL },
  { "async1_awaited", 0, 1, "awaited", 0, 0, 0, FALSE, NULL },
  { "sync16_fenced", 16, 0, "fenced", 0, 0, 0, FALSE, "16 sync handlers" },
  { "sync4_fenced_8threads", 4, 0, "fenced", 8, 0, 0, FALSE, "8 pool threads" },
  { "sync4_fenced_1thread", 4, 0, "fenced", 1, 0, 0, FALSE, "1 pool thread" },
  { "sync1_isolated", 1, 0, "fenced", 0, 0, 0, FALSE, "1 sync handler in its own process", TRUE },
};

/* The tokens: "0".."9", so handlers can check the order cheaply. */
static const char *const digits[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };

/* --phases: 0, or how many tokens a phase is (first run of a case only). */
static guint64 phase_every;

static guint64 floor_count;

static gboolean
floor_handler (gpointer instance, ChimeEvent *event, GError **error)
{
  floor_count++;
  return TRUE;
}

/* The floor: what calling one handler costs without any runtime. */
static double
run_floor (guint64  n,
           double  *cpu_ns)
{
  ChimeSyncFunc volatile func = floor_handler;
  gint64 cpu_start = bench_cpu_us ();
  gint64 start = g_get_monotonic_time ();

  floor_count = 0;
  for (guint64 i = 0; i < n; i++)
    func (NULL, NULL, NULL);
  if (floor_count != n)
    g_error ("floor counted %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, floor_count, n);
  *cpu_ns = (bench_cpu_us () - cpu_start) * 1000.0 / n;
  return (g_get_monotonic_time () - start) * 1000.0 / n;
}

static char *
case_ini (const BenchCase *c,
          const char      *dir)
{
  GString *ini = g_string_new ("[runtime]\n");

  g_string_append_printf (ini, "delivery = %s\n", c->delivery);
  if (c->isolated)
    g_string_append (ini, "isolation = process\n");
  if (c->threads > 0)
    g_string_append_printf (ini, "threads = %u\n", c->threads);
  for (guint i = 0; i < c->sync_handlers; i++)
    g_string_append_printf (ini, "[handler sync%u]\nplugin = counter\ncheck_order = true\n"
                            "delay_us = %" G_GINT64_FORMAT "\nreport = %s/sync%u\n",
                            i, c->delay_us, dir, i);
  for (guint i = 0; i < c->async_handlers; i++)
    g_string_append_printf (ini, "[handler async%u]\nplugin = counter_async\ncheck_order = true\n"
                            "report = %s/async%u\n", i, dir, i);
  return g_string_free (ini, FALSE);
}

/* Every handler's report must say: all n tokens, none out of order. */
static void
check_reports (const BenchCase *c,
               const char      *dir,
               guint64          n)
{
  for (guint i = 0; i < c->sync_handlers + c->async_handlers; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s%u", i < c->sync_handlers ? "sync" : "async",
                                               i < c->sync_handlers ? i : i - c->sync_handlers);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = NULL;
      guint64 tokens = 0, violations = 0;

      if (!g_file_get_contents (path, &text, NULL, NULL) ||
          sscanf (text, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &tokens, &violations) != 2 ||
          tokens != n || violations != 0)
        g_error ("case %s: handler %s saw %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " tokens, %" G_GUINT64_FORMAT " out of order", c->name, name, tokens, n, violations);
      g_unlink (path);
    }
}

/* One run of a runtime case: returns the wall ns per event; *emit_ns gets
 * the emitter's own ns per event, *cpu_ns the process's CPU ns per event. */
/* Prints the phases of a run that began at @start. */
static void
print_phases (const BenchCase *c,
              gint64           start,
              GArray          *phases)
{
  GString *line = g_string_new (NULL);

  g_string_append_printf (line, "{\"phases\":\"%s\",\"every\":%" G_GUINT64_FORMAT ",\"us\":[",
                          c->name, phase_every);
  for (guint i = 0; i < phases->len; i++)
    {
      gint64 end = g_array_index (phases, gint64, i);

      g_string_append_printf (line, "%s%" G_GINT64_FORMAT, i > 0 ? "," : "", end - start);
      start = end;
    }
  g_string_append (line, "]}\n");
  g_print ("%s", line->str);
  g_string_free (line, TRUE);
}

static double
run_case (const BenchCase *c,
          guint64          n,
          gboolean         first,
          double          *emit_ns,
          double          *cpu_ns)
{
  g_autofree char *dir = g_dir_make_tmp ("chime-bench-XXXXXX", NULL);
  g_autofree char *ini = case_ini (c, dir);
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  ChimeCallbackManager *manager;
  ChimeRun *llm;
  json_t *messages;
  gint64 start, emitted, flushed, cpu_start, cpu_end;
  g_autoptr (GArray) phases = first && phase_every > 0 ? g_array_new (FALSE, FALSE, sizeof (gint64))
                                                       : NULL;

  if (!g_key_file_load_from_data (key_file, ini, -1, G_KEY_FILE_NONE, &error))
    g_error ("%s", error->message);
  runtime = chime_runtime_new_from_key_file (key_file, c->name, NULL, &error);
  if (runtime == NULL)
    g_error ("%s", error->message);
  manager = chime_runtime_new_callback_manager (runtime);
  messages = json_pack ("[{s:s, s:s}]", "type", "human", "content", "count to nine");
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "bench", NULL, &error);
  json_decref (messages);

  cpu_start = bench_cpu_us ();
  start = g_get_monotonic_time ();
  if (phases == NULL)
    for (guint64 i = 0; i < n; i++)
      {
        if (!chime_run_on_llm_new_token (llm, digits[i % 10], NULL, &error))
          g_error ("%s", error->message);
      }
  else
    /* A loop of its own, so that the timed loop above stays as it is. */
    for (guint64 i = 0, left = phase_every; i < n; i++)
      {
        if (!chime_run_on_llm_new_token (llm, digits[i % 10], NULL, &error))
          g_error ("%s", error->message);
        if (--left == 0)
          {
            gint64 now = g_get_monotonic_time ();

            g_array_append_val (phases, now);
            left = phase_every;
          }
      }
  emitted = g_get_monotonic_time ();
  chime_runtime_flush (runtime);
  flushed = g_get_monotonic_time ();
  cpu_end = bench_cpu_us ();

  chime_run_unref (llm);
  chime_callback_manager_unref (manager);
  chime_runtime_unref (runtime);
  check_reports (c, dir, n);
  g_rmdir (dir);
  if (phases != NULL)
    print_phases (c, start, phases);
  *emit_ns = (emitted - start) * 1000.0 / n;
  *cpu_ns = (cpu_end - cpu_start) * 1000.0 / n;
  return (flushed - start) * 1000.0 / n;
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static gboolean
selected (const BenchCase *c,
          char           **filters)
{
  if (filters == NULL)
    return TRUE;
  for (guint f = 0; filters[f] != NULL; f++)
    if (g_str_has_prefix (c->name, filters[f]))
      return TRUE;
  return FALSE;
}

int
main (int    argc,
      char **argv)
{
  gint64 n = 1000000;
  gint runs = 3;
  g_autofree char *only = NULL;
  gboolean list = FALSE;
  gint64 phases = 0;
  GOptionEntry entries[] = {
    { "n", 0, 0, G_OPTION_ARG_INT64, &n, "events per case (default 1000000)", "N" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "runs per case; the median is printed", "R" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "run cases whose name starts with one of these (comma-separated)", "S" },
    { "list", 0, 0, G_OPTION_ARG_NONE, &list, "list the cases", NULL },
    { "phases", 0, 0, G_OPTION_ARG_INT64, &phases, "also print the emitter's time per K tokens of each case's first run", "K" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- chime dispatch benchmark");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) filters = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || runs < 1 || n < 10 || phases < 0)
    {
      g_printerr ("bench-dispatch: %s\n", error != NULL ? error->message
                                                       : "--runs >= 1, --n >= 10 and --phases >= 0");
      return 2;
    }
  phase_every = (guint64) phases;
  filters = only != NULL ? g_strsplit (only, ",", -1) : NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const BenchCase *c = &cases[i];
      guint64 case_n = c->n > 0 ? c->n : n;
      g_autofree double *wall = g_new0 (double, runs);
      g_autofree double *emit = g_new0 (double, runs);
      g_autofree double *cpu = g_new0 (double, runs);

      if (!selected (c, filters))
        continue;
      if (list)
        {
          g_print ("%s\n", c->name);
          continue;
        }
      for (gint r = 0; r < runs; r++)
        wall[r] = c->floor ? (emit[r] = run_floor (case_n, &cpu[r]))
                           : run_case (c, case_n, r == 0, &emit[r], &cpu[r]);
      qsort (wall, runs, sizeof (double), compare_doubles);
      qsort (emit, runs, sizeof (double), compare_doubles);
      qsort (cpu, runs, sizeof (double), compare_doubles);
      g_print ("{\"case\":\"%s\",\"n\":%" G_GUINT64_FORMAT ",\"handlers\":%u,\"delivery\":\"%s\","
               "\"ns_per_event\":%.1f,\"emit_ns_per_event\":%.1f,\"cpu_ns_per_event\":%.1f,\"min_ns\":%.1f,\"max_ns\":%.1f,"
               "\"wall_s\":%.4f,\"emit_s\":%.4f,\"peak_rss_mb\":%.1f,\"ok\":true,\"note\":\"%s\"}\n",
               c->name, case_n, c->sync_handlers + c->async_handlers,
               c->delivery != NULL ? c->delivery : "none",
               wall[runs / 2], emit[runs / 2], cpu[runs / 2], wall[0], wall[runs - 1],
               wall[runs / 2] * case_n / 1e9, emit[runs / 2] * case_n / 1e9, bench_peak_rss_mb (),
               c->note != NULL ? c->note : "");
    }
  return 0;
}
