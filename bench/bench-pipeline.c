/* End-to-end benchmark: the fake chat model streams N tokens through a
 * whole pipeline (root chain, prompt, chat model, parser) on the GLib main
 * loop, with one counting handler and with none.
 *
 *   bench-pipeline [--n N] [--runs R] [--only PREFIX,...]
 *
 * Prints one JSON line per case like bench-dispatch: ns per token from the
 * start of the run to the end of the flush, the process's CPU ns per token
 * over the same span (every thread), and peak RSS. The counting
 * handler checks it saw every token, in order.
 *
 * Before a case's timed runs, one untimed run of WARMUP_N tokens, as the
 * LangChain.js peer streams 2,000 tokens through a model of its own
 * before its timed pass: without it chime's first run in a fresh process
 * (bench/run's `--runs 1`) paid the process's first use of its code and
 * memory (lazy binding, page faults, the handler's thread) inside the
 * timed span, and the peer did not. */
#include <chime/chime.h>

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include "bench-usage.h"

#include "pipeline/pipeline.h"
#include "pipeline-helpers.h"

typedef struct {
  const char *name;
  gboolean    with_handler;
  const char *delivery;
} PipelineCase;

#define WARMUP_N 2000

static const PipelineCase cases[] = {
  { "pipeline_stream_1h", TRUE, "fenced" },
  { "pipeline_stream_nocb", FALSE, "fenced" },
  { "pipeline_stream_1h_awaited", TRUE, "awaited" },
};

static char *
pipeline_ini (const PipelineCase *c,
              guint64             n,
              const char         *report)
{
  GString *ini = g_string_new (NULL);

  g_string_append_printf (ini, "[runtime]\ndelivery = %s\n[pipeline]\nprompt = count\nmodel = m\n"
                          "[model m]\nprovider = fake\nchunks = [", c->delivery);
  for (guint64 i = 0; i < n; i++)
    g_string_append_printf (ini, "%s\"%u\"", i > 0 ? "," : "", (guint) (i % 10));
  g_string_append (ini, "]\n");
  if (c->with_handler)
    g_string_append_printf (ini, "[handler count]\nplugin = counter\ncheck_order = true\nreport = %s\n",
                            report);
  return g_string_free (ini, FALSE);
}

/* One run: the wall ns per token; *cpu_ns gets the CPU ns per token. */
static double
run_case (const PipelineCase *c,
          guint64             n,
          double             *cpu_ns)
{
  g_autofree char *dir = g_dir_make_tmp ("chime-bench-XXXXXX", NULL);
  g_autofree char *report = g_build_filename (dir, "count", NULL);
  g_autofree char *ini = pipeline_ini (c, n, report);
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) variables = g_hash_table_new (g_str_hash, g_str_equal);
  ChimePipeline *pipeline = chime_pipeline_new_from_data (ini, c->name, dir, NULL, NULL, &error);
  g_autoptr (json_t) result = NULL;
  gint64 start, end, cpu_start;

  if (pipeline == NULL)
    g_error ("%s", error->message);
  cpu_start = bench_cpu_us ();
  start = g_get_monotonic_time ();
  result = test_pipeline_run (pipeline, variables, &error);
  chime_runtime_flush (chime_pipeline_get_runtime (pipeline));
  end = g_get_monotonic_time ();
  *cpu_ns = (bench_cpu_us () - cpu_start) * 1000.0 / n;
  if (result == NULL)
    g_error ("case %s failed: %s", c->name, error->message);
  chime_pipeline_free (pipeline);

  if (c->with_handler)
    {
      g_autofree char *text = NULL;
      guint64 tokens = 0, violations = 0;
      if (!g_file_get_contents (report, &text, NULL, NULL) ||
          sscanf (text, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &tokens, &violations) != 2 ||
          tokens != n || violations != 0)
        g_error ("case %s: the handler saw %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " tokens, %" G_GUINT64_FORMAT " out of order", c->name, tokens, n, violations);
      g_unlink (report);
    }
  g_rmdir (dir);
  return (end - start) * 1000.0 / n;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

int
main (int    argc,
      char **argv)
{
  gint64 n = 50000;
  gint runs = 3;
  g_autofree char *only = NULL;
  GOptionEntry entries[] = {
    { "n", 0, 0, G_OPTION_ARG_INT64, &n, "tokens per run (default 50000)", "N" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "runs per case; the median is printed", "R" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "cases whose name starts with one of these", "S" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- chime end-to-end pipeline benchmark");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) filters = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || runs < 1 || n < 1)
    {
      g_printerr ("bench-pipeline: %s\n", error != NULL ? error->message : "bad --runs or --n");
      return 2;
    }
  filters = only != NULL ? g_strsplit (only, ",", -1) : NULL;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree double *ns = g_new0 (double, runs);
      g_autofree double *cpu = g_new0 (double, runs);
      gboolean wanted = filters == NULL;

      for (guint f = 0; filters != NULL && filters[f] != NULL; f++)
        if (g_str_has_prefix (cases[i].name, filters[f]))
          wanted = TRUE;
      if (!wanted)
        continue;
      run_case (&cases[i], MIN (n, WARMUP_N), &cpu[0]);
      for (gint r = 0; r < runs; r++)
        ns[r] = run_case (&cases[i], n, &cpu[r]);
      qsort (ns, runs, sizeof (double), compare_doubles);
      qsort (cpu, runs, sizeof (double), compare_doubles);
      g_print ("{\"case\":\"%s\",\"n\":%" G_GINT64_FORMAT ",\"handlers\":%d,\"delivery\":\"%s\","
               "\"ns_per_event\":%.1f,\"cpu_ns_per_event\":%.1f,\"min_ns\":%.1f,\"max_ns\":%.1f,\"wall_s\":%.4f,"
               "\"peak_rss_mb\":%.1f,\"ok\":true}\n",
               cases[i].name, n, cases[i].with_handler ? 1 : 0, cases[i].delivery,
               ns[runs / 2], cpu[runs / 2], ns[0], ns[runs - 1], ns[runs / 2] * n / 1e9, bench_peak_rss_mb ());
    }
  return 0;
}
