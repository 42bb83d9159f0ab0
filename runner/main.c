/* chime — the runner: runs pipelines from INI files.
 *
 *   chime run [CONFIG] [--input TEXT] [--var KEY=VALUE]... [--events FILE]
 *             [--output FILE] [--pretty]
 *   chime run CONFIG --inputs FILE.jsonl [--concurrency N] [--var KEY=VALUE]...
 *             [--events FILE] [--output FILE]
 *   chime check CONFIG
 *   chime plugins
 *   chime --version
 *
 * Exit codes: 0 success, 1 the run failed, 2 bad command line, 3 bad
 * configuration, 128+N stopped by signal N (130 for Ctrl-C). */
#include "config.h"

#include <chime/chime.h>
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/batch.h"
#include "plugins/handler-context.h"
#include "config/ini.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline-error.h"
#include "plugins/plugin-loader.h"
#include "runtime-private.h"
#include "seed-ini.h"

enum {
  EXIT_OK = 0,
  EXIT_RUN_FAILED = 1,
  EXIT_USAGE = 2,
  EXIT_CONFIG = 3,
};

#define SEED_SOURCE_NAME "the built-in seed example"

static int
usage_error (GOptionContext *context,
             const char     *format,
             ...) G_GNUC_PRINTF (2, 3);

static int
usage_error (GOptionContext *context,
             const char     *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("chime: %s\nTry '%s --help'.\n", message, g_get_prgname ());
  return EXIT_USAGE;
}

/* Prints an error, one problem per line. */
static void
print_error (const GError *error)
{
  if (strchr (error->message, '\n') == NULL)
    {
      g_printerr ("chime: %s\n", error->message);
      return;
    }
  {
    g_auto (GStrv) lines = g_strsplit (error->message, "\n", -1);
    g_printerr ("chime: %u problems:\n", g_strv_length (lines));
    for (guint i = 0; lines[i] != NULL; i++)
      g_printerr ("  %s\n", lines[i]);
  }
}

static int
exit_code_for (const GError *error)
{
  return error->domain == CHIME_CONFIG_ERROR || error->domain == G_FILE_ERROR ||
         error->domain == G_KEY_FILE_ERROR ? EXIT_CONFIG : EXIT_RUN_FAILED;
}

/* ------------------------------------------------------------------
 * chime run
 * ---------------------------------------------------------------- */

typedef struct {
  GMainLoop    *loop;
  GCancellable *cancellable;
  json_t       *result;
  GError       *error;
  int           signal_number;
} RunState;

static gboolean
on_signal (gpointer data,
           int      signal_number)
{
  RunState *state = data;

  if (state->signal_number == 0)
    {
      state->signal_number = signal_number;
      g_printerr ("chime: %s; stopping the run and flushing every handler "
                  "(again to quit at once)\n",
                  signal_number == SIGINT ? "interrupted" : "terminated");
      g_cancellable_cancel (state->cancellable);
      return G_SOURCE_CONTINUE;
    }
  /* A second signal: a handler may be hung in the flush; do not hang too. */
  g_printerr ("chime: %s again; quitting without waiting for the handlers\n",
              signal_number == SIGINT ? "interrupted" : "terminated");
  _exit (128 + signal_number);
  return G_SOURCE_REMOVE;
}

static gboolean
on_sigint (gpointer data)
{
  return on_signal (data, SIGINT);
}

static gboolean
on_sigterm (gpointer data)
{
  return on_signal (data, SIGTERM);
}

static void
on_run_done (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  RunState *state = data;

  state->result = chime_pipeline_run_finish (NULL, result, &state->error);
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

/* The section --events adds: the astream_events writer as a handler. */
static GKeyFile *
events_section (const char *path)
{
  GKeyFile *extra = g_key_file_new ();
  /* A path on the command line is relative to the current folder, not to
   * the configuration's, as a handler's path would be. */
  g_autofree char *absolute = g_str_equal (path, "-") ? g_strdup (path)
                                                     : g_canonicalize_filename (path, NULL);

  g_key_file_set_string (extra, "handler chime-events", "plugin", "astream_events");
  g_key_file_set_string (extra, "handler chime-events", "path", absolute);
  return extra;
}

static gboolean
write_result (json_t     *result,
              const char *output,
              gboolean    pretty,
              GError    **error)
{
  g_autofree char *text = json_dumps (result, pretty ? JSON_INDENT (2) : JSON_COMPACT);

  if (output != NULL)
    {
      g_autofree char *line = g_strconcat (text, "\n", NULL);
      return g_file_set_contents (output, line, -1, error);
    }
  /* Handlers may have written to stdout from other threads; they are done
   * (the runtime was flushed), and the result comes last. */
  fflush (stdout);
  /* JSON is UTF-8 whatever the locale: no g_print, which would convert it
   * to the locale's charset ('?' for every non-ASCII character in C). */
  fputs (text, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
  return TRUE;
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/* Flushes with the main loop running, so that async handlers go on and a
 * second Ctrl-C is still heard while a sync handler takes its time. */
static void
flush_on_loop (ChimeRuntime *runtime,
               GMainLoop    *loop)
{
  ChimeDispatcher *dispatcher = runtime->dispatcher;

  chime_dispatcher_when_done (dispatcher, chime_dispatcher_get_head (dispatcher), quit_loop, loop);
  g_main_loop_run (loop);
  chime_runtime_flush (runtime);
}

/* What a drop policy or a timeout cost, said once at the end. */
static void
report_losses (ChimeRuntime *runtime)
{
  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    {
      const char *name = chime_runtime_get_handler_name (runtime, i);
      ChimeHandlerStats stats;

      chime_runtime_get_handler_stats (runtime, name, &stats);
      if (stats.dropped > 0)
        g_printerr ("chime: handler '%s' dropped %" G_GUINT64_FORMAT " events (on_full in [runtime])\n",
                    name, stats.dropped);
      if (stats.timed_out > 0)
        g_printerr ("chime: handler '%s' timed out %" G_GUINT64_FORMAT " times (timeout_ms)\n",
                    name, stats.timed_out);
    }
}

/* --inputs: one run per line, results as JSON lines in input order. */
static int
run_batch (ChimePipeline *pipeline,
           const char    *inputs,
           GHashTable    *defaults,
           guint          concurrency,
           const char    *output)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GOutputStream) out = NULL;
  RunState state = { 0 };
  guint sigint, sigterm;
  int failed;

  if (output != NULL)
    {
      g_autoptr (GFile) file = g_file_new_for_commandline_arg (output);

      out = G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error));
      if (out == NULL)
        {
          print_error (error);
          return EXIT_RUN_FAILED;
        }
    }
  state.loop = loop;
  state.cancellable = cancellable;
  sigint = g_unix_signal_add (SIGINT, on_sigint, &state);
  sigterm = g_unix_signal_add (SIGTERM, on_sigterm, &state);
  failed = chime_batch_run (pipeline, inputs, defaults, concurrency, cancellable, out, &error);
  /* Nothing lost: every handler finishes every event before we go on. */
  flush_on_loop (chime_pipeline_get_runtime (pipeline), loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  report_losses (chime_pipeline_get_runtime (pipeline));
  if (out != NULL && !g_output_stream_close (out, NULL, failed < 0 ? NULL : &error))
    failed = -1;
  if (failed < 0)
    {
      print_error (error);
      return EXIT_RUN_FAILED;
    }
  if (state.signal_number != 0)
    return 128 + state.signal_number;
  if (failed > 0)
    {
      g_printerr ("chime: %d %s failed (see the \"error\" lines)\n", failed, failed == 1 ? "input" : "inputs");
      return EXIT_RUN_FAILED;
    }
  return EXIT_OK;
}

static int
command_run (int    argc,
             char **argv)
{
  g_autofree char *input = NULL;
  g_autofree char *events = NULL;
  g_autofree char *output = NULL;
  g_auto (GStrv) vars = NULL;
  g_autofree char *inputs = NULL;
  /* G_MININT: not given. 0 is refused like any other count below 1. */
  gint concurrency = G_MININT;
  gboolean pretty = FALSE;
  GOptionEntry entries[] = {
    /* FILENAME: the bytes as given, not converted from the locale's
     * charset (which fails for any non-ASCII byte in the C locale); they
     * are checked to be UTF-8 below. */
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &input, "The text for {input} in the prompt", "TEXT" },
    { "var", 'v', 0, G_OPTION_ARG_FILENAME_ARRAY, &vars, "Set a prompt variable (repeatable)", "KEY=VALUE" },
    { "events", 'e', 0, G_OPTION_ARG_FILENAME, &events,
      "Write the astream_events v2 stream as JSON lines to FILE ('-': stdout)", "FILE" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the result JSON to FILE instead of stdout", "FILE" },
    { "pretty", 'p', 0, G_OPTION_ARG_NONE, &pretty, "Indent the result JSON", NULL },
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
  RunState state = { 0 };
  guint sigint, sigterm;
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
    "128+N stopped by signal N (130: Ctrl-C).");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, "%s", error->message);
  if (argc > 2)
    return usage_error (context, "run takes at most one CONFIG, got %d", argc - 1);
  if (concurrency != G_MININT && (concurrency < 1 || concurrency > 4096))
    return usage_error (context, "--concurrency must be from 1 to 4096, got %d", concurrency);
  if (concurrency != G_MININT && inputs == NULL)
    return usage_error (context, "--concurrency needs --inputs");
  if (inputs != NULL && pretty)
    return usage_error (context, "--pretty cannot be used with --inputs: results are JSON lines");
  variables = collect_variables (vars, input, &error);
  if (variables == NULL)
    return usage_error (context, "%s", error->message);

  if (input != NULL && !g_utf8_validate (input, -1, NULL))
    return usage_error (context, "--input is not valid UTF-8");
  for (guint i = 0; vars != NULL && vars[i] != NULL; i++)
    if (!g_utf8_validate (vars[i], -1, NULL))
      return usage_error (context, "--var %u is not valid UTF-8", i + 1);

  if (events != NULL)
    extra = events_section (events);
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
      print_error (error);
      return g_error_matches (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_VARIABLES)
               ? EXIT_USAGE : exit_code_for (error);
    }

  if (inputs != NULL)
    return run_batch (pipeline, inputs, variables,
                      concurrency != G_MININT ? (guint) concurrency : CHIME_BATCH_DEFAULT_CONCURRENCY, output);

  loop = g_main_loop_new (NULL, FALSE);
  cancellable = g_cancellable_new ();
  state.loop = loop;
  state.cancellable = cancellable;
  sigint = g_unix_signal_add (SIGINT, on_sigint, &state);
  sigterm = g_unix_signal_add (SIGTERM, on_sigterm, &state);
  chime_pipeline_run_async (pipeline, variables, cancellable, on_run_done, &state);
  g_main_loop_run (loop);
  /* Nothing lost: every handler finishes every event before we go on. The
   * loop keeps running meanwhile for async handlers and a second Ctrl-C. */
  flush_on_loop (chime_pipeline_get_runtime (pipeline), loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  report_losses (chime_pipeline_get_runtime (pipeline));

  if (state.error != NULL)
    {
      print_error (state.error);
      code = state.signal_number != 0 ? 128 + state.signal_number : EXIT_RUN_FAILED;
      g_clear_error (&state.error);
    }
  else if (!write_result (state.result, output, pretty, &error))
    {
      print_error (error);
      code = EXIT_RUN_FAILED;
    }
  else
    code = EXIT_OK;
  g_clear_pointer (&state.result, json_decref);
  g_clear_pointer (&pipeline, chime_pipeline_free);
  return code;
}

/* ------------------------------------------------------------------
 * chime check
 * ---------------------------------------------------------------- */

static void
describe_runtime (ChimeRuntime *runtime)
{
  g_print ("  delivery: %s\n", chime_delivery_to_string (chime_runtime_get_delivery (runtime)));
  for (guint i = 0; i < runtime->n_handlers; i++)
    {
      ChimeHandler *handler = runtime->handlers[i];
      g_print ("  handler %s: plugin %s (%s) from %s\n", handler->settings.name,
               handler->descriptor->name,
               handler->descriptor->mode == CHIME_HANDLER_SYNC ? "sync" : "async",
               handler->plugin->path);
    }
}

static int
command_check (int    argc,
               char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("CONFIG - check a configuration");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeProblems) problems = chime_problems_new ();
  g_autoptr (ChimeIni) ini = NULL;

  g_option_context_set_description (context,
    "Validates every section and key, loads every plugin and starts every handler,\n"
    "without running anything. Prints every problem at once.\n\n"
    "Exit status: 0 all is well, 2 bad command line, 3 problems found.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, "%s", error->message);
  if (argc != 2)
    return usage_error (context, "check needs exactly one CONFIG");

  ini = chime_ini_new_from_file (argv[1], problems, &error);
  if (ini == NULL)
    {
      print_error (error);
      return EXIT_CONFIG;
    }
  if (g_key_file_has_group (chime_ini_get_key_file (ini), "pipeline"))
    {
      g_autoptr (ChimePipeline) pipeline = chime_pipeline_new_from_file (argv[1], NULL, NULL, &error);
      if (pipeline == NULL)
        {
          print_error (error);
          return EXIT_CONFIG;
        }
      g_print ("%s: ok\n", argv[1]);
      describe_runtime (chime_pipeline_get_runtime (pipeline));
      return EXIT_OK;
    }
  {
    g_autoptr (ChimeRuntime) runtime = chime_runtime_new_from_ini (ini, problems, &error);
    if (runtime == NULL)
      {
        print_error (error);
        return EXIT_CONFIG;
      }
    g_print ("%s: ok (no [pipeline]: runtime and handlers only)\n", argv[1]);
    describe_runtime (runtime);
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------
 * chime plugins
 * ---------------------------------------------------------------- */

static void
describe_plugin (const char         *name,
                 const char * const *search_path)
{
  g_autoptr (GError) error = NULL;
  const ChimePlugin *plugin = chime_plugin_load (name, search_path, &error);
  const ChimePluginDescriptor *descriptor;

  if (plugin == NULL)
    {
      g_print ("%s\n    cannot load: %s\n", name, error->message);
      return;
    }
  descriptor = plugin->descriptor;
  g_print ("%s (%s)%s%s\n", descriptor->name,
           descriptor->mode == CHIME_HANDLER_SYNC ? "sync" : "async",
           descriptor->description != NULL ? " — " : "",
           descriptor->description != NULL ? descriptor->description : "");
  g_print ("    file: %s\n", plugin->path);
  for (const ChimeConfigKey *key = plugin->keys; key->key != NULL; key++)
    {
      g_autofree char *choices = key->type == CHIME_CONFIG_CHOICE
                                   ? g_strjoinv ("|", (char **) key->choices) : NULL;
      g_print ("    %s (%s%s%s%s): %s\n", key->key,
               choices != NULL ? choices : chime_config_type_to_string (key->type),
               key->flags & CHIME_CONFIG_KEY_REQUIRED ? ", required" : "",
               key->default_value != NULL ? ", default " : "",
               key->default_value != NULL ? key->default_value : "",
               key->description != NULL ? key->description : "");
    }
}

static int
command_plugins (int    argc,
                 char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- list the plugins chime can find");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) search_path = NULL;
  g_auto (GStrv) names = NULL;

  g_option_context_set_description (context,
    "Searches CHIME_PLUGIN_PATH, then the plugin folder next to this program, then the\n"
    "installed plugin folder. A configuration's plugin_path comes after CHIME_PLUGIN_PATH\n"
    "and before the other two.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, "%s", error->message);
  search_path = chime_plugin_search_path (NULL);
  names = chime_plugin_list_names ((const char * const *) search_path);
  g_print ("Plugin search path:\n");
  for (guint i = 0; search_path[i] != NULL; i++)
    g_print ("  %s%s\n", search_path[i],
             g_file_test (search_path[i], G_FILE_TEST_IS_DIR) ? "" : " (missing)");
  g_print ("\n");
  if (names[0] == NULL)
    g_print ("No plugins found.\n");
  for (guint i = 0; names[i] != NULL; i++)
    describe_plugin (names[i], (const char * const *) search_path);
  return EXIT_OK;
}

/* ------------------------------------------------------------------ */

/* The plugin folder of an installed tree, next to this executable. */
static void
find_program_plugin_dir (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *bin = NULL;
  g_autofree char *dir = NULL;

  if (exe == NULL)
    return;
  bin = g_path_get_dirname (exe);
  dir = g_build_filename (bin, "..", "lib", "chime", "plugins", NULL);
  if (g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *canonical = g_canonicalize_filename (dir, NULL);
      chime_plugin_set_program_dir (canonical);
    }
}

static void
print_usage (FILE *out)
{
  fprintf (out,
           "Usage: chime COMMAND [OPTIONS]\n\n"
           "Commands:\n"
           "  run [CONFIG]    run a pipeline (without CONFIG: the built-in seed example)\n"
           "  check CONFIG    validate a configuration and start its handlers\n"
           "  plugins         list the plugins chime can find\n\n"
           "Options:\n"
           "  --version       print the version\n"
           "  --help          print this help; 'chime COMMAND --help' for a command\n");
}

int
main (int    argc,
      char **argv)
{
  const char *command = argc >= 2 ? argv[1] : NULL;
  g_autofree char *prgname = NULL;

  /* The user's locale for messages (GLib converts them to its charset);
   * numbers stay as C prints them, and data (the result JSON) is written
   * as UTF-8 bytes whatever the locale. */
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");
  find_program_plugin_dir ();
  if (command == NULL)
    {
      print_usage (stderr);
      return EXIT_USAGE;
    }
  if (g_str_equal (command, "--version") || g_str_equal (command, "version"))
    {
      g_print ("chime %s (plugin ABI %d.%d)\n", CHIME_VERSION_STRING,
               CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);
      return EXIT_OK;
    }
  if (g_str_equal (command, "--help") || g_str_equal (command, "-h") || g_str_equal (command, "help"))
    {
      print_usage (stdout);
      return EXIT_OK;
    }
  /* Each command parses the rest of the line; its help says "chime CMD". */
  prgname = g_strdup_printf ("chime %s", command);
  g_set_prgname (prgname);
  argv[1] = prgname;
  if (g_str_equal (command, "run"))
    return command_run (argc - 1, argv + 1);
  if (g_str_equal (command, "check"))
    return command_check (argc - 1, argv + 1);
  if (g_str_equal (command, "plugins"))
    return command_plugins (argc - 1, argv + 1);
  g_printerr ("chime: unknown command '%s'\n", command);
  print_usage (stderr);
  return EXIT_USAGE;
}
