/* chime run: one pipeline run, or one per line of --inputs, with the
 * main loop running until every handler has handled every event. */
#include "config.h"

#include <chime/chime.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json-compact.h"
#include "log-writer.h"
#include "pipeline/batch.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline-error.h"
#include "seed-ini.h"
#include "signals.h"
#include "stream-printer.h"

#define SEED_SOURCE_NAME "the built-in seed example"

typedef struct {
  GMainLoop    *loop;
  json_t       *result;
  GError       *error;
} RunState;

static void
on_run_done (json_t  *result,
             GError  *error,
             gpointer data)
{
  RunState *state = data;

  state->result = result;
  state->error = error;
  g_main_loop_quit (state->loop);
}

/* --var KEY=VALUE and --input TEXT into a variable table. */
static GHashTable *
collect_variables (char      **vars,
                   const char *input,
                   GError    **error)
{
  g_autoptr (GHashTable) variables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (guint i = 0; vars != NULL && vars[i] != NULL; i++)
    {
      const char *equals = strchr (vars[i], '=');
      if (equals == NULL || equals == vars[i])
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--var expects KEY=VALUE, got '%s'", vars[i]);
          return NULL;
        }
      g_hash_table_replace (variables, g_strndup (vars[i], equals - vars[i]), g_strdup (equals + 1));
    }
  if (input != NULL)
    g_hash_table_replace (variables, g_strdup ("input"), g_strdup (input));
  return g_steal_pointer (&variables);
}

/* Adds to @extra the section of an option that adds a handler writing to
 * @path (--events: the astream_events writer; --trace: trace_html). */
static void
add_handler_section (GKeyFile   *extra,
                     const char *section,
                     const char *plugin,
                     const char *path)
{
  /* A path on the command line is relative to the current folder, not to
   * the configuration's, as a handler's path would be. */
  g_autofree char *absolute = g_str_equal (path, "-") ? g_strdup (path)
                                                     : g_canonicalize_filename (path, NULL);

  g_key_file_set_string (extra, section, "plugin", plugin);
  g_key_file_set_string (extra, section, "path", absolute);
}

/* The result goes to @out (-o, opened before the run) when given, else to
 * stdout unless @quiet. */
static gboolean
write_result (json_t        *result,
              GOutputStream *out,
              const char    *output,
              gboolean       pretty,
              gboolean       quiet,
              GError       **error)
{
  g_autofree char *text = pretty ? json_dumps (result, JSON_INDENT (2))
                                 : chime_json_dump_compact (result, NULL);

  if (out != NULL)
    {
      g_autofree char *line = g_strconcat (text, "\n", NULL);
      g_autoptr (GError) local_error = NULL;

      if (g_output_stream_write_all (out, line, strlen (line), NULL, NULL, &local_error) &&
          g_output_stream_close (out, NULL, &local_error))
        return TRUE;
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "cannot write the result to %s: %s",
                   output, local_error->message);
      return FALSE;
    }
  if (quiet)
    return TRUE;
  /* Handlers may have written to stdout from other threads; they are done
   * (the runtime was flushed), and the result comes last. */
  fflush (stdout);
  clearerr (stdout);
  /* JSON is UTF-8 whatever the locale: no g_print, which would convert it
   * to the locale's charset ('?' for every non-ASCII character in C). A
   * result that cannot be written is the run's failure: it is lost. */
  if (fputs (text, stdout) == EOF || fputc ('\n', stdout) == EOF || fflush (stdout) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write the result to stdout: %s", g_strerror (saved_errno));
      clearerr (stdout);
      return FALSE;
    }
  return TRUE;
}

/* -q without -o: the results go nowhere, through a stream that is a
 * bounded sink (batch results are written as they come). */
static GOutputStream *
open_discarding_output (GError **error)
{
  return chime_file_open_output ("/dev/null", error);
}

static void
on_flushed (GObject      *source,
            GAsyncResult *result,
            gpointer      loop)
{
  g_main_loop_quit (loop);
}

/* Flushes with the main loop running, so that async handlers go on and a
 * second Ctrl-C is still heard while a sync handler takes its time; then
 * shuts the runtime down, so that what handlers write as they stop (their
 * last lines, a report) is done, and its failures counted, before the
 * summary. */
static void
finish_on_loop (ChimeRuntime *runtime,
                GMainLoop    *loop)
{
  chime_runtime_flush_async (runtime, NULL, on_flushed, loop);
  g_main_loop_run (loop);
  chime_runtime_flush (runtime);
  chime_runtime_shutdown (runtime);
}

/* What a drop policy, a timeout or a failing handler cost, said once at
 * the end. TRUE when a handler failed other than by timing out: its output
 * is incomplete, which the exit status says (CLI_EXIT_HANDLER_FAILED). */
static gboolean
report_losses (ChimeRuntime *runtime)
{
  gboolean any_failed = FALSE;

  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    {
      const char *name = chime_runtime_get_handler_name (runtime, i);
      ChimeHandlerStats stats;
      guint64 failed;

      chime_runtime_get_handler_stats (runtime, name, &stats, sizeof stats);
      if (stats.dropped > 0)
        g_printerr ("chime: handler '%s' dropped %" G_GUINT64_FORMAT " events (on_full in [runtime])\n",
                    name, stats.dropped);
      if (stats.timed_out > 0)
        g_printerr ("chime: handler '%s' timed out %" G_GUINT64_FORMAT " times (timeout_ms)\n",
                    name, stats.timed_out);
      if (stats.restarts > 0)
        g_printerr ("chime: handler '%s' was restarted %" G_GUINT64_FORMAT " %s (isolation = process); "
                    "%" G_GUINT64_FORMAT " %s delivered again\n", name, stats.restarts,
                    stats.restarts == 1 ? "time" : "times", stats.redelivered,
                    stats.redelivered == 1 ? "event was" : "events were");
      failed = stats.failed - stats.timed_out;
      if (failed > 0)
        {
          g_printerr ("chime: handler '%s' failed %" G_GUINT64_FORMAT " %s: %s\n", name, failed,
                      failed == 1 ? "time" : "times",
                      chime_runtime_get_handler_failure (runtime, name));
          any_failed = TRUE;
        }
    }
  return any_failed;
}

/* For --verbose and G_MESSAGES_DEBUG: what is about to run. */
static void
say_handlers (ChimeRuntime *runtime,
              const char   *source)
{
  g_autoptr (GString) names = g_string_new (NULL);
  g_autofree char *name = g_path_get_basename (source);

  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    g_string_append_printf (names, "%s'%s'", i > 0 ? ", " : "", chime_runtime_get_handler_name (runtime, i));
  g_debug ("running %s with %u %s%s%s", name, chime_runtime_get_n_handlers (runtime),
           chime_runtime_get_n_handlers (runtime) == 1 ? "handler" : "handlers",
           names->len > 0 ? ": " : "", names->str);
}

/* --inputs: one run per line, results as JSON lines in input order. */
static int
run_batch (ChimePipeline *pipeline,
           const char    *inputs,
           GHashTable    *defaults,
           guint          concurrency,
           GOutputStream *out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  int failed;
  gboolean handler_failed;

  cli_signals_watch (cancellable);
  failed = chime_batch_run (pipeline, inputs, defaults, concurrency, cancellable, out, &error);
  /* Nothing lost: every handler finishes every event before we go on. */
  finish_on_loop (chime_pipeline_get_runtime (pipeline), loop);
  cli_signals_unwatch ();
  handler_failed = report_losses (chime_pipeline_get_runtime (pipeline));
  if (out != NULL && !g_output_stream_close (out, NULL, failed < 0 ? NULL : &error))
    failed = -1;
  if (failed < 0)
    {
      cli_print_error (error);
      return CLI_EXIT_RUN_FAILED;
    }
  if (cli_signals_received () != 0)
    return 128 + cli_signals_received ();
  if (failed > 0)
    {
      g_printerr ("chime: %d %s failed (see the \"error\" lines)\n", failed, failed == 1 ? "input" : "inputs");
      return CLI_EXIT_RUN_FAILED;
    }
  return handler_failed ? CLI_EXIT_HANDLER_FAILED : CLI_EXIT_OK;
}

int
cli_command_run (int    argc,
                 char **argv)
{
  g_autofree char *input = NULL;
  g_autofree char *events = NULL;
  g_autofree char *trace = NULL;
  g_autofree char *output = NULL;
  g_auto (GStrv) vars = NULL;
  g_autofree char *inputs = NULL;
  /* G_MININT: not given. 0 is refused like any other count below 1. */
  gint concurrency = G_MININT;
  gboolean pretty = FALSE;
  gboolean stream = FALSE;
  gboolean quiet = FALSE;
  gboolean verbose = FALSE;
  g_autofree char *color = NULL;
  GOptionEntry entries[] = {
    /* FILENAME: the bytes as given, not converted from the locale's
     * charset (which fails for any non-ASCII byte in the C locale); they
     * are checked to be UTF-8 below. */
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &input, "The text for {input} in the prompt", "TEXT" },
    { "var", 'v', 0, G_OPTION_ARG_FILENAME_ARRAY, &vars, "Set a prompt variable (repeatable)", "KEY=VALUE" },
    { "events", 'e', 0, G_OPTION_ARG_FILENAME, &events,
      "Write the astream_events v2 stream as JSON lines to FILE ('-': stdout)", "FILE" },
    { "trace", 't', 0, G_OPTION_ARG_FILENAME, &trace,
      "Write the run tree as a self-contained HTML page (a waterfall) to FILE at the end of the run",
      "FILE.html" },
    { "stream", 's', 0, G_OPTION_ARG_NONE, &stream,
      "Print the output stream on stdout as it comes (what chain.stream() yields): the text, or one "
      "JSON line per value of the json parser; the result JSON goes only to --output", NULL },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the result JSON to FILE instead of stdout", "FILE" },
    { "pretty", 'p', 0, G_OPTION_ARG_NONE, &pretty, "Indent the result JSON", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet,
      "Print no result on stdout (with --output, it still goes to FILE)", NULL },
    { "color", 0, 0, G_OPTION_ARG_STRING, &color,
      "Colour what handlers print: auto (a terminal, unless NO_COLOR or TERM=dumb), always or never; "
      "overrides their color keys", "WHEN" },
    { "verbose", 0, 0, G_OPTION_ARG_NONE, &verbose,
      "Say what happens on stderr: each request and retry, every handler failure (not only the first "
      "of each kind), the debug messages of chime and its plugins", NULL },
    { "inputs", 0, 0, G_OPTION_ARG_FILENAME, &inputs,
      "Run once per line of FILE, each a JSON object of variables ('-': stdin); print one JSON line "
      "per input", "FILE.jsonl" },
    { "concurrency", 'j', 0, G_OPTION_ARG_INT, &concurrency,
      "With --inputs, run at most N inputs at once (default 4)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("[CONFIG] - run a pipeline");
  g_autoptr (GError) error = NULL;
  g_autoptr (GKeyFile) extra = NULL;
  g_autoptr (ChimePipeline) pipeline = NULL;
  g_autoptr (GHashTable) variables = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autoptr (GCancellable) cancellable = NULL;
  g_autoptr (CliStreamPrinter) printer = NULL;
  g_autoptr (GOutputStream) out = NULL;
  RunState state = { 0 };
  gboolean handler_failed;
  int code;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
    "Without CONFIG, runs the built-in seed example on the fake model (no network).\n"
    "The result is printed last on stdout as one JSON line:\n"
    "  {\"run_id\": ..., \"output\": ..., \"llm_result\": ...}\n"
    "With --inputs, one such line per input, in input order, with its \"index\" (from 0),\n"
    "or {\"index\": ..., \"error\": {...}} for an input that failed; --var and --input values\n"
    "apply to every input, under the input's own.\n\n"
    "Exit status: 0 success, 1 the run (or any input) failed, 2 bad command line, 3 bad configuration,\n"
    "4 the run succeeded but a handler failed (its output is incomplete; see the \"failed\" line),\n"
    "128+N stopped by signal N (130: Ctrl-C).");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return cli_usage_error (context, "%s", error->message);
  cli_log_set_verbose (verbose);
  if (color != NULL && !cli_set_color (color))
    return cli_usage_error (context, "--color must be auto, always or never, got '%s'", color);
  if (argc > 2)
    return cli_usage_error (context, "run takes at most one CONFIG, got %d", argc - 1);
  if (concurrency != G_MININT && (concurrency < 1 || concurrency > 4096))
    return cli_usage_error (context, "--concurrency must be from 1 to 4096, got %d", concurrency);
  if (concurrency != G_MININT && inputs == NULL)
    return cli_usage_error (context, "--concurrency needs --inputs");
  if (stream && inputs != NULL)
    return cli_usage_error (context, "--stream cannot be used with --inputs: each input has its own stream");
  if (stream && events != NULL && g_str_equal (events, "-"))
    return cli_usage_error (context, "--stream and --events - would both write to stdout; give --events a FILE");
  if (inputs != NULL && pretty)
    return cli_usage_error (context, "--pretty cannot be used with --inputs: results are JSON lines");
  variables = collect_variables (vars, input, &error);
  if (variables == NULL)
    return cli_usage_error (context, "%s", error->message);

  if (input != NULL && !g_utf8_validate (input, -1, NULL))
    return cli_usage_error (context, "--input is not valid UTF-8");
  for (guint i = 0; vars != NULL && vars[i] != NULL; i++)
    if (!g_utf8_validate (vars[i], -1, NULL))
      return cli_usage_error (context, "--var %u is not valid UTF-8", i + 1);

  if (trace != NULL && g_str_equal (trace, "-"))
    return cli_usage_error (context, "--trace needs a FILE: the page is written to a file at the end of the run");
  if (events != NULL || trace != NULL)
    extra = g_key_file_new ();
  if (events != NULL)
    add_handler_section (extra, "handler chime-events", "astream_events", events);
  if (trace != NULL)
    add_handler_section (extra, "handler chime-trace", "trace_html", trace);
  /* With --inputs the variables come with each input: each run checks its own. */
  if (argc == 2)
    pipeline = chime_pipeline_new_from_file (argv[1], extra, inputs == NULL ? variables : NULL, &error);
  else
    {
      g_autofree char *cwd = g_get_current_dir ();
      pipeline = chime_pipeline_new_from_data (chime_seed_ini, SEED_SOURCE_NAME, cwd, extra, variables,
                                               &error);
    }
  if (pipeline == NULL)
    {
      cli_print_error (error);
      return g_error_matches (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_VARIABLES)
               ? CLI_EXIT_USAGE : cli_exit_code_for (error);
    }

  say_handlers (chime_pipeline_get_runtime (pipeline), argc == 2 ? argv[1] : SEED_SOURCE_NAME);
  /* Before the run: an output that cannot be written fails now, not
   * after the run's work (and its tokens) is done. */
  if (output != NULL || (quiet && inputs != NULL))
    {
      out = output != NULL ? chime_file_open_output (output, &error) : open_discarding_output (&error);
      if (out == NULL)
        {
          cli_print_error (error);
          return CLI_EXIT_RUN_FAILED;
        }
    }
  if (inputs != NULL)
    return run_batch (pipeline, inputs, variables,
                      concurrency != G_MININT ? (guint) concurrency : CHIME_BATCH_DEFAULT_CONCURRENCY, out);

  loop = g_main_loop_new (NULL, FALSE);
  cancellable = g_cancellable_new ();
  state.loop = loop;
  /* A signal that came while the configuration loaded cancels the run as
   * it starts: its handlers still see it begin and end. */
  cli_signals_watch (cancellable);
  if (stream)
    {
      printer = cli_stream_printer_new ();
      chime_pipeline_set_chunk_func (pipeline, cli_stream_printer_chunk, printer);
    }
  chime_pipeline_run_async (pipeline, variables, cancellable, on_run_done, &state);
  g_main_loop_run (loop);
  /* Nothing lost: every handler finishes every event before we go on. The
   * loop keeps running meanwhile for async handlers. */
  finish_on_loop (chime_pipeline_get_runtime (pipeline), loop);
  cli_signals_unwatch ();
  handler_failed = report_losses (chime_pipeline_get_runtime (pipeline));

  if (state.error != NULL)
    {
      /* The stream so far stays, its line ended, before the error. */
      if (printer != NULL)
        cli_stream_printer_finish (printer, NULL);
      cli_print_error (state.error);
      code = cli_signals_received () != 0 ? 128 + cli_signals_received () : CLI_EXIT_RUN_FAILED;
      g_clear_error (&state.error);
    }
  else if (printer != NULL && !cli_stream_printer_finish (printer, &error))
    {
      cli_print_error (error);
      code = CLI_EXIT_RUN_FAILED;
    }
  else if ((printer == NULL || out != NULL) && !write_result (state.result, out, output, pretty, quiet, &error))
    {
      cli_print_error (error);
      code = CLI_EXIT_RUN_FAILED;
    }
  else
    code = CLI_EXIT_OK;
  /* A signal after the run had ended still says that chime was stopped;
   * the result, complete, was printed. */
  if (code == CLI_EXIT_OK && cli_signals_received () != 0)
    code = 128 + cli_signals_received ();
  /* The run's result is complete, but a handler's output is not. */
  if (code == CLI_EXIT_OK && handler_failed)
    code = CLI_EXIT_HANDLER_FAILED;
  /* A failed run leaves the file -o names as it was. */
  if (out != NULL && !g_output_stream_is_closed (out))
    chime_file_output_abandon (out);
  g_clear_pointer (&state.result, json_decref);
  g_clear_pointer (&pipeline, chime_pipeline_free);
  return code;
}

