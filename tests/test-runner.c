/* Integration tests of the `chime` runner on the installed layout.
 *
 * `make check` first installs the tree into a test-local DESTDIR
 * (tests/runner.inc); these tests run that installed binary, which finds
 * its plugins in ../lib/chime/plugins next to itself, with
 * LD_LIBRARY_PATH pointing at the installed library and without
 * CHIME_PLUGIN_PATH. They assert what a user sees: the exact output of
 * the seed example, exit codes, the result JSON, the astream_events
 * stream, what handlers recorded, and behaviour on failures and signals.
 * Every example in examples/ is run with the command its header comment
 * gives, and every C example of the docs is compiled against the
 * installed headers and chime.pc and loaded by `chime check`.
 *
 * Every subprocess runs with a timeout (RUN_TIMEOUT_S): a hang kills it
 * and fails the test instead of blocking CI. Set CHIME_TEST_KEEP=1 to
 * keep the temporary folder, CHIME_TEST_FILTER to run some tests only. */
#include "test-helpers.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#ifndef INSTALL_ROOT
#error "INSTALL_ROOT, BINDIR, LIBDIR, PKGCONFIGDIR, INCLUDEDIR, PREFIX and SRCDIR come from tests/runner.inc"
#endif
#ifndef MOCK_SERVER_PATH
#error "MOCK_SERVER_PATH and FIXTURE_DIR come from tests/runner.inc"
#endif

#ifndef RUN_TIMEOUT_S
#define RUN_TIMEOUT_S 20
#endif

/* The seed example's chunks (examples/seed.ini). */
static const char *const seed_chunks[] = {
  "", "Why", " don't scientists trust atoms?\n\nBecause they make up", " everything!", "", NULL
};
#define SEED_OUTPUT "Why don't scientists trust atoms?\n\nBecause they make up everything!"
#define SEED_MODEL "fake-claude-3-sonnet"
#define TOKEN_PREFIX "Sync handler being called in a `thread_pool_executor`: token: "

/* ------------------------------------------------------------------
 * Paths and folders
 * ---------------------------------------------------------------- */

static char *
installed (const char *dir,
           const char *rest)
{
  return g_build_filename (INSTALL_ROOT, dir, rest, NULL);
}

static char *
chime_binary (void)
{
  return installed (BINDIR, "chime");
}

/* A fresh folder in the test's temporary folder. */
static char *
fresh_dir (const char *name)
{
  static guint counter;
  g_autofree char *base = g_strdup_printf ("%s-%u", name, ++counter);
  char *path = test_path (base);

  assert_int_equal (g_mkdir_with_parents (path, 0755), 0);
  return path;
}

static char *
read_text (const char *path)
{
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return text;
}

static char *
read_source_file (const char *relative)
{
  g_autofree char *path = g_build_filename (SRCDIR, relative, NULL);
  char *text = read_text (path);

  if (text == NULL)
    fail_msg ("cannot read %s", path);
  return text;
}

static char *
write_in (const char *dir,
          const char *name,
          const char *text)
{
  char *path = g_build_filename (dir, name, NULL);

  assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* Copies the test configuration tests/examples/NAME into @dir, so that
 * the relative paths it names land in @dir. */
static char *
copy_test_config (const char *dir,
                  const char *name)
{
  g_autofree char *relative = g_build_filename ("tests", "examples", name, NULL);
  g_autofree char *text = read_source_file (relative);

  return write_in (dir, name, text);
}

/* ------------------------------------------------------------------
 * Running the installed chime
 * ---------------------------------------------------------------- */

typedef struct {
  int    status;   /* the exit status, or 128+N when killed by signal N */
  char  *out;
  char  *err;
  /* With signals: how long the process took to end after the last one. */
  gint64 exit_after_signal_us;
} RunResult;

static void
run_result_free (RunResult *result)
{
  g_free (result->out);
  g_free (result->err);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RunResult, run_result_free)

typedef struct {
  const char         *cwd;          /* NULL: a fresh folder */
  /* Extra "KEY=VALUE" settings; a bare "KEY" unsets KEY. */
  const char * const *env;
  int                 signal_number;
  guint               signal_after_ms;
  /* With a signal: wait also until this file (NULL: the process's
   * stdout) contains this text (the run is under way), checking every
   * 20 ms. */
  const char         *signal_file;
  const char         *signal_needle;
  /* Send the signal a second time, this long after the first (0: don't).
   * The process must still be running then. */
  guint               second_signal_after_ms;
} RunOptions;

typedef struct {
  GMainLoop   *loop;
  GSubprocess *process;
  gboolean     timed_out;
  guint        n_signalled;
  gint64       started;
  gint64       last_signal;
  gint64       exited;
  const char  *out_path;
  const RunOptions *options;
} Waiter;

static char **
child_environment (const char * const *extra)
{
  char **env = g_get_environ ();
  g_autofree char *libdir = installed (LIBDIR, NULL);

  /* The installed chime must find its plugins next to itself, and its
   * library in the install tree, not in the build tree. */
  env = g_environ_unsetenv (env, "CHIME_PLUGIN_PATH");
  env = g_environ_setenv (env, "LD_LIBRARY_PATH", libdir, TRUE);
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    {
      const char *equals = strchr (extra[i], '=');
      g_autofree char *key = NULL;

      if (equals == NULL)
        {
          env = g_environ_unsetenv (env, extra[i]);
          continue;
        }
      key = g_strndup (extra[i], equals - extra[i]);
      env = g_environ_setenv (env, key, equals + 1, TRUE);
    }
  return env;
}

static void
on_process_exited (GObject      *source,
                   GAsyncResult *result,
                   gpointer      data)
{
  Waiter *waiter = data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  waiter->exited = g_get_monotonic_time ();
  g_main_loop_quit (waiter->loop);
}

static gboolean
on_run_timeout (gpointer data)
{
  Waiter *waiter = data;

  waiter->timed_out = TRUE;
  g_subprocess_force_exit (waiter->process);
  return G_SOURCE_REMOVE;
}

static gboolean
maybe_send_signal (gpointer data)
{
  Waiter *waiter = data;
  const RunOptions *options = waiter->options;

  gint64 now = g_get_monotonic_time ();

  if (waiter->n_signalled == 1)
    {
      /* The second signal, if any. */
      if (now - waiter->last_signal < (gint64) options->second_signal_after_ms * 1000)
        return G_SOURCE_CONTINUE;
      g_subprocess_send_signal (waiter->process, options->signal_number);
      waiter->n_signalled++;
      waiter->last_signal = g_get_monotonic_time ();
      return G_SOURCE_REMOVE;
    }
  if (now - waiter->started < (gint64) options->signal_after_ms * 1000)
    return G_SOURCE_CONTINUE;
  if (options->signal_needle != NULL)
    {
      g_autofree char *text = read_text (options->signal_file != NULL ? options->signal_file
                                                                      : waiter->out_path);

      if (text == NULL || strstr (text, options->signal_needle) == NULL)
        return G_SOURCE_CONTINUE;
    }
  g_subprocess_send_signal (waiter->process, options->signal_number);
  waiter->n_signalled++;
  waiter->last_signal = g_get_monotonic_time ();
  return options->second_signal_after_ms > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Runs @argv (the program first), stdout and stderr each into its own
 * file, and waits at most RUN_TIMEOUT_S. */
static RunResult *
run_argv (const RunOptions   *options,
          const char * const *argv)
{
  static guint counter;
  g_autofree char *cwd = options->cwd != NULL ? g_strdup (options->cwd) : fresh_dir ("cwd");
  g_autofree char *io_name = g_strdup_printf ("io-%u", ++counter);
  g_autofree char *io_dir = fresh_dir (io_name);
  g_autofree char *out_path = g_build_filename (io_dir, "stdout", NULL);
  g_autofree char *err_path = g_build_filename (io_dir, "stderr", NULL);
  g_auto (GStrv) env = child_environment (options->env);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GMainLoop) loop = NULL;
  g_autoptr (GSource) timeout = NULL;
  g_autoptr (GSource) signal_timer = NULL;
  g_autofree char *command = g_strjoinv (" ", (char **) argv);
  Waiter waiter = { 0 };
  RunResult *result;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_subprocess_launcher_set_environ (launcher, env);
  g_subprocess_launcher_set_cwd (launcher, cwd);
  g_subprocess_launcher_set_stdout_file_path (launcher, out_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, err_path);

  g_main_context_push_thread_default (context);
  waiter.process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (waiter.process == NULL)
    {
      g_main_context_pop_thread_default (context);
      fail_msg ("cannot start %s: %s", command, error->message);
    }
  loop = g_main_loop_new (context, FALSE);
  waiter.loop = loop;
  waiter.options = options;
  waiter.out_path = out_path;
  waiter.started = g_get_monotonic_time ();
  g_subprocess_wait_async (waiter.process, NULL, on_process_exited, &waiter);
  timeout = g_timeout_source_new_seconds (RUN_TIMEOUT_S);
  g_source_set_callback (timeout, on_run_timeout, &waiter, NULL);
  g_source_attach (timeout, context);
  if (options->signal_number != 0)
    {
      signal_timer = g_timeout_source_new (20);
      g_source_set_callback (signal_timer, maybe_send_signal, &waiter, NULL);
      g_source_attach (signal_timer, context);
    }
  g_main_loop_run (loop);
  g_source_destroy (timeout);
  if (signal_timer != NULL)
    g_source_destroy (signal_timer);
  g_main_context_pop_thread_default (context);

  result = g_new0 (RunResult, 1);
  if (g_subprocess_get_if_exited (waiter.process))
    result->status = g_subprocess_get_exit_status (waiter.process);
  else
    result->status = 128 + g_subprocess_get_term_sig (waiter.process);
  result->exit_after_signal_us = waiter.n_signalled > 0 ? waiter.exited - waiter.last_signal : 0;
  result->out = read_text (out_path);
  result->err = read_text (err_path);
  if (result->out == NULL)
    result->out = g_strdup ("");
  if (result->err == NULL)
    result->err = g_strdup ("");
  g_object_unref (waiter.process);
  if (waiter.timed_out)
    fail_msg ("%s did not finish within %d s and was killed\nstdout:\n%s\nstderr:\n%s",
              command, RUN_TIMEOUT_S, result->out, result->err);
  if (options->signal_number != 0 && waiter.n_signalled == 0)
    fail_msg ("%s ended before it could be sent signal %d (status %d)\nstderr:\n%s",
              command, options->signal_number, result->status, result->err);
  if (options->second_signal_after_ms > 0 && waiter.n_signalled < 2)
    fail_msg ("%s ended after the first signal %d, before the second (status %d)\nstderr:\n%s",
              command, options->signal_number, result->status, result->err);
  return result;
}

/* Runs the installed chime with @args (after the program name). */
static RunResult *
run_chime_argv (const RunOptions   *options,
                const char * const *args)
{
  g_autofree char *program = chime_binary ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, program);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  return run_argv (options, (const char * const *) argv->pdata);
}

static RunResult *
run_chime_in (const char *cwd,
              const char *first,
              ...) G_GNUC_NULL_TERMINATED;

/* Runs the installed chime in @cwd (NULL: a fresh folder). */
static RunResult *
run_chime_in (const char *cwd,
              const char *first,
              ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  RunOptions options = { .cwd = cwd };
  va_list ap;

  va_start (ap, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return run_chime_argv (&options, (const char * const *) args->pdata);
}

#define assert_status(result, expected)                                              \
  do {                                                                                \
    if ((result)->status != (expected))                                               \
      fail_msg ("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s",              \
                (result)->status, (expected), (result)->out, (result)->err);          \
  } while (0)

/* ------------------------------------------------------------------
 * Reading what chime wrote
 * ---------------------------------------------------------------- */

/* The lines of @text, without the empty string after a final newline. */
static char **
split_lines (const char *text)
{
  char **lines = g_strsplit (text, "\n", -1);
  guint n = g_strv_length (lines);

  if (n > 0 && lines[n - 1][0] == '\0')
    {
      g_free (lines[n - 1]);
      lines[n - 1] = NULL;
    }
  return lines;
}

/* The result JSON at the end of stdout: the longest tail that is one JSON
 * object (handlers may have printed anything before it, even without a
 * final newline). NULL when there is none. */
static json_t *
find_result (const char *out)
{
  for (const char *p = strchr (out, '{'); p != NULL; p = strchr (p + 1, '{'))
    {
      json_t *json = json_loads (p, 0, NULL);

      if (json_is_object (json))
        return json;
      if (json != NULL)
        json_decref (json);
    }
  return NULL;
}

/* The lines of a JSON Lines file (or text), each parsed; fails the test
 * on a line that is not JSON. */
static json_t *
parse_json_lines (const char *text,
                  const char *what)
{
  g_auto (GStrv) lines = split_lines (text != NULL ? text : "");
  json_t *array = json_array ();

  for (guint i = 0; lines[i] != NULL; i++)
    {
      json_error_t error;
      json_t *json = json_loads (lines[i], 0, &error);

      if (json == NULL)
        fail_msg ("line %u of %s is not JSON (%s): %s", i + 1, what, error.text, lines[i]);
      json_array_append_new (array, json);
    }
  return array;
}

static json_t *
read_json_lines (const char *path)
{
  g_autofree char *text = read_text (path);

  if (text == NULL)
    fail_msg ("%s was not written", path);
  return parse_json_lines (text, path);
}

/* The "event" members of @events joined by spaces. */
static char *
event_names (json_t *events)
{
  g_autoptr (GString) names = g_string_new (NULL);
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    {
      if (names->len > 0)
        g_string_append_c (names, ' ');
      g_string_append (names, json_string_value (json_object_get (event, "event")));
    }
  return g_string_free (g_steal_pointer (&names), FALSE);
}

static guint
count_events (json_t     *events,
              const char *name)
{
  guint n = 0;
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    if (g_strcmp0 (json_string_value (json_object_get (event, "event")), name) == 0)
      n++;
  return n;
}

static gboolean
strv_json_contains (json_t     *array,
                    const char *value)
{
  gsize i;
  json_t *item;

  json_array_foreach (array, i, item)
    if (g_strcmp0 (json_string_value (item), value) == 0)
      return TRUE;
  return FALSE;
}

/* ------------------------------------------------------------------
 * Real providers, on the mock LLM server (tests/mock-llm-server.c)
 *
 * The server is started on first use and serves every test; each run
 * names its own scenario (X-Mock-Scenario) and a key (X-Mock-Key) by
 * which its requests are counted in the server's log.
 * ---------------------------------------------------------------- */

/* The API key the runs get: it must reach the server and nothing else. */
#define MOCK_API_KEY "sk-test-SECRET-5e1f0c"

typedef struct {
  GSubprocess *process;
  guint        port;
  char        *log_path;
} MockServer;

static MockServer mock;

/* The port of the mock server, started on the first call. */
static guint
mock_port (void)
{
  if (mock.process == NULL)
    {
      g_autofree char *log_path = test_path ("mock-requests.jsonl");
      const char *args[] = { "--fixture-dir", FIXTURE_DIR, "--log", log_path, NULL };

      mock.process = test_mock_server_start (MOCK_SERVER_PATH, args, &mock.port);
      mock.log_path = g_steal_pointer (&log_path);
    }
  return mock.port;
}

static void
mock_stop (void)
{
  test_mock_server_stop (&mock.process);
  g_clear_pointer (&mock.log_path, g_free);
}

/* How many requests the server logged with X-Mock-Key @key. */
static guint
mock_count_requests (const char *key)
{
  g_autofree char *text = read_text (mock.log_path);
  g_auto (GStrv) lines = split_lines (text != NULL ? text : "");
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (json_t) request = json_loads (lines[i], 0, NULL);
      json_t *headers = json_object_get (request, "headers");

      if (g_strcmp0 (json_string_value (json_object_get (headers, "x-mock-key")), key) == 0)
        n++;
    }
  return n;
}

static void
assert_no_secret (const char *what,
                  const char *text)
{
  if (text != NULL && (strstr (text, MOCK_API_KEY) != NULL || strstr (text, "SECRET") != NULL))
    fail_msg ("the API key leaked into %s:\n%s", what, text);
}

/* ------------------------------------------------------------------
 * The seed example
 * ---------------------------------------------------------------- */

/* What the seed example prints, line by line, before its result. */
static char **
seed_expected_lines (void)
{
  g_autoptr (GString) text = g_string_new ("zzzz....\nHi! I just woke up. Your llm is starting\n");

  for (guint i = 0; seed_chunks[i] != NULL; i++)
    g_string_append_printf (text, TOKEN_PREFIX "%s\n", seed_chunks[i]);
  g_string_append (text, "zzzz....\nHi! I just woke up. Your llm is ending\n");
  return split_lines (text->str);
}

static void
assert_seed_result (json_t *result)
{
  json_t *llm_result = json_object_get (result, "llm_result");
  json_t *message = json_object_get (json_array_get (json_array_get (
                      json_object_get (llm_result, "generations"), 0), 0), "message");

  assert_non_null (result);
  assert_true (json_is_string (json_object_get (result, "run_id")));
  assert_int_equal (strlen (json_string_value (json_object_get (result, "run_id"))), 36);
  assert_string_equal (json_string_value (json_object_get (result, "output")), SEED_OUTPUT);
  assert_string_equal (json_string_value (json_object_get (llm_result, "type")), "LLMResult");
  assert_true (json_is_object (json_object_get (message, "usage_metadata")));
  assert_true (json_integer_value (json_object_get (json_object_get (message, "usage_metadata"),
                                                    "output_tokens")) > 0);
  assert_string_equal (json_string_value (json_object_get (json_object_get (message, "response_metadata"),
                                                           "model_name")), SEED_MODEL);
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The seed's lines, then ONE result JSON line, last. With @exact_order
 * the lines come in the documented order; without, only the same lines
 * the same number of times. */
static void
assert_seed_output (RunResult *result,
                    gboolean   exact_order)
{
  g_auto (GStrv) lines = split_lines (result->out);
  g_auto (GStrv) expected = seed_expected_lines ();
  guint n = g_strv_length (lines);
  guint n_expected = g_strv_length (expected);
  g_autoptr (json_t) json = NULL;

  assert_status (result, 0);
  if (n != n_expected + 1)
    fail_msg ("expected %u lines and the result, got %u lines:\n%s", n_expected, n, result->out);
  json = json_loads (lines[n - 1], 0, NULL);
  if (json == NULL)
    fail_msg ("the last line is not the result JSON: %s", lines[n - 1]);
  assert_seed_result (json);
  g_free (lines[n - 1]);
  lines[n - 1] = NULL;
  if (!exact_order)
    {
      qsort (lines, n - 1, sizeof (char *), compare_strings);
      qsort (expected, n_expected, sizeof (char *), compare_strings);
    }
  for (guint i = 0; i < n_expected; i++)
    if (!g_str_equal (lines[i], expected[i]))
      fail_msg ("line %u is \"%s\", expected \"%s\"; the output was:\n%s",
                i + 1, lines[i], expected[i], result->out);
  /* Nothing unexpected on stderr: no warning, no critical. */
  assert_string_equal (result->err, "");
}

static void
test_seed_builtin (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "run", NULL);

  assert_seed_output (result, TRUE);
}

static void
test_seed_file (void **state)
{
  g_autofree char *seed = g_build_filename (SRCDIR, "examples", "seed.ini", NULL);
  g_autoptr (RunResult) result = run_chime_in (NULL, "run", seed, NULL);

  assert_seed_output (result, TRUE);
}

/* A copy of examples/seed.ini with another delivery mode. */
static char *
seed_with_delivery (const char *dir,
                    const char *delivery)
{
  g_autofree char *text = read_source_file ("examples/seed.ini");
  g_autofree char *line = g_strdup_printf ("delivery = %s", delivery);
  g_autoptr (GString) changed = g_string_new (text);

  assert_non_null (strstr (text, "delivery = fenced"));
  g_string_replace (changed, "delivery = fenced", line, 1);
  return write_in (dir, "seed.ini", changed->str);
}

static void
test_seed_awaited (void **state)
{
  g_autofree char *dir = fresh_dir ("awaited");
  g_autofree char *config = seed_with_delivery (dir, "awaited");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_seed_output (result, TRUE);
}

static void
test_seed_background (void **state)
{
  g_autofree char *dir = fresh_dir ("background");
  g_autofree char *config = seed_with_delivery (dir, "background");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_seed_output (result, FALSE);
}

/* ------------------------------------------------------------------
 * Every example in examples/
 * ---------------------------------------------------------------- */

/* The command an example's header comment gives: the arguments after
 * "chime run examples/NAME.ini", up to "(" or "&&" or "|", and in @env
 * the NAME=VALUE settings written before "chime" on that line (for the
 * API key a local server does not check). NULL when the header names no
 * such command. */
static char **
example_command_args (const char *text,
                      const char *file_name,
                      char     ***env)
{
  g_auto (GStrv) lines = split_lines (text);
  g_autofree char *marker = g_strdup_printf ("chime run examples/%s", file_name);

  *env = g_new0 (char *, 1);
  for (guint i = 0; lines[i] != NULL && lines[i][0] == '#'; i++)
    {
      const char *found = strstr (lines[i], marker);
      g_autofree char *rest = NULL;
      g_autofree char *before = NULL;
      char *cut;
      char **args = NULL;

      if (found == NULL)
        continue;
      before = g_strstrip (g_strndup (lines[i] + 1, found - lines[i] - 1));
      if (before[0] != '\0')
        {
          g_strfreev (*env);
          if (!g_shell_parse_argv (before, NULL, env, NULL))
            fail_msg ("cannot parse the command in %s: %s", file_name, lines[i]);
          for (guint e = 0; (*env)[e] != NULL; e++)
            if (strchr ((*env)[e], '=') == NULL)
              fail_msg ("%s: only NAME=VALUE may come before chime: %s", file_name, lines[i]);
        }
      rest = g_strdup (found + strlen (marker));
      for (const char *stop = "(&|"; *stop != '\0'; stop++)
        if ((cut = strchr (rest, *stop)) != NULL)
          *cut = '\0';
      g_strstrip (rest);
      if (rest[0] == '\0')
        return g_new0 (char *, 1);
      if (!g_shell_parse_argv (rest, NULL, &args, NULL))
        fail_msg ("cannot parse the command in %s: %s", file_name, lines[i]);
      return args;
    }
  return NULL;
}

/* The provider of an example that calls a real API (openai, anthropic),
 * or NULL. */
static char *
example_real_provider (const char *text)
{
  g_autoptr (GRegex) regex = g_regex_new ("^\\s*provider\\s*=\\s*(openai|anthropic)\\s*$",
                                          G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;

  if (!g_regex_match (regex, text, 0, &match))
    return NULL;
  return g_match_info_fetch (match, 1);
}

/* @text with its base_url's scheme, host and port replaced by the mock
 * server's (the path stays), so the example runs with no network. */
static char *
example_on_mock (const char *text,
                 const char *file_name)
{
  g_autoptr (GRegex) regex = g_regex_new ("^(\\s*base_url\\s*=\\s*)https?://[^/\\s]+(\\S*)\\s*$",
                                          G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GRegex) keyless = g_regex_new ("^\\s*api_key_env\\s*=\\s*$", G_REGEX_MULTILINE, 0, NULL);
  /* A local server that wants no key: the mock server plays one when told. */
  g_autofree char *replacement = g_strdup_printf ("\\1http://127.0.0.1:%u\\2%s", mock_port (),
                                                  g_regex_match (keyless, text, 0, NULL)
                                                    ? "\nheaders = X-Mock-Auth: none" : "");

  if (!g_regex_match (regex, text, 0, NULL))
    fail_msg ("examples/%s calls a real API: it must set base_url, which the tests point at "
              "the mock server", file_name);
  return g_regex_replace (regex, text, -1, 0, replacement, 0, NULL);
}

/* The API keys the examples read, set to the test's key. */
static const char *const example_key_settings[] = {
  "OPENAI_API_KEY=" MOCK_API_KEY, "ANTHROPIC_API_KEY=" MOCK_API_KEY, NULL
};

/* What the mock server streams for each provider's default fixture. */
static const char *
mock_fixture_output (const char *provider)
{
  return g_str_equal (provider, "anthropic") ? "Hello there!" : "I'm unable app.";
}

static void
test_examples_all_run (void **state)
{
  g_autofree char *dir_path = g_build_filename (SRCDIR, "examples", NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  guint n_real = 0;

  assert_non_null (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".ini"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  assert_true (names->len >= 9);

  for (guint i = 0; i < names->len; i++)
    {
      const char *file_name = names->pdata[i];
      g_autofree char *path = g_build_filename (dir_path, file_name, NULL);
      g_autofree char *text = read_text (path);
      g_auto (GStrv) env = NULL;
      g_auto (GStrv) extra = example_command_args (text, file_name, &env);
      g_autofree char *provider = example_real_provider (text);
      g_autofree char *run_dir = NULL;
      g_autofree char *run_path = NULL;
      g_autoptr (GPtrArray) args = g_ptr_array_new ();
      g_autoptr (GStrvBuilder) env_builder = g_strv_builder_new ();
      g_auto (GStrv) run_env = NULL;
      g_autoptr (RunResult) result = NULL;
      g_autoptr (json_t) json = NULL;
      RunOptions options = { 0 };

      if (extra == NULL)
        fail_msg ("examples/%s: its header comment must give the command to run it "
                  "(\"#   chime run examples/%s ...\")", file_name, file_name);
      if (provider != NULL)
        {
          /* A copy that calls the mock server instead of the real API. */
          g_autofree char *on_mock = example_on_mock (text, file_name);

          run_dir = fresh_dir ("example");
          run_path = write_in (run_dir, file_name, on_mock);
          g_strv_builder_addv (env_builder, (const char **) example_key_settings);
          n_real++;
        }
      g_strv_builder_addv (env_builder, (const char **) env);
      run_env = g_strv_builder_end (env_builder);
      options.env = (const char * const *) run_env;
      g_ptr_array_add (args, "run");
      g_ptr_array_add (args, run_path != NULL ? run_path : path);
      for (guint a = 0; extra[a] != NULL; a++)
        g_ptr_array_add (args, extra[a]);
      g_ptr_array_add (args, NULL);
      result = run_chime_argv (&options, (const char * const *) args->pdata);
      if (result->status != 0)
        fail_msg ("examples/%s exited with %d\nstdout:\n%s\nstderr:\n%s", file_name,
                  result->status, result->out, result->err);
      json = find_result (result->out);
      if (json == NULL)
        fail_msg ("examples/%s printed no result JSON:\n%s", file_name, result->out);
      assert_true (json_is_string (json_object_get (json, "run_id")));
      assert_non_null (json_object_get (json, "output"));
      assert_string_equal (json_string_value (json_object_get (json_object_get (json, "llm_result"), "type")),
                           "LLMResult");
      if (strstr (result->err, "WARNING") != NULL || strstr (result->err, "CRITICAL") != NULL)
        fail_msg ("examples/%s logged a warning:\n%s", file_name, result->err);
      /* The JSON parser's output is the parsed object, not a string. */
      if (g_str_equal (file_name, "json-parser.ini"))
        assert_true (json_is_object (json_object_get (json, "output")));
      if (g_str_equal (file_name, "variables.ini"))
        assert_string_contains (result->out, "Tell me a joke about otters");
      if (provider != NULL)
        {
          assert_string_equal (json_string_value (json_object_get (json, "output")),
                               mock_fixture_output (provider));
          assert_no_secret ("stdout", result->out);
          assert_no_secret ("stderr", result->err);
        }
      /* The seed's handlers, on Claude's tokens. */
      if (g_str_equal (file_name, "anthropic.ini"))
        {
          assert_string_contains (result->out, "Hi! I just woke up. Your llm is starting\n");
          assert_string_contains (result->out, TOKEN_PREFIX " there\n");
          assert_string_contains (result->out, "Hi! I just woke up. Your llm is ending\n");
        }
    }
  /* openai.ini, anthropic.ini and local-llama.ini at least. */
  assert_true (n_real >= 3);
}

/* `chime check` on the examples that call real APIs needs no key. */
static void
test_examples_check_without_key (void **state)
{
  static const char *const examples[] = { "openai.ini", "anthropic.ini", "local-llama.ini" };
  const char *env[] = { "OPENAI_API_KEY", "ANTHROPIC_API_KEY", NULL };
  RunOptions options = { .env = env };

  for (guint i = 0; i < G_N_ELEMENTS (examples); i++)
    {
      g_autofree char *path = g_build_filename (SRCDIR, "examples", examples[i], NULL);
      g_autofree char *ok = g_strdup_printf ("%s: ok\n", path);
      const char *args[] = { "check", path, NULL };
      g_autoptr (RunResult) result = run_chime_argv (&options, args);

      assert_status (result, 0);
      assert_string_contains (result->out, ok);
    }
}

/* The batch example: openai.ini on examples/batch.jsonl, as its header
 * says, against the mock server. */
static void
test_example_batch (void **state)
{
  g_autofree char *dir = fresh_dir ("example-batch");
  g_autofree char *text = read_source_file ("examples/openai.ini");
  g_autofree char *on_mock = example_on_mock (text, "openai.ini");
  g_autofree char *config = write_in (dir, "openai.ini", on_mock);
  g_autofree char *inputs = g_build_filename (SRCDIR, "examples", "batch.jsonl", NULL);
  g_autofree char *inputs_text = read_text (inputs);
  g_auto (GStrv) input_lines = split_lines (inputs_text);
  g_autofree char *output = g_build_filename (dir, "results.jsonl", NULL);
  const char *args[] = { "run", config, "--inputs", inputs, "--concurrency", "4", "--output", output, NULL };
  RunOptions options = { .cwd = dir, .env = example_key_settings };
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = NULL;

  assert_string_contains (text, "chime run examples/openai.ini --inputs examples/batch.jsonl");
  result = run_chime_argv (&options, args);
  assert_status (result, 0);
  lines = read_json_lines (output);
  assert_true (g_strv_length (input_lines) >= 3);
  assert_int_equal (json_array_size (lines), g_strv_length (input_lines));
  for (guint i = 0; i < json_array_size (lines); i++)
    {
      json_t *line = json_array_get (lines, i);

      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      assert_string_equal (json_string_value (json_object_get (line, "output")), "I'm unable app.");
    }
  assert_no_secret ("stderr", result->err);
}

/* ------------------------------------------------------------------
 * Variables
 * ---------------------------------------------------------------- */

static void
test_variables_reach_model (void **state)
{
  g_autofree char *dir = fresh_dir ("variables");
  g_autofree char *config = copy_test_config (dir, "variables.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--input", "a pirate",
                                               "--var", "topic=otters", NULL);
  g_autoptr (json_t) events = NULL;
  json_t *start = NULL, *messages, *root_inputs = NULL;
  gsize i;
  json_t *event;

  assert_status (result, 0);
  events = read_json_lines (trace);
  json_array_foreach (events, i, event)
    {
      const char *name = json_string_value (json_object_get (event, "event"));

      if (g_str_equal (name, "chat_model_start"))
        start = event;
      if (g_str_equal (name, "chain_start") && json_is_null (json_object_get (event, "parent_run_id")))
        root_inputs = json_object_get (event, "inputs");
    }
  assert_non_null (start);
  messages = json_array_get (json_object_get (start, "messages"), 0);
  assert_int_equal (json_array_size (messages), 2);
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 0), "type")), "system");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 0), "content")),
                       "You answer in the style of a pirate.");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 1), "type")), "human");
  assert_string_equal (json_string_value (json_object_get (json_array_get (messages, 1), "content")),
                       "Tell me a joke about otters");
  /* The root chain's inputs are the variables. */
  assert_string_equal (json_string_value (json_object_get (root_inputs, "topic")), "otters");
  assert_string_equal (json_string_value (json_object_get (root_inputs, "input")), "a pirate");
}

static void
test_missing_variable_stops_before_running (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-variable");
  g_autofree char *config = copy_test_config (dir, "variables.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--input", "a pirate",
                                               "--events", events_path, NULL);
  g_autofree char *trace_text = read_text (trace);
  g_autofree char *events_text = read_text (events_path);

  assert_status (result, 2);
  assert_string_contains (result->err, "topic");
  assert_string_contains (result->err, "--var");
  assert_null (find_result (result->out));
  /* Nothing ran: no event reached any handler. */
  assert_true (trace_text == NULL || trace_text[0] == '\0');
  assert_true (events_text == NULL || events_text[0] == '\0');
}

/* Stricter: a run refused for a missing variable leaves the files its
 * handlers would write alone. Currently the handlers are started (and
 * truncate their files) before the variables are checked; see the known
 * bug in core/runner.c command_run. Skipped until that is fixed. */
static void
test_missing_variable_leaves_files_alone (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-variable-files");
  g_autofree char *config = copy_test_config (dir, "variables.ini");
  g_autofree char *trace = write_in (dir, "trace.jsonl", "{\"kept\": true}\n");
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--events", events_path, NULL);
  g_autofree char *trace_text = read_text (trace);

  assert_status (result, 2);
  assert_string_contains (result->err, "--var");
  if (g_file_test (events_path, G_FILE_TEST_EXISTS) || g_strcmp0 (trace_text, "{\"kept\": true}\n") != 0)
    {
      print_message ("KNOWN BUG: `chime run` starts the handlers (which create and truncate their "
                     "files) before it checks the prompt variables\n");
      skip ();
    }
}

/* ------------------------------------------------------------------
 * --output and --pretty
 * ---------------------------------------------------------------- */

static void
test_output_file (void **state)
{
  g_autofree char *dir = fresh_dir ("output");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", "--output", output, NULL);
  g_autofree char *text = read_text (output);
  g_auto (GStrv) lines = split_lines (result->out);
  g_auto (GStrv) expected = seed_expected_lines ();
  g_autoptr (json_t) json = NULL;

  assert_status (result, 0);
  /* stdout has the handlers' output and nothing else. */
  assert_int_equal (g_strv_length (lines), g_strv_length (expected));
  for (guint i = 0; expected[i] != NULL; i++)
    assert_string_equal (lines[i], expected[i]);
  assert_null (find_result (result->out));
  /* The file has the result, as one compact line. */
  assert_non_null (text);
  assert_true (g_str_has_suffix (text, "}\n"));
  assert_ptr_equal (strchr (text, '\n'), text + strlen (text) - 1);
  json = json_loads (text, 0, NULL);
  assert_seed_result (json);
}

static void
test_pretty (void **state)
{
  g_autofree char *dir = fresh_dir ("pretty");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) to_file = run_chime_in (dir, "run", "--output", output, "--pretty", NULL);
  g_autoptr (RunResult) to_stdout = run_chime_in (dir, "run", "--pretty", NULL);
  g_autofree char *text = read_text (output);
  g_autoptr (json_t) from_file = NULL;
  g_autoptr (json_t) from_stdout = NULL;

  assert_status (to_file, 0);
  assert_non_null (text);
  assert_true (g_str_has_prefix (text, "{\n  \"run_id\": "));
  from_file = json_loads (text, 0, NULL);
  assert_seed_result (from_file);

  assert_status (to_stdout, 0);
  assert_string_contains (to_stdout->out, "Your llm is ending\n{\n  \"run_id\": ");
  assert_string_contains (to_stdout->out, "\n    \"generations\": [");
  from_stdout = find_result (to_stdout->out);
  assert_seed_result (from_stdout);
}

/* ------------------------------------------------------------------
 * --events: the astream_events v2 stream
 * ---------------------------------------------------------------- */

static const char *const v2_keys[] = {
  "event", "name", "run_id", "parent_ids", "tags", "metadata", "data", NULL
};

static void
assert_v2_keys (json_t *event)
{
  void *iter = json_object_iter (event);

  for (guint i = 0; v2_keys[i] != NULL; i++)
    {
      if (iter == NULL || !g_str_equal (json_object_iter_key (iter), v2_keys[i]))
        {
          g_autofree char *text = json_dumps (event, JSON_COMPACT);
          fail_msg ("expected key \"%s\" at position %u: %s", v2_keys[i], i + 1, text);
        }
      iter = json_object_iter_next (event, iter);
    }
  assert_null (iter);
}

/* The stream of tests/examples/events.ini, checked event by event. */
static void
assert_events_stream (json_t *events,
                      json_t *result)
{
  const char *expected_order =
    "on_chain_start on_prompt_start on_prompt_end on_chat_model_start "
    "on_chat_model_stream on_chat_model_stream on_chat_model_stream on_chat_model_stream "
    "on_chat_model_stream on_chat_model_end on_parser_start on_parser_end on_chain_end";
  g_autofree char *names = event_names (events);
  json_t *root = json_array_get (events, 0);
  json_t *root_end = json_array_get (events, json_array_size (events) - 1);
  const char *root_id = json_string_value (json_object_get (root, "run_id"));
  g_autoptr (GString) streamed = g_string_new (NULL);
  gsize i;
  json_t *event;

  assert_string_equal (names, expected_order);
  assert_int_equal (count_events (events, "on_chat_model_stream"), g_strv_length ((char **) seed_chunks));

  /* The root. */
  assert_string_equal (json_string_value (json_object_get (root, "name")), "JokeChain");
  assert_int_equal (json_array_size (json_object_get (root, "parent_ids")), 0);
  assert_string_equal (root_id, json_string_value (json_object_get (result, "run_id")));
  assert_true (json_is_object (json_object_get (json_object_get (root, "data"), "input")));
  assert_string_equal (json_string_value (json_object_get (root_end, "run_id")), root_id);
  assert_int_equal (json_array_size (json_object_get (root_end, "parent_ids")), 0);
  assert_null (json_object_get (json_object_get (root_end, "data"), "input"));
  assert_true (json_equal (json_object_get (json_object_get (root_end, "data"), "output"),
                           json_object_get (result, "output")));

  json_array_foreach (events, i, event)
    {
      const char *name = json_string_value (json_object_get (event, "event"));
      json_t *data = json_object_get (event, "data");
      json_t *tags = json_object_get (event, "tags");
      json_t *metadata = json_object_get (event, "metadata");
      const char *step = NULL;

      assert_v2_keys (event);
      /* [pipeline] tags and metadata reach every event. */
      assert_true (strv_json_contains (tags, "joke"));
      assert_true (strv_json_contains (tags, "test"));
      assert_string_equal (json_string_value (json_object_get (metadata, "user")), "ada");
      assert_int_equal (json_integer_value (json_object_get (metadata, "attempt")), 1);
      if (i == 0 || i == json_array_size (events) - 1)
        continue;

      /* Every child's parent is the root. */
      assert_int_equal (json_array_size (json_object_get (event, "parent_ids")), 1);
      assert_string_equal (json_string_value (json_array_get (json_object_get (event, "parent_ids"), 0)),
                           root_id);
      if (g_str_has_prefix (name, "on_prompt_"))
        step = "seq:step:1";
      else if (g_str_has_prefix (name, "on_chat_model_"))
        step = "seq:step:2";
      else if (g_str_has_prefix (name, "on_parser_"))
        step = "seq:step:3";
      assert_non_null (step);
      assert_true (strv_json_contains (tags, step));

      if (g_str_equal (name, "on_prompt_start"))
        assert_string_equal (json_string_value (json_object_get (event, "name")), "ChatPromptTemplate");
      if (g_str_has_suffix (name, "_end"))
        assert_non_null (json_object_get (data, "input"));
      if (g_str_equal (name, "on_chat_model_start"))
        assert_string_equal (json_string_value (json_object_get (json_array_get (json_array_get (
                               json_object_get (json_object_get (data, "input"), "messages"), 0), 0),
                               "content")), "Tell me a joke");
      if (g_str_equal (name, "on_chat_model_stream"))
        {
          json_t *chunk = json_object_get (data, "chunk");

          assert_string_equal (json_string_value (json_object_get (chunk, "type")), "AIMessageChunk");
          g_string_append (streamed, json_string_value (json_object_get (chunk, "content")));
        }
      if (g_str_equal (name, "on_chat_model_end"))
        {
          json_t *output = json_object_get (data, "output");

          assert_string_equal (json_string_value (json_object_get (output, "content")), SEED_OUTPUT);
          assert_true (json_is_object (json_object_get (output, "usage_metadata")));
          assert_true (json_is_array (json_object_get (json_object_get (data, "input"), "messages")));
        }
      if (g_str_equal (name, "on_parser_end"))
        assert_string_equal (json_string_value (json_object_get (data, "output")), SEED_OUTPUT);
    }
  assert_string_equal (streamed->str, SEED_OUTPUT);
}

static void
test_events_file (void **state)
{
  g_autofree char *dir = fresh_dir ("events");
  g_autofree char *config = copy_test_config (dir, "events.ini");
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--events", events_path, NULL);
  g_autoptr (json_t) events = NULL;
  g_autoptr (json_t) json = NULL;
  g_auto (GStrv) lines = split_lines (result->out);

  assert_status (result, 0);
  /* The stream went to the file: stdout has the result only. */
  assert_int_equal (g_strv_length (lines), 1);
  json = json_loads (lines[0], 0, NULL);
  assert_non_null (json);
  events = read_json_lines (events_path);
  assert_events_stream (events, json);
}

static void
test_events_stdout (void **state)
{
  g_autofree char *dir = fresh_dir ("events-stdout");
  g_autofree char *config = copy_test_config (dir, "events.ini");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--events", "-", NULL);
  g_auto (GStrv) lines = split_lines (result->out);
  guint n = g_strv_length (lines);
  g_autoptr (json_t) json = NULL;
  g_autoptr (json_t) events = NULL;
  g_autofree char *stream = NULL;

  assert_status (result, 0);
  /* No file named "-" was made, here or next to the configuration. */
  {
    g_autofree char *dash = g_build_filename (dir, "-", NULL);
    assert_false (g_file_test (dash, G_FILE_TEST_EXISTS));
  }
  assert_true (n > 1);
  json = json_loads (lines[n - 1], 0, NULL);
  assert_non_null (json);
  assert_non_null (json_object_get (json, "llm_result"));
  g_free (lines[n - 1]);
  lines[n - 1] = NULL;
  stream = g_strjoinv ("\n", lines);
  events = parse_json_lines (stream, "stdout");
  assert_events_stream (events, json);
}

/* The seed's own handlers and the stream share stdout: every line is
 * either a handler's or a whole stream event. */
static void
test_events_stdout_with_seed (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "run", "--events", "-", NULL);
  g_auto (GStrv) lines = split_lines (result->out);
  g_auto (GStrv) expected = seed_expected_lines ();
  guint n = g_strv_length (lines);
  guint n_events = 0, n_other = 0;
  g_autoptr (json_t) json = NULL;

  assert_status (result, 0);
  json = json_loads (lines[n - 1], 0, NULL);
  assert_seed_result (json);
  for (guint i = 0; i + 1 < n; i++)
    {
      if (g_str_has_prefix (lines[i], "{\"event\":"))
        {
          g_autoptr (json_t) event = json_loads (lines[i], 0, NULL);

          if (event == NULL)
            fail_msg ("a stream line was cut: %s", lines[i]);
          n_events++;
        }
      else
        n_other++;
    }
  assert_int_equal (n_other, g_strv_length (expected));
  assert_int_equal (n_events, 13);
}

/* A relative --events path is relative to the current folder, as any
 * command-line path. Currently it resolves against the configuration's
 * folder (see the report on core/runner.c events_section); skipped until
 * that is fixed. */
static void
test_events_relative_path (void **state)
{
  g_autofree char *dir = fresh_dir ("events-relative");
  g_autofree char *conf_dir = g_build_filename (dir, "conf", NULL);
  g_autofree char *config = NULL;
  g_autofree char *expected = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *misplaced = g_build_filename (conf_dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = NULL;

  assert_int_equal (g_mkdir_with_parents (conf_dir, 0755), 0);
  config = copy_test_config (conf_dir, "events.ini");
  result = run_chime_in (dir, "run", config, "--events", "events.jsonl", NULL);
  assert_status (result, 0);
  if (!g_file_test (expected, G_FILE_TEST_EXISTS) && g_file_test (misplaced, G_FILE_TEST_EXISTS))
    {
      print_message ("KNOWN BUG: `chime run CONFIG --events RELATIVE` writes next to CONFIG, "
                     "not in the current folder\n");
      skip ();
    }
  assert_true (g_file_test (expected, G_FILE_TEST_EXISTS));
}

/* A failing run's stream stops where the failure happened: v2 has no
 * error events (LangChain raises instead). */
static void
test_events_on_failure (void **state)
{
  g_autofree char *dir = fresh_dir ("events-failure");
  g_autofree char *config = copy_test_config (dir, "failing-model.ini");
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--events", events_path, NULL);
  g_autoptr (json_t) events = NULL;
  g_autofree char *names = NULL;

  assert_status (result, 1);
  events = read_json_lines (events_path);
  names = event_names (events);
  assert_string_equal (names, "on_chain_start on_prompt_start on_prompt_end on_chat_model_start "
                              "on_chat_model_stream on_chat_model_stream");
}

/* UTF-8 in, the same UTF-8 out: in the stream, the --output file and the
 * result on stdout, from the model's response and from --var. Two parts
 * currently fail in core/runner.c and are reported as known bugs (the
 * test is then skipped, after checking everything else): non-ASCII --var
 * values are refused ("Invalid byte sequence in conversion input": the
 * runner never calls setlocale, so GOption converts from ASCII), and the
 * result on stdout has '?' for every non-ASCII character (write_result
 * prints with g_print, which converts to the C locale's charset). */
#define UTF8_RESPONSE "Caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
#define UTF8_NAME "Zo\xc3\xab"

/* The prompt the model received and the text it streamed, from a
 * `--events -` stream on stdout. */
static void
read_utf8_stream (const char *out,
                  char      **prompt,
                  char      **streamed)
{
  g_autoptr (json_t) events = parse_json_lines (out, "stdout");
  GString *text = g_string_new (NULL);
  gsize i;
  json_t *event;

  *prompt = NULL;
  json_array_foreach (events, i, event)
    {
      const char *name = json_string_value (json_object_get (event, "event"));
      json_t *data = json_object_get (event, "data");

      if (g_str_equal (name, "on_chat_model_start"))
        *prompt = g_strdup (json_string_value (json_object_get (json_array_get (json_array_get (
                    json_object_get (json_object_get (data, "input"), "messages"), 0), 0), "content")));
      if (g_str_equal (name, "on_chat_model_stream"))
        g_string_append (text, json_string_value (json_object_get (json_object_get (data, "chunk"),
                                                                   "content")));
    }
  *streamed = g_string_free (text, FALSE);
}

static void
test_utf8 (void **state)
{
  g_autofree char *dir = fresh_dir ("utf8");
  g_autofree char *config = copy_test_config (dir, "utf8.ini");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) ascii_var = run_chime_in (dir, "run", config, "--var", "name=Zoe",
                                                  "--events", "-", "--output", output, NULL);
  g_autoptr (RunResult) utf8_var = run_chime_in (dir, "run", config, "--var", "name=" UTF8_NAME,
                                                 "--events", "-", "--output", output, NULL);
  g_autoptr (RunResult) to_stdout = run_chime_in (dir, "run", config, "--var", "name=Zoe", NULL);
  g_autoptr (json_t) from_file = NULL;
  g_autoptr (json_t) from_stdout = NULL;
  g_autoptr (GString) known_bugs = g_string_new (NULL);
  g_autofree char *prompt = NULL;
  g_autofree char *streamed = NULL;

  /* The response, in the stream and in the --output file. */
  assert_status (ascii_var, 0);
  read_utf8_stream (ascii_var->out, &prompt, &streamed);
  assert_string_equal (prompt, "Say hi to Zoe");
  assert_string_equal (streamed, UTF8_RESPONSE);
  from_file = test_read_json (output);
  assert_string_equal (json_string_value (json_object_get (from_file, "output")), UTF8_RESPONSE);

  /* A variable. */
  if (utf8_var->status == 2 && strstr (utf8_var->err, "Invalid byte sequence") != NULL)
    g_string_append (known_bugs, "KNOWN BUG: `chime run --var` refuses non-ASCII values "
                                 "(\"Invalid byte sequence in conversion input\")\n");
  else
    {
      g_clear_pointer (&prompt, g_free);
      g_clear_pointer (&streamed, g_free);
      assert_status (utf8_var, 0);
      read_utf8_stream (utf8_var->out, &prompt, &streamed);
      assert_string_equal (prompt, "Say hi to " UTF8_NAME);
    }

  /* The result on stdout. */
  assert_status (to_stdout, 0);
  from_stdout = find_result (to_stdout->out);
  assert_non_null (from_stdout);
  if (!g_str_equal (json_string_value (json_object_get (from_stdout, "output")), UTF8_RESPONSE))
    g_string_append_printf (known_bugs, "KNOWN BUG: the result JSON on stdout has '?' for non-ASCII "
                                        "characters (g_print converts to the C locale's charset): %s\n",
                            json_string_value (json_object_get (from_stdout, "output")));
  if (known_bugs->len > 0)
    {
      print_message ("%s", known_bugs->str);
      skip ();
    }
}

/* ------------------------------------------------------------------
 * Failures
 * ---------------------------------------------------------------- */

static void
test_failing_model (void **state)
{
  g_autofree char *dir = fresh_dir ("failing");
  g_autofree char *config = copy_test_config (dir, "failing-model.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);
  g_autoptr (json_t) events = NULL;
  g_autofree char *names = NULL;
  json_t *llm_error, *root_error;

  assert_status (result, 1);
  assert_string_contains (result->err, "failed after 2 chunks");
  assert_null (find_result (result->out));
  events = read_json_lines (trace);
  names = event_names (events);
  assert_string_equal (names, "chain_start chain_start chain_end chat_model_start "
                              "llm_new_token llm_new_token llm_error chain_error");
  assert_int_equal (count_events (events, "llm_end"), 0);
  llm_error = json_array_get (events, 6);
  root_error = json_array_get (events, 7);
  assert_string_equal (json_string_value (json_object_get (llm_error, "run_type")), "chat_model");
  assert_string_contains (json_string_value (json_object_get (json_object_get (llm_error, "error"), "message")),
                          "failed after 2 chunks");
  assert_true (json_is_null (json_object_get (root_error, "parent_run_id")));
  assert_string_contains (json_string_value (json_object_get (json_object_get (root_error, "error"), "message")),
                          "failed after 2 chunks");
}

static void
test_bad_json (void **state)
{
  g_autofree char *dir = fresh_dir ("bad-json");
  g_autofree char *config = copy_test_config (dir, "bad-json.ini");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_status (result, 1);
  assert_string_contains (result->err, "JsonOutputParser");
  assert_null (find_result (result->out));
}

static void
test_missing_plugin (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-plugin");
  g_autofree char *config = copy_test_config (dir, "missing-plugin.ini");
  const char *commands[] = { "run", "check" };

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr (RunResult) result = run_chime_in (dir, commands[i], config, NULL);

      assert_status (result, 3);
      assert_string_contains (result->err, "missing-plugin.ini");
      assert_string_contains (result->err, "[handler ghost]");
      assert_string_contains (result->err, "no_such_plugin");
    }
}

static void
test_bad_key (void **state)
{
  g_autofree char *dir = fresh_dir ("bad-key");
  g_autofree char *config = copy_test_config (dir, "bad-key.ini");
  g_autoptr (RunResult) run = run_chime_in (dir, "run", config, NULL);
  g_autoptr (RunResult) check = run_chime_in (dir, "check", config, NULL);

  assert_status (run, 3);
  assert_string_contains (run->err, "delay_msec");
  assert_string_contains (run->err, "did you mean 'delay_ms'");
  assert_status (check, 3);
  assert_string_contains (check->err, "did you mean 'delay_ms'");
}

/* ------------------------------------------------------------------
 * Signals
 * ---------------------------------------------------------------- */

static void
check_interrupted (int         signal_number,
                   int         expected_status,
                   const char *expected_message)
{
  g_autofree char *dir = fresh_dir ("signal");
  g_autofree char *config = copy_test_config (dir, "slow.ini");
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  const char *args[] = { "run", config, NULL };
  RunOptions options = {
    .cwd = dir,
    .signal_number = signal_number,
    .signal_after_ms = 500,
    /* The model has started streaming: the signal handlers are in place. */
    .signal_file = trace,
    .signal_needle = "\"chat_model_start\"",
  };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (json_t) events = NULL;
  g_autoptr (GString) tokens = g_string_new (NULL);
  g_autofree char *names = NULL;
  json_t *last, *before_last, *partial;
  guint n_tokens;
  gsize i;
  json_t *event;

  assert_status (result, expected_status);
  assert_string_contains (result->err, expected_message);
  assert_null (find_result (result->out));

  /* Every line parses, and the file ends with the two error events. */
  events = read_json_lines (trace);
  names = event_names (events);
  assert_true (json_array_size (events) >= 6);
  assert_true (g_str_has_prefix (names, "chain_start chain_start chain_end chat_model_start "));
  before_last = json_array_get (events, json_array_size (events) - 2);
  last = json_array_get (events, json_array_size (events) - 1);
  assert_string_equal (json_string_value (json_object_get (before_last, "event")), "llm_error");
  assert_string_equal (json_string_value (json_object_get (last, "event")), "chain_error");
  assert_true (json_is_null (json_object_get (last, "parent_run_id")));
  assert_int_equal (count_events (events, "llm_end"), 0);

  /* Counts are consistent: every token is there, and they are what the
   * model had produced when it was stopped (the partial result). */
  n_tokens = count_events (events, "llm_new_token");
  assert_int_equal (n_tokens, json_array_size (events) - 6);
  assert_true (n_tokens >= 1 && n_tokens < 50);
  json_array_foreach (events, i, event)
    if (g_str_equal (json_string_value (json_object_get (event, "event")), "llm_new_token"))
      g_string_append (tokens, json_string_value (json_object_get (event, "token")));
  partial = json_object_get (json_array_get (json_array_get (json_object_get (
              json_object_get (before_last, "response"), "generations"), 0), 0), "text");
  assert_string_equal (json_string_value (partial), tokens->str);
}

static void
test_sigint (void **state)
{
  check_interrupted (SIGINT, 130, "interrupted");
}

static void
test_sigterm (void **state)
{
  check_interrupted (SIGTERM, 143, "terminated");
}

/* ------------------------------------------------------------------
 * Real providers through the installed binary
 * ---------------------------------------------------------------- */

/* What each provider's fixture holds (tests/fixtures), and how its errors
 * are quoted. */
typedef struct {
  const char        *name;
  const char        *config;        /* tests/examples/NAME: the template */
  const char        *key_env;
  const char *const *tokens;
  const char        *model_name;    /* response_metadata.model_name */
  const char        *finish_key;
  const char        *finish_value;
  gint64             input_tokens, output_tokens, total_tokens;
  const char        *quote_429, *quote_500, *quote_401;
} MockProvider;

static const char *const openai_tokens[] = { "I'm", " unable", " app", ".", NULL };
static const char *const anthropic_tokens[] = { "Hello", " there", "!", NULL };

static const MockProvider mock_openai = {
  .name = "openai",
  .config = "openai-mock.ini",
  .key_env = "OPENAI_API_KEY",
  .tokens = openai_tokens,
  .model_name = "gpt-4o-2024-08-06",
  .finish_key = "finish_reason",
  .finish_value = "stop",
  .input_tokens = 14, .output_tokens = 30, .total_tokens = 44,
  .quote_429 = "openai: HTTP 429 rate_limit_exceeded: Rate limit reached for gpt-4o-mini",
  .quote_500 = "openai: HTTP 500 server_error: The server had an error while processing your request.",
  .quote_401 = "openai: HTTP 401 invalid_api_key: Incorrect API key provided.",
};

static const MockProvider mock_anthropic = {
  .name = "anthropic",
  .config = "anthropic-mock.ini",
  .key_env = "ANTHROPIC_API_KEY",
  .tokens = anthropic_tokens,
  .model_name = "claude-3-opus-latest",
  .finish_key = "stop_reason",
  .finish_value = "end_turn",
  .input_tokens = 11, .output_tokens = 6, .total_tokens = 17,
  .quote_429 = "anthropic: HTTP 429 rate_limit_error: Number of requests has exceeded your rate limit.",
  .quote_500 = "anthropic: HTTP 500 api_error: Internal server error",
  .quote_401 = "anthropic: HTTP 401 authentication_error: invalid x-api-key",
};

/* @text with every @from replaced by @to; fails the test when @text has
 * no @from, so that a changed template cannot go unnoticed. */
static char *
replace_all (const char *text,
             const char *from,
             const char *to)
{
  g_autoptr (GString) changed = g_string_new (text);

  if (strstr (text, from) == NULL)
    fail_msg ("expected \"%s\" in:\n%s", from, text);
  g_string_replace (changed, from, to, 0);
  return g_string_free (g_steal_pointer (&changed), FALSE);
}

#define MOCK_HEADERS_LINE "headers = [\"X-Mock-Scenario: ok\"]"

/* The provider's test configuration in @dir, pointed at the mock server,
 * its requests tagged with @mock_key and given @scenario (NULL: ok) and
 * @arg (NULL: none). */
static char *
mock_config (const char         *dir,
             const MockProvider *provider,
             const char         *mock_key,
             const char         *scenario,
             const char         *arg)
{
  g_autofree char *relative = g_build_filename ("tests", "examples", provider->config, NULL);
  g_autofree char *text = read_source_file (relative);
  g_autofree char *port = g_strdup_printf ("%u", mock_port ());
  g_autofree char *with_port = replace_all (text, "MOCK_PORT", port);
  g_autofree char *headers = g_strdup_printf ("headers = [\"X-Mock-Key: %s\", \"X-Mock-Scenario: %s\"%s%s%s]",
                                              mock_key, scenario != NULL ? scenario : "ok",
                                              arg != NULL ? ", \"X-Mock-Arg: " : "",
                                              arg != NULL ? arg : "", arg != NULL ? "\"" : "");
  g_autofree char *final = replace_all (with_port, MOCK_HEADERS_LINE, headers);

  return write_in (dir, provider->config, final);
}

/* "OPENAI_API_KEY=sk-test-..." for the provider. */
static char *
key_setting (const MockProvider *provider)
{
  return g_strdup_printf ("%s=%s", provider->key_env, MOCK_API_KEY);
}

/* The message of the result's first generation. */
static json_t *
result_message (json_t *result)
{
  return json_object_get (json_array_get (json_array_get (json_object_get (
           json_object_get (result, "llm_result"), "generations"), 0), 0), "message");
}

static void
check_provider_run (const MockProvider *provider)
{
  g_autofree char *dir = fresh_dir (provider->name);
  g_autofree char *mock_key = g_strdup_printf ("runner-%s-ok", provider->name);
  g_autofree char *config = mock_config (dir, provider, mock_key, NULL, NULL);
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *setting = key_setting (provider);
  const char *env[] = { setting, NULL };
  const char *args[] = { "run", config, "--events", events_path, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autofree char *expected = g_strjoinv ("", (char **) provider->tokens);
  g_autofree char *events_text = read_text (events_path);
  g_autoptr (json_t) json = NULL;
  g_autoptr (json_t) events = NULL;
  g_autoptr (GPtrArray) streamed = g_ptr_array_new ();
  json_t *message, *usage, *metadata;
  gsize i;
  json_t *event;

  assert_status (result, 0);
  assert_string_equal (result->err, "");
  json = find_result (result->out);
  assert_non_null (json);
  assert_string_equal (json_string_value (json_object_get (json, "output")), expected);
  assert_string_equal (json_string_value (json_object_get (json_object_get (json, "llm_result"), "type")),
                       "LLMResult");

  /* What the API said about the call. */
  message = result_message (json);
  assert_string_equal (json_string_value (json_object_get (message, "content")), expected);
  usage = json_object_get (message, "usage_metadata");
  assert_int_equal (json_integer_value (json_object_get (usage, "input_tokens")), provider->input_tokens);
  assert_int_equal (json_integer_value (json_object_get (usage, "output_tokens")), provider->output_tokens);
  assert_int_equal (json_integer_value (json_object_get (usage, "total_tokens")), provider->total_tokens);
  metadata = json_object_get (message, "response_metadata");
  assert_string_equal (json_string_value (json_object_get (metadata, "model_name")), provider->model_name);
  assert_string_equal (json_string_value (json_object_get (metadata, provider->finish_key)),
                       provider->finish_value);

  /* The tokens reached the handlers one by one, in order. */
  events = read_json_lines (events_path);
  json_array_foreach (events, i, event)
    if (g_str_equal (json_string_value (json_object_get (event, "event")), "on_chat_model_stream"))
      g_ptr_array_add (streamed, (gpointer) json_string_value (json_object_get (
                         json_object_get (json_object_get (event, "data"), "chunk"), "content")));
  assert_int_equal (streamed->len, g_strv_length ((char **) provider->tokens));
  for (guint t = 0; t < streamed->len; t++)
    if (g_strcmp0 (streamed->pdata[t], provider->tokens[t]) != 0)
      fail_msg ("%s: streamed token %u is '%s', expected '%s'", provider->name, t,
                (const char *) streamed->pdata[t], provider->tokens[t]);
  assert_int_equal (count_events (events, "on_chat_model_end"), 1);

  assert_int_equal (mock_count_requests (mock_key), 1);
  assert_no_secret ("stdout", result->out);
  assert_no_secret ("stderr", result->err);
  assert_no_secret ("the --events file", events_text);
}

static void
test_openai_run (void **state)
{
  check_provider_run (&mock_openai);
}

static void
test_anthropic_run (void **state)
{
  check_provider_run (&mock_anthropic);
}

/* One failing run: exit 1, the API's error quoted on stderr, after
 * @requests requests, and the key nowhere but on the wire. */
static void
check_provider_error (const MockProvider *provider,
                      const char         *status,
                      const char         *quote,
                      guint               requests)
{
  g_autofree char *dir = fresh_dir ("provider-error");
  g_autofree char *mock_key = g_strdup_printf ("runner-%s-%s", provider->name, status);
  g_autofree char *config = mock_config (dir, provider, mock_key, "status", status);
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *setting = key_setting (provider);
  const char *env[] = { setting, NULL };
  const char *args[] = { "run", config, "--events", events_path, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autofree char *events_text = read_text (events_path);
  g_autofree char *http_status = g_strdup_printf ("HTTP %s", status);
  g_autofree char *attempts = g_strdup_printf ("(gave up after %u attempts)", requests);

  assert_status (result, 1);
  assert_null (find_result (result->out));
  assert_string_contains (result->err, http_status);
  assert_string_contains (result->err, quote);
  if (requests > 1)
    assert_string_contains (result->err, attempts);
  else
    assert_null (strstr (result->err, "attempts"));
  assert_int_equal (mock_count_requests (mock_key), requests);
  /* The handlers heard of the failure too. */
  assert_non_null (events_text);
  assert_string_contains (events_text, "\"on_chat_model_start\"");
  assert_no_secret ("stdout", result->out);
  assert_no_secret ("stderr", result->err);
  assert_no_secret ("the --events file", events_text);
}

static void
test_provider_errors (void **state)
{
  const MockProvider *const providers[] = { &mock_openai, &mock_anthropic };

  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      /* 429 and 500 are retried max_retries (2) times, 401 never. */
      check_provider_error (providers[i], "429", providers[i]->quote_429, 3);
      check_provider_error (providers[i], "500", providers[i]->quote_500, 3);
      check_provider_error (providers[i], "401", providers[i]->quote_401, 1);
    }
}

/* Without a key the run stops before any request, naming the variable
 * (not a value). */
static void
test_provider_missing_key (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-key");
  g_autofree char *config = mock_config (dir, &mock_openai, "runner-no-key", NULL, NULL);
  const char *env[] = { "OPENAI_API_KEY", NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 1);
  assert_string_contains (result->err, "openai: no API key: set OPENAI_API_KEY (api_key_env)");
  assert_int_equal (mock_count_requests ("runner-no-key"), 0);
}

/* ------------------------------------------------------------------
 * Batch runs: --inputs and --concurrency
 * ---------------------------------------------------------------- */

/* The fake model counts the words it is sent as input_tokens: the prompt
 * "Tell me a joke about {topic}" is 5 words plus the topic's. */
static gint64
batch_input_tokens (json_t *line)
{
  return json_integer_value (json_object_get (json_object_get (result_message (line), "usage_metadata"),
                                              "input_tokens"));
}

/* Runs tests/examples/batch.ini on @inputs (JSON lines) with
 * --concurrency 3, results into a file; returns them, one per line. */
static json_t *
run_batch (const char *inputs,
           int         expected_status,
           RunResult **out_result)
{
  g_autofree char *dir = fresh_dir ("batch");
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  g_autofree char *inputs_path = write_in (dir, "inputs.jsonl", inputs);
  g_autofree char *output = g_build_filename (dir, "results.jsonl", NULL);
  RunResult *result = run_chime_in (dir, "run", config, "--inputs", inputs_path, "--concurrency", "3",
                                    "--output", output, NULL);

  assert_status (result, expected_status);
  *out_result = result;
  return read_json_lines (output);
}

/* Inputs whose topics have 1 to 5 words. */
#define BATCH_GOOD_LINES \
  "{\"topic\": \"otters\"}\n" \
  "{\"topic\": \"sea otters\"}\n" \
  "{\"topic\": \"very sleepy sea otters\"}\n" \
  "{\"topic\": \"three small sea otters\", \"unused\": 1}\n" \
  "{\"topic\": \"a b c d e\"}\n"

static void
test_batch_all_good (void **state)
{
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = run_batch (BATCH_GOOD_LINES, 0, &result);
  const gint64 words[] = { 1, 2, 4, 4, 5 };

  assert_int_equal (json_array_size (lines), 5);
  for (guint i = 0; i < 5; i++)
    {
      json_t *line = json_array_get (lines, i);

      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      assert_null (json_object_get (line, "error"));
      assert_true (json_is_string (json_object_get (line, "run_id")));
      assert_string_equal (json_string_value (json_object_get (line, "output")), SEED_OUTPUT);
      /* In input order: each line is the run of its own input. */
      assert_int_equal (batch_input_tokens (line), 5 + words[i]);
    }
  assert_string_equal (result->err, "");
}

static void
test_batch_missing_variable (void **state)
{
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = run_batch ("{\"topic\": \"otters\"}\n"
                                        "{\"topic\": \"sea otters\"}\n"
                                        "{\"subject\": \"no topic here\"}\n"
                                        "{\"topic\": \"three small sea otters\"}\n"
                                        "{\"topic\": \"a b c d e\"}\n", 1, &result);
  const gint64 words[] = { 1, 2, 0, 4, 5 };
  json_t *bad = json_array_get (lines, 2);

  assert_int_equal (json_array_size (lines), 5);
  for (guint i = 0; i < 5; i++)
    {
      json_t *line = json_array_get (lines, i);

      assert_int_equal (json_integer_value (json_object_get (line, "index")), i);
      if (i == 2)
        continue;
      assert_null (json_object_get (line, "error"));
      assert_int_equal (batch_input_tokens (line), 5 + words[i]);
    }
  /* The bad one: an error naming the variable, and nothing else. */
  assert_int_equal (json_object_size (bad), 2);
  assert_string_contains (json_string_value (json_object_get (json_object_get (bad, "error"), "message")),
                          "topic");
  assert_string_contains (result->err, "1 input failed");
}

static void
test_batch_bad_json (void **state)
{
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = run_batch ("{\"topic\": \"otters\"}\n"
                                        "{\"topic\": \"sea otters\"}\n"
                                        "{\"topic\": \"very sleepy sea otters\"}\n"
                                        "{\"topic\": oops}\n"
                                        "{\"topic\": \"a b c d e\"}\n", 1, &result);

  assert_int_equal (json_array_size (lines), 5);
  for (guint i = 0; i < 5; i++)
    assert_int_equal (json_integer_value (json_object_get (json_array_get (lines, i), "index")), i);
  assert_string_contains (json_string_value (json_object_get (json_object_get (json_array_get (lines, 3),
                                                                               "error"), "message")),
                          "not a JSON object");
  assert_int_equal (batch_input_tokens (json_array_get (lines, 4)), 10);
  assert_string_contains (result->err, "1 input failed");
}

static void
test_batch_usage_errors (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-usage");
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  g_autofree char *inputs = write_in (dir, "inputs.jsonl", BATCH_GOOD_LINES);
  g_autoptr (RunResult) zero = run_chime_in (dir, "run", config, "--inputs", inputs, "--concurrency", "0", NULL);
  g_autoptr (RunResult) too_many = run_chime_in (dir, "run", config, "--inputs", inputs,
                                                 "--concurrency", "5000", NULL);
  g_autoptr (RunResult) no_inputs = run_chime_in (dir, "run", config, "--concurrency", "2", NULL);
  g_autoptr (RunResult) zero_no_inputs = run_chime_in (dir, "run", "--concurrency", "0", NULL);
  g_autoptr (RunResult) pretty = run_chime_in (dir, "run", config, "--inputs", inputs, "--pretty", NULL);

  assert_status (zero, 2);
  assert_string_contains (zero->err, "--concurrency must be from 1 to 4096, got 0");
  assert_status (too_many, 2);
  assert_string_contains (too_many->err, "got 5000");
  assert_status (no_inputs, 2);
  assert_string_contains (no_inputs->err, "--concurrency needs --inputs");
  assert_status (zero_no_inputs, 2);
  assert_status (pretty, 2);
  assert_string_contains (pretty->err, "--pretty cannot be used with --inputs");
  /* Nothing ran. */
  assert_null (find_result (zero->out));
  assert_null (find_result (no_inputs->out));
}

/* ------------------------------------------------------------------
 * Stopping for good, unused models, drop reports
 * ---------------------------------------------------------------- */

/* The first SIGINT starts a flush that cannot end (sleepy naps for an
 * hour with no timeout); the second one ends chime at once, with 130. */
static void
test_second_sigint_exits_at_once (void **state)
{
  g_autofree char *dir = fresh_dir ("second-sigint");
  g_autofree char *config = copy_test_config (dir, "hang.ini");
  const char *args[] = { "run", config, NULL };
  RunOptions options = {
    .cwd = dir,
    .signal_number = SIGINT,
    /* sleepy has started its nap: the run is under way. */
    .signal_needle = "zzzz....",
    /* Long enough to see that the first one did not end it. */
    .second_signal_after_ms = 700,
  };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 130);
  assert_string_contains (result->err, "chime: interrupted; stopping the run and flushing every handler");
  assert_string_contains (result->err, "chime: interrupted again; quitting without waiting for the handlers");
  assert_null (strstr (result->out, "woke up"));
  assert_null (find_result (result->out));
  if (result->exit_after_signal_us > 2 * G_USEC_PER_SEC)
    fail_msg ("chime took %.3f s to exit after the second SIGINT",
              result->exit_after_signal_us / (gdouble) G_USEC_PER_SEC);
}

/* A [model] section the pipeline does not use is checked all the same. */
static void
test_unused_model_checked (void **state)
{
  g_autofree char *dir = fresh_dir ("spare-model");
  g_autofree char *config = copy_test_config (dir, "spare-model.ini");
  const char *commands[] = { "check", "run" };

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr (RunResult) result = run_chime_in (dir, commands[i], config, NULL);

      assert_status (result, 3);
      assert_string_contains (result->err, "unknown provider 'nope' in [model spare] of ");
      assert_string_contains (result->err, "spare-model.ini (line ");
      assert_string_contains (result->err, "valid providers: fake, openai, anthropic");
      assert_null (find_result (result->out));
    }
}

#define DROP_TOKENS 200

typedef struct {
  guint64 dropped;   /* as chime reported it */
  guint64 handled;   /* as the handler counted */
} DropOutcome;

/* Runs tests/examples/drop.ini: exit 0, the whole answer in the result,
 * and the drop report on stderr. */
static DropOutcome
run_drop_example (void)
{
  g_autofree char *dir = fresh_dir ("drop");
  g_autofree char *config = copy_test_config (dir, "drop.ini");
  g_autofree char *report_path = g_build_filename (dir, "counter.txt", NULL);
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "run", config, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);
  g_autoptr (GRegex) regex = g_regex_new ("^chime: handler 'slow' dropped (\\d+) events \\(on_full in \\[runtime\\]\\)$",
                                          G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *number = NULL;
  g_autofree char *report = NULL;
  g_autoptr (json_t) json = NULL;
  guint64 violations = 0;
  DropOutcome outcome = { 0 };

  assert_status (result, 0);
  json = find_result (result->out);
  assert_non_null (json);
  /* The model and the result lost nothing. */
  assert_int_equal (json_integer_value (json_object_get (json_object_get (result_message (json),
                                                                          "usage_metadata"),
                                                         "output_tokens")), DROP_TOKENS);
  if (!g_regex_match (regex, result->err, 0, &match))
    fail_msg ("no drop report on stderr:\n%s", result->err);
  number = g_match_info_fetch (match, 1);
  outcome.dropped = g_ascii_strtoull (number, NULL, 10);
  /* The handler writes "TOKENS VIOLATIONS" when it is freed. */
  report = read_text (report_path);
  assert_non_null (report);
  assert_int_equal (sscanf (report, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &outcome.handled, &violations), 2);
  return outcome;
}

/* on_full = drop_newest with a slow sync handler: the run succeeds and
 * the losses are reported, counted exactly. */
static void
test_drop_report (void **state)
{
  DropOutcome outcome = run_drop_example ();

  assert_true (outcome.dropped > 0);
  /* Every token was either handled or counted as dropped. */
  if (outcome.handled + outcome.dropped != DROP_TOKENS)
    fail_msg ("the handler got %" G_GUINT64_FORMAT " tokens and %" G_GUINT64_FORMAT " were reported "
              "dropped, of %d", outcome.handled, outcome.dropped, DROP_TOKENS);
}

/* drop_newest keeps what is queued for a slow handler and drops the
 * newer events: the handler gets its queue's worth (queue_limit = 16,
 * less the chat_model_start it may hold), not nothing. */
static void
test_drop_newest_keeps_oldest (void **state)
{
  DropOutcome outcome = run_drop_example ();

  if (outcome.handled < 15)
    fail_msg ("the handler got %" G_GUINT64_FORMAT " tokens; %" G_GUINT64_FORMAT " of %d were dropped",
              outcome.handled, outcome.dropped, DROP_TOKENS);
}

/* ------------------------------------------------------------------
 * check, plugins, --version, --help
 * ---------------------------------------------------------------- */

static void
test_check_seed (void **state)
{
  g_autofree char *seed = g_build_filename (SRCDIR, "examples", "seed.ini", NULL);
  g_autoptr (RunResult) result = run_chime_in (NULL, "check", seed, NULL);

  assert_status (result, 0);
  assert_string_contains (result->out, "seed.ini: ok");
  assert_string_contains (result->out, "delivery: fenced");
  assert_string_contains (result->out, "handler token_printer: plugin token_printer (sync)");
  assert_string_contains (result->out, "handler sleepy: plugin sleepy (async)");
  /* ... from the installed plugin folder. */
  assert_string_contains (result->out, INSTALL_ROOT);
}

static void
test_check_three_mistakes (void **state)
{
  g_autofree char *dir = fresh_dir ("three-mistakes");
  g_autofree char *config = copy_test_config (dir, "three-mistakes.ini");
  const char *commands[] = { "check", "run" };

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr (RunResult) result = run_chime_in (dir, commands[i], config, NULL);

      assert_status (result, 3);
      assert_string_contains (result->err, "3 problems");
      assert_string_contains (result->err, "'fence' for 'delivery'");
      assert_string_contains (result->err, "did you mean 'fenced'");
      assert_string_contains (result->err, "'soon' for 'chunk_delay_ms'");
      assert_string_contains (result->err, "'ten' for 'delay_ms'");
      assert_string_contains (result->err, "three-mistakes.ini");
    }
}

static void
test_plugins_list (void **state)
{
  static const struct {
    const char *name;
    const char *mode;
    const char *key;   /* a key it lists, or NULL */
  } shipped[] = {
    { "stdout", "sync", "color" },
    { "streaming_stdout", "sync", NULL },
    { "jsonl", "sync", "path (path, required)" },
    { "usage", "sync", "path (path)" },
    { "console", "sync", "color" },
    { "progress", "async", "force (boolean, default false)" },
    { "token_printer", "sync", NULL },
    { "sleepy", "async", "delay_ms (integer, default 300)" },
    { "astream_events", "sync", "path (string, required)" },
  };
  g_autoptr (RunResult) result = run_chime_in (NULL, "plugins", NULL);
  g_autofree char *plugin_dir = installed (LIBDIR, "chime/plugins");

  assert_status (result, 0);
  assert_string_contains (result->out, "Plugin search path:");
  assert_string_contains (result->out, plugin_dir);
  for (guint i = 0; i < G_N_ELEMENTS (shipped); i++)
    {
      g_autofree char *header = g_strdup_printf ("\n%s (%s)", shipped[i].name, shipped[i].mode);
      g_autofree char *file = g_strdup_printf ("file: %s/%s.so", plugin_dir, shipped[i].name);
      const char *section = strstr (result->out, header);
      const char *next;
      g_autofree char *entry = NULL;

      if (section == NULL)
        fail_msg ("`chime plugins` does not list %s (%s):\n%s", shipped[i].name, shipped[i].mode,
                  result->out);
      /* The plugin's entry runs up to the next unindented line. */
      next = section + strlen (header);
      while ((next = strchr (next, '\n')) != NULL && next[1] == ' ')
        next++;
      entry = next != NULL ? g_strndup (section, next - section) : g_strdup (section);
      assert_string_contains (entry, file);
      if (shipped[i].key != NULL)
        assert_string_contains (entry, shipped[i].key);
    }
  /* astream_events says what it writes and that '-' is stdout. */
  assert_string_contains (result->out, "astream_events v2");
  assert_string_contains (result->out, "'-' for stdout");
}

static void
test_version (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "--version", NULL);

  /* "chime 0.1.0 (plugin ABI 1.0)", from the headers it was built with. */
  g_autofree char *expected = g_strdup_printf ("chime %s (plugin ABI %d.%d)\n", CHIME_VERSION_STRING,
                                               CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);

  assert_status (result, 0);
  assert_string_equal (result->out, expected);
}

static void
test_help (void **state)
{
  g_autoptr (RunResult) run = run_chime_in (NULL, "run", "--help", NULL);
  g_autoptr (RunResult) check = run_chime_in (NULL, "check", "--help", NULL);
  g_autoptr (RunResult) plugins = run_chime_in (NULL, "plugins", "--help", NULL);
  g_autoptr (RunResult) top = run_chime_in (NULL, "--help", NULL);
  const char *run_options[] = { "--input", "--var", "--events", "--output", "--pretty", "CONFIG" };

  assert_status (run, 0);
  for (guint i = 0; i < G_N_ELEMENTS (run_options); i++)
    assert_string_contains (run->out, run_options[i]);
  assert_string_contains (run->out, "astream_events");
  assert_status (check, 0);
  assert_string_contains (check->out, "CONFIG");
  assert_string_contains (check->out, "--help");
  assert_status (plugins, 0);
  assert_string_contains (plugins->out, "CHIME_PLUGIN_PATH");
  assert_string_contains (plugins->out, "--help");
  assert_status (top, 0);
  assert_string_contains (top->out, "run [CONFIG]");
  assert_string_contains (top->out, "check CONFIG");
  assert_string_contains (top->out, "plugins");
}

static void
test_unknown_command (void **state)
{
  g_autoptr (RunResult) unknown = run_chime_in (NULL, "frobnicate", NULL);
  g_autoptr (RunResult) none = run_chime_in (NULL, NULL, NULL);
  g_autoptr (RunResult) bad_option = run_chime_in (NULL, "run", "--no-such-option", NULL);

  assert_status (unknown, 2);
  assert_string_contains (unknown->err, "unknown command 'frobnicate'");
  assert_string_contains (unknown->err, "Usage: chime COMMAND");
  assert_status (none, 2);
  assert_string_contains (none->err, "Usage: chime COMMAND");
  assert_status (bad_option, 2);
  assert_string_contains (bad_option->err, "--no-such-option");
}

/* ------------------------------------------------------------------
 * The astream_events mapping for what the runner's pipeline never emits:
 * tools, retrievers, plain LLMs, custom events, nested chains. Emitted
 * in-process through the run managers, written by the installed plugin.
 * ---------------------------------------------------------------- */

static json_t *
data_of (json_t *event,
         const char *key)
{
  return json_object_get (json_object_get (event, "data"), key);
}

static void
assert_json_text (json_t     *value,
                  const char *expected_text)
{
  g_autoptr (json_t) expected = json_loads (expected_text, JSON_DECODE_ANY, NULL);

  assert_non_null (expected);
  if (!json_equal (value, expected))
    {
      g_autofree char *text = value != NULL ? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY)
                                            : g_strdup ("(missing)");
      fail_msg ("expected %s, got %s", expected_text, text);
    }
}

static void
test_astream_events_mapping (void **state)
{
  g_autofree char *plugin = installed (LIBDIR, "chime/plugins/astream_events.so");
  g_autofree char *path = test_path ("mapping.jsonl");
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error,
                                            "[runtime]\ndelivery = awaited\n\n"
                                            "[handler stream]\nplugin = %s\npath = %s\n",
                                            plugin, path);
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeCallbackManager) grandchild = NULL;
  g_autoptr (ChimeRun) root = NULL;
  g_autoptr (ChimeRun) tool = NULL;
  g_autoptr (ChimeRun) retriever = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (ChimeRun) inner = NULL;
  g_autoptr (ChimeRun) failing = NULL;
  g_autoptr (json_t) root_inputs = json_pack ("{s:s}", "question", "2+2?");
  g_autoptr (json_t) tool_inputs = json_pack ("{s:i, s:i}", "a", 2, "b", 2);
  g_autoptr (json_t) tool_output = json_string ("4");
  g_autoptr (json_t) documents = json_pack ("[{s:s, s:{}, s:s}]", "page_content", "Otters hold hands.",
                                            "metadata", "type", "Document");
  g_autoptr (json_t) response = json_pack ("{s:[[{s:s, s:n, s:s}]], s:{s:i}, s:s}",
                                           "generations", "text", "Hi there", "generation_info",
                                           "type", "Generation", "llm_output", "x", 1, "type", "LLMResult");
  g_autoptr (json_t) custom_data = json_pack ("{s:i}", "progress", 50);
  g_autoptr (json_t) placeholder = json_pack ("{s:s}", "input", "");
  g_autoptr (json_t) inner_output = json_pack ("{s:s}", "answer", "4");
  g_autoptr (json_t) root_output = json_pack ("{s:s}", "output", "4");
  g_autoptr (GError) failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "tool broke");
  g_autoptr (json_t) events = NULL;
  g_autofree char *names = NULL;
  char root_id[CHIME_RUN_ID_STRING_LEN], inner_id[CHIME_RUN_ID_STRING_LEN];
  json_t *event;

  assert_non_null (runtime);
  manager = chime_runtime_new_callback_manager (runtime);
  root = chime_callback_manager_on_chain_start (manager, NULL, root_inputs, "Agent", NULL, &error);
  assert_non_null (root);
  chime_run_id_to_string (chime_run_info_get_id (chime_run_get_info (root)), root_id);
  child = chime_run_get_child (root, NULL);

  tool = chime_callback_manager_on_tool_start (child, NULL, "2+2", tool_inputs, "calculator", &error);
  assert_true (chime_run_on_tool_end (tool, tool_output, &error));
  retriever = chime_callback_manager_on_retriever_start (child, NULL, "otters", "Docs", &error);
  assert_true (chime_run_on_retriever_end (retriever, documents, &error));
  llm = chime_callback_manager_on_llm_start (child, NULL, "Say hi", "FakeLLM", NULL, &error);
  assert_true (chime_run_on_llm_new_token (llm, "Hi", NULL, &error));
  assert_true (chime_run_on_llm_new_token (llm, " there", NULL, &error));
  assert_true (chime_run_on_llm_end (llm, response, &error));
  assert_true (chime_run_on_custom_event (root, "my_progress", custom_data, &error));
  inner = chime_callback_manager_on_chain_start (child, NULL, placeholder, "Inner", NULL, &error);
  chime_run_id_to_string (chime_run_info_get_id (chime_run_get_info (inner)), inner_id);
  grandchild = chime_run_get_child (inner, "inner:step");
  failing = chime_callback_manager_on_tool_start (grandchild, NULL, "x", NULL, "broken", &error);
  assert_true (chime_run_on_tool_error (failing, failure, &error));
  assert_true (chime_run_on_text (inner, "a text makes no stream event", &error));
  assert_true (chime_run_on_chain_end (inner, inner_output, &error));
  assert_true (chime_run_on_chain_end (root, root_output, &error));
  chime_runtime_unref (runtime);

  events = read_json_lines (path);
  names = event_names (events);
  assert_string_equal (names,
                       "on_chain_start on_tool_start on_tool_end on_retriever_start on_retriever_end "
                       "on_llm_start on_llm_stream on_llm_stream on_llm_end on_custom_event "
                       "on_chain_start on_tool_start on_chain_end on_chain_end");
  for (gsize i = 0; i < json_array_size (events); i++)
    assert_v2_keys (json_array_get (events, i));

  event = json_array_get (events, 0);
  assert_json_text (json_object_get (event, "parent_ids"), "[]");
  assert_json_text (data_of (event, "input"), "{\"question\": \"2+2?\"}");

  event = json_array_get (events, 1);
  assert_string_equal (json_string_value (json_object_get (event, "name")), "calculator");
  assert_string_equal (json_string_value (json_array_get (json_object_get (event, "parent_ids"), 0)), root_id);
  assert_json_text (data_of (event, "input"), "{\"a\": 2, \"b\": 2}");
  event = json_array_get (events, 2);
  assert_json_text (json_object_get (event, "data"), "{\"output\": \"4\", \"input\": {\"a\": 2, \"b\": 2}}");

  event = json_array_get (events, 3);
  assert_json_text (json_object_get (event, "data"), "{\"input\": {\"query\": \"otters\"}}");
  event = json_array_get (events, 4);
  assert_json_text (data_of (event, "output"),
                    "[{\"page_content\": \"Otters hold hands.\", \"metadata\": {}, \"type\": \"Document\"}]");
  assert_json_text (data_of (event, "input"), "{\"query\": \"otters\"}");

  event = json_array_get (events, 5);
  assert_json_text (json_object_get (event, "data"), "{\"input\": {\"prompts\": [\"Say hi\"]}}");
  event = json_array_get (events, 6);
  assert_json_text (data_of (event, "chunk"),
                    "{\"text\": \"Hi\", \"generation_info\": null, \"type\": \"GenerationChunk\"}");
  event = json_array_get (events, 8);
  assert_json_text (json_object_get (event, "data"),
                    "{\"output\": {\"generations\": [[{\"text\": \"Hi there\", \"generation_info\": null, "
                    "\"type\": \"Generation\"}]], \"llm_output\": {\"x\": 1}}, "
                    "\"input\": {\"prompts\": [\"Say hi\"]}}");

  event = json_array_get (events, 9);
  assert_string_equal (json_string_value (json_object_get (event, "name")), "my_progress");
  assert_string_equal (json_string_value (json_object_get (event, "run_id")), root_id);
  assert_json_text (json_object_get (event, "parent_ids"), "[]");
  assert_json_text (json_object_get (event, "data"), "{\"progress\": 50}");

  /* {"input": ""} means "not known yet": no "input" at start, {} at end. */
  event = json_array_get (events, 10);
  assert_json_text (json_object_get (event, "data"), "{}");
  event = json_array_get (events, 11);
  assert_string_equal (json_string_value (json_array_get (json_object_get (event, "parent_ids"), 0)), root_id);
  assert_string_equal (json_string_value (json_array_get (json_object_get (event, "parent_ids"), 1)), inner_id);
  assert_true (strv_json_contains (json_object_get (event, "tags"), "inner:step"));
  assert_json_text (data_of (event, "input"), "{}");
  event = json_array_get (events, 12);
  assert_json_text (json_object_get (event, "data"), "{\"output\": {\"answer\": \"4\"}, \"input\": {}}");

  event = json_array_get (events, 13);
  assert_json_text (json_object_get (event, "data"), "{\"output\": {\"output\": \"4\"}}");
}

/* ------------------------------------------------------------------
 * The C examples of the docs compile against the installed tree.
 *
 * Convention: a fenced ```c block whose FIRST line is the comment
 * `/\* file: NAME.c *\/` is a complete plugin. It is compiled as the docs
 * tell users, with
 *   cc -shared -fPIC -o NAME.so NAME.c $(pkg-config --cflags --libs chime)
 * (against the installed headers, library and chime.pc), must compile
 * without a warning, and is then loaded by `chime check`, with every
 * symbol bound at load time. The configuration is the ```ini block of the
 * same Markdown file whose first line is `# file: NAME.ini`, if any, with
 * `plugin = NAME` pointed at the compiled NAME.so; else one handler
 * section `[handler NAME]` with `plugin = /abs/path/NAME.so`. Block names
 * must be unique across the docs.
 * ---------------------------------------------------------------- */

typedef struct {
  char *doc;     /* the Markdown file */
  char *name;    /* NAME of NAME.c */
  char *code;
  char *ini;     /* the matching `# file: NAME.ini` block, or NULL */
} DocExample;

static void
doc_example_free (gpointer data)
{
  DocExample *example = data;

  g_free (example->doc);
  g_free (example->name);
  g_free (example->code);
  g_free (example->ini);
  g_free (example);
}

/* Fenced blocks with info string @language, at the start of a line. */
static GPtrArray *
fenced_blocks (const char *text,
               const char *language)
{
  g_autofree char *pattern = g_strdup_printf ("^```%s[ \\t]*\\n(.*?)^```[ \\t]*$", language);
  g_autoptr (GRegex) regex = g_regex_new (pattern, G_REGEX_MULTILINE | G_REGEX_DOTALL, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  GPtrArray *blocks = g_ptr_array_new_with_free_func (g_free);

  g_assert (regex != NULL);
  g_regex_match (regex, text, 0, &match);
  while (g_match_info_matches (match))
    {
      g_ptr_array_add (blocks, g_match_info_fetch (match, 1));
      g_match_info_next (match, NULL);
    }
  return blocks;
}

/* NAME from a first line `<open> file: NAME.<ext> <close>`, or NULL. */
static char *
block_file_name (const char *block,
                 const char *pattern)
{
  g_autoptr (GRegex) regex = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *first = g_strndup (block, strcspn (block, "\n"));

  g_assert (regex != NULL);
  if (!g_regex_match (regex, first, 0, &match))
    return NULL;
  return g_match_info_fetch (match, 1);
}

#define C_FILE_PATTERN "^/\\*\\s*file:\\s*([A-Za-z0-9_.-]+)\\.c\\s*\\*/\\s*$"
#define INI_FILE_PATTERN "^[#;]\\s*file:\\s*([A-Za-z0-9_.-]+)\\.ini\\s*$"

/* Adds the examples of the Markdown file @doc to @examples. */
static void
collect_doc_examples (const char *doc,
                      GPtrArray  *examples,
                      GString    *failures)
{
  g_autofree char *text = read_text (doc);
  g_autoptr (GPtrArray) c_blocks = NULL;
  g_autoptr (GPtrArray) ini_blocks = NULL;

  if (text == NULL)
    return;
  c_blocks = fenced_blocks (text, "c");
  ini_blocks = fenced_blocks (text, "ini");
  for (guint i = 0; i < c_blocks->len; i++)
    {
      g_autofree char *name = block_file_name (c_blocks->pdata[i], C_FILE_PATTERN);
      DocExample *example;

      if (name == NULL)
        continue;   /* a fragment, not a complete example */
      for (guint j = 0; j < examples->len; j++)
        if (g_str_equal (((DocExample *) examples->pdata[j])->name, name))
          g_string_append_printf (failures, "%s: a second example named %s.c (the first is in %s)\n",
                                  doc, name, ((DocExample *) examples->pdata[j])->doc);
      example = g_new0 (DocExample, 1);
      example->doc = g_strdup (doc);
      example->name = g_steal_pointer (&name);
      example->code = g_strdup (c_blocks->pdata[i]);
      for (guint j = 0; j < ini_blocks->len; j++)
        {
          g_autofree char *ini_name = block_file_name (ini_blocks->pdata[j], INI_FILE_PATTERN);

          if (ini_name != NULL && g_str_equal (ini_name, example->name))
            example->ini = g_strdup (ini_blocks->pdata[j]);
        }
      g_ptr_array_add (examples, example);
    }
}

/* The Markdown files the docs are made of: README.md and docs/ (all
 * levels), in a stable order. */
static void
collect_markdown (const char *dir_path,
                  GPtrArray  *files)
{
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir_path, names->pdata[i], NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        collect_markdown (path, files);
      else if (g_str_has_suffix (path, ".md"))
        g_ptr_array_add (files, g_steal_pointer (&path));
    }
}

/* The docs' INI with `plugin = NAME` pointed at ./NAME.so. */
static char *
point_ini_at_plugin (const char *ini,
                     const char *name)
{
  g_autofree char *escaped = g_regex_escape_string (name, -1);
  g_autofree char *pattern = g_strdup_printf ("^(\\s*plugin\\s*=\\s*)(%s|%s\\.so|\\./%s\\.so)\\s*$",
                                              escaped, escaped, escaped);
  g_autofree char *replacement = g_strdup_printf ("\\1./%s.so", name);
  g_autoptr (GRegex) regex = g_regex_new (pattern, G_REGEX_MULTILINE, 0, NULL);

  g_assert (regex != NULL);
  return g_regex_replace (regex, ini, -1, 0, replacement, 0, NULL);
}

/* A folder with the installed chime.pc relocated into the install tree:
 * every variable that starts with the configured prefix starts with
 * INSTALL_ROOT + prefix instead. (pkg-config's --define-variable=prefix
 * cannot do this: it redefines the prefix of glib-2.0 and jansson too.) */
static const char *
relocated_pkgconfig_dir (void)
{
  static char *dir;
  g_autofree char *pc = NULL;
  g_autofree char *text = NULL;
  g_autofree char *root_prefix = NULL;
  g_autoptr (GString) relocated = NULL;
  g_auto (GStrv) lines = NULL;

  if (dir != NULL)
    return dir;
  pc = installed (PKGCONFIGDIR, "chime.pc");
  text = read_text (pc);
  if (text == NULL)
    fail_msg ("%s was not installed", pc);
  root_prefix = installed (PREFIX, NULL);
  relocated = g_string_new (NULL);
  lines = split_lines (text);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *equals = strchr (lines[i], '=');
      const char *colon = strchr (lines[i], ':');

      /* "name=value" variables, not "Name: value" fields. */
      if (equals != NULL && (colon == NULL || equals < colon) &&
          g_str_has_prefix (equals + 1, PREFIX) &&
          (equals[1 + strlen (PREFIX)] == '\0' || equals[1 + strlen (PREFIX)] == '/'))
        g_string_append_printf (relocated, "%.*s%s%s\n", (int) (equals + 1 - lines[i]), lines[i],
                                root_prefix, equals + 1 + strlen (PREFIX));
      else
        g_string_append_printf (relocated, "%s\n", lines[i]);
    }
  dir = fresh_dir ("pkgconfig");
  g_free (write_in (dir, "chime.pc", relocated->str));
  return dir;
}

/* Compiles one example in @dir and loads it with `chime check`; appends
 * what went wrong to @failures. */
static void
check_doc_example (DocExample *example,
                   const char *dir,
                   GString    *failures)
{
  g_autofree char *source_name = g_strdup_printf ("%s.c", example->name);
  g_autofree char *source = write_in (dir, source_name, example->code);
  const char *pkgconfig_dir = relocated_pkgconfig_dir ();
  g_autofree char *pkg_config_path = NULL;
  g_autofree char *env_pkg_config_path = NULL;
  g_autofree char *shell_command = NULL;
  g_autofree char *so_path = NULL;
  g_autofree char *ini_text = NULL;
  g_autofree char *ini_name = g_strdup_printf ("%s.ini", example->name);
  g_autofree char *ini_path = NULL;
  const char *env[] = { NULL, "LD_BIND_NOW=1", NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) compiled = NULL;
  g_autoptr (RunResult) checked = NULL;

  /* `cc -shared -fPIC -o NAME.so NAME.c $(pkg-config --cflags --libs chime)`,
   * word for word, with pkg-config reading the installed chime.pc,
   * relocated into the test's install tree. */
  pkg_config_path = g_getenv ("PKG_CONFIG_PATH") != NULL
                      ? g_strconcat (pkgconfig_dir, ":", g_getenv ("PKG_CONFIG_PATH"), NULL)
                      : g_strdup (pkgconfig_dir);
  env_pkg_config_path = g_strconcat ("PKG_CONFIG_PATH=", pkg_config_path, NULL);
  env[0] = env_pkg_config_path;
  shell_command = g_strdup_printf ("cc -shared -fPIC -o %s.so %s.c $(pkg-config --cflags --libs chime)",
                                   example->name, example->name);
  {
    const char *compile_args[] = { "sh", "-c", shell_command, NULL };
    RunOptions compile_options = { .cwd = dir, .env = env };

    compiled = run_argv (&compile_options, compile_args);
  }
  if (compiled->status != 0 || strstr (compiled->err, "warning:") != NULL ||
      strstr (compiled->out, "warning:") != NULL)
    {
      g_string_append_printf (failures, "%s: %s.c does not compile cleanly with\n  %s\n%s%s\n",
                              example->doc, example->name, shell_command, compiled->out, compiled->err);
      return;
    }
  so_path = g_strdup_printf ("%s/%s.so", dir, example->name);
  assert_true (g_file_test (so_path, G_FILE_TEST_EXISTS));

  if (example->ini != NULL)
    ini_text = point_ini_at_plugin (example->ini, example->name);
  else
    ini_text = g_strdup_printf ("[handler %s]\nplugin = %s\n", example->name, so_path);
  ini_path = write_in (dir, ini_name, ini_text);
  {
    const char *args[] = { "check", ini_path, NULL };

    checked = run_chime_argv (&options, args);
  }
  if (checked->status != 0)
    g_string_append_printf (failures, "%s: %s.so does not load (chime check exit %d):\n%s%s\n",
                            example->doc, example->name, checked->status, checked->out, checked->err);
}

/* Checks every example of @docs; returns how many there were. */
static guint
check_docs (GPtrArray  *docs,
            GString    *failures)
{
  g_autoptr (GPtrArray) examples = g_ptr_array_new_with_free_func (doc_example_free);

  for (guint i = 0; i < docs->len; i++)
    collect_doc_examples (docs->pdata[i], examples, failures);
  for (guint i = 0; i < examples->len; i++)
    {
      DocExample *example = examples->pdata[i];
      g_autofree char *dir_name = g_strdup_printf ("doc-%s", example->name);
      g_autofree char *dir = fresh_dir (dir_name);

      check_doc_example (example, dir, failures);
    }
  return examples->len;
}

/* The extractor itself, on a made-up page: a plugin that compiles, one
 * with its own INI (and a required key), a fragment that is not an
 * example, and one that does not compile, which must be reported. */
static void
test_docs_extractor_self_check (void **state)
{
  g_autofree char *dir = fresh_dir ("docs-self-check");
  g_autofree char *doc = write_in (dir, "page.md",
    "# A page\n\n"
    "```c\n"
    "/* file: hello_doc.c */\n"
    "#include <chime/plugin.h>\n"
    "#include <stdio.h>\n\n"
    "static gboolean\n"
    "on_token (gpointer instance, ChimeEvent *event, GError **error)\n"
    "{\n"
    "  printf (\"%s\", chime_event_get_token (event));\n"
    "  return TRUE;\n"
    "}\n\n"
    "CHIME_SYNC_PLUGIN_DEFINE (\n"
    "  .name = \"hello_doc\",\n"
    "  .on_llm_new_token = on_token,\n"
    ");\n"
    "```\n\n"
    "A fragment, not checked:\n\n"
    "```c\n"
    "printf (\"%s\", chime_event_get_token (event));\n"
    "```\n\n"
    "```c\n"
    "/* file: keyed_doc.c */\n"
    "#include <chime/plugin.h>\n\n"
    "static const ChimeConfigKey keys[] = {\n"
    "  { \"greeting\", CHIME_CONFIG_STRING, NULL, \"what to say\", CHIME_CONFIG_KEY_REQUIRED },\n"
    "  { NULL }\n"
    "};\n\n"
    "static gpointer\n"
    "greeter_new (ChimeHandlerContext *context, GError **error)\n"
    "{\n"
    "  return g_strdup (chime_handler_context_get_string (context, \"greeting\"));\n"
    "}\n\n"
    "static gboolean\n"
    "greet (gpointer instance, ChimeEvent *event, GError **error)\n"
    "{\n"
    "  g_print (\"%s\\n\", (const char *) instance);\n"
    "  return TRUE;\n"
    "}\n\n"
    "CHIME_SYNC_PLUGIN_DEFINE (\n"
    "  .name = \"keyed_doc\",\n"
    "  .config_keys = keys,\n"
    "  .instance_new = greeter_new,\n"
    "  .instance_free = g_free,\n"
    "  .on_chain_start = greet,\n"
    ");\n"
    "```\n\n"
    "```ini\n"
    "# file: keyed_doc.ini\n"
    "[handler greeter]\n"
    "plugin = keyed_doc\n"
    "greeting = hello\n"
    "```\n\n"
    "```c\n"
    "/* file: broken_doc.c */\n"
    "#include <chime/plugin.h>\n"
    "this is not C;\n"
    "```\n");
  g_autoptr (GPtrArray) docs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) failures = g_string_new (NULL);
  guint n;

  /* pkg-config hands out the installed tree's flags, and glib's own. */
  {
    g_autofree char *setting = g_strconcat ("PKG_CONFIG_PATH=", relocated_pkgconfig_dir (), NULL);
    const char *env[] = { setting, NULL };
    const char *args[] = { "pkg-config", "--cflags", "--libs", "chime", NULL };
    RunOptions options = { .cwd = dir, .env = env };
    g_autoptr (RunResult) flags = run_argv (&options, args);
    g_autofree char *include_dir = installed (INCLUDEDIR, NULL);
    g_autofree char *lib_dir = installed (LIBDIR, NULL);
    g_autofree char *include_flag = g_strconcat ("-I", include_dir, " ", NULL);
    g_autofree char *lib_flag = g_strconcat ("-L", lib_dir, " ", NULL);

    assert_status (flags, 0);
    assert_string_contains (flags->out, include_flag);
    assert_string_contains (flags->out, lib_flag);
    assert_string_contains (flags->out, "glib-2.0");
  }

  g_ptr_array_add (docs, g_strdup (doc));
  n = check_docs (docs, failures);
  if (n != 3 || strstr (failures->str, "hello_doc") != NULL || strstr (failures->str, "keyed_doc") != NULL)
    fail_msg ("%u examples; failures:\n%s", n, failures->str);
  assert_string_contains (failures->str, "broken_doc.c does not compile");
}

static void
test_docs_examples_compile (void **state)
{
  g_autoptr (GPtrArray) docs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) failures = g_string_new (NULL);
  g_autofree char *docs_dir = g_build_filename (SRCDIR, "docs", NULL);
  guint n;

  g_ptr_array_add (docs, g_build_filename (SRCDIR, "README.md", NULL));
  collect_markdown (docs_dir, docs);
  n = check_docs (docs, failures);
  if (failures->len > 0)
    fail_msg ("%s", failures->str);
  if (n == 0)
    {
      print_message ("no C examples in the docs yet: a ```c block whose first line is "
                     "/* file: NAME.c */ is compiled and loaded by this test\n");
      skip ();
    }
  print_message ("%u C examples of the docs compiled and loaded\n", n);
}

/* ------------------------------------------------------------------ */

static int
setup_group (void **state)
{
  g_autofree char *program = chime_binary ();

  if (!g_file_test (program, G_FILE_TEST_IS_EXECUTABLE))
    {
      print_error ("%s is not installed: `make check` installs the tree into %s first "
                   "(tests/test-install-stamp)\n", program, INSTALL_ROOT);
      return -1;
    }
  return 0;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_seed_builtin),
    cmocka_unit_test (test_seed_file),
    cmocka_unit_test (test_seed_awaited),
    cmocka_unit_test (test_seed_background),
    cmocka_unit_test (test_examples_all_run),
    cmocka_unit_test (test_examples_check_without_key),
    cmocka_unit_test (test_example_batch),
    cmocka_unit_test (test_variables_reach_model),
    cmocka_unit_test (test_missing_variable_stops_before_running),
    cmocka_unit_test (test_missing_variable_leaves_files_alone),
    cmocka_unit_test (test_output_file),
    cmocka_unit_test (test_pretty),
    cmocka_unit_test (test_events_file),
    cmocka_unit_test (test_events_stdout),
    cmocka_unit_test (test_events_stdout_with_seed),
    cmocka_unit_test (test_events_relative_path),
    cmocka_unit_test (test_events_on_failure),
    cmocka_unit_test (test_utf8),
    cmocka_unit_test (test_failing_model),
    cmocka_unit_test (test_bad_json),
    cmocka_unit_test (test_missing_plugin),
    cmocka_unit_test (test_bad_key),
    cmocka_unit_test (test_sigint),
    cmocka_unit_test (test_sigterm),
    cmocka_unit_test (test_second_sigint_exits_at_once),
    cmocka_unit_test (test_unused_model_checked),
    cmocka_unit_test (test_drop_report),
    cmocka_unit_test (test_drop_newest_keeps_oldest),
    cmocka_unit_test (test_openai_run),
    cmocka_unit_test (test_anthropic_run),
    cmocka_unit_test (test_provider_errors),
    cmocka_unit_test (test_provider_missing_key),
    cmocka_unit_test (test_batch_all_good),
    cmocka_unit_test (test_batch_missing_variable),
    cmocka_unit_test (test_batch_bad_json),
    cmocka_unit_test (test_batch_usage_errors),
    cmocka_unit_test (test_check_seed),
    cmocka_unit_test (test_check_three_mistakes),
    cmocka_unit_test (test_plugins_list),
    cmocka_unit_test (test_version),
    cmocka_unit_test (test_help),
    cmocka_unit_test (test_unknown_command),
    cmocka_unit_test (test_astream_events_mapping),
    cmocka_unit_test (test_docs_extractor_self_check),
    cmocka_unit_test (test_docs_examples_compile),
  };

  int failed;

  if (setup_group (NULL) != 0)
    return 1;
  failed = test_run_group (tests, G_N_ELEMENTS (tests));
  mock_stop ();
  return failed;
}
