/* Running the installed chime and the mock LLM server, for the runner
 * tests: see runner-helpers.h. */
#include "runner-helpers.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>

#ifndef RUN_TIMEOUT_S
#define RUN_TIMEOUT_S 20
#endif

/* ------------------------------------------------------------------
 * Paths and folders
 * ---------------------------------------------------------------- */

char *
installed (const char *dir,
           const char *rest)
{
  return g_build_filename (INSTALL_ROOT, dir, rest, NULL);
}

char *
chime_binary (void)
{
  return installed (BINDIR, "chime");
}

char *
fresh_dir (const char *name)
{
  static guint counter;
  g_autofree char *base = g_strdup_printf ("%s-%u", name, ++counter);
  char *path = test_path (base);

  assert_int_equal (g_mkdir_with_parents (path, 0755), 0);
  return path;
}

char *
read_text (const char *path)
{
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return text;
}

char *
read_source_file (const char *relative)
{
  g_autofree char *path = g_build_filename (SRCDIR, relative, NULL);
  char *text = read_text (path);

  if (text == NULL)
    fail_msg ("cannot read %s", path);
  return text;
}

char *
write_in (const char *dir,
          const char *name,
          const char *text)
{
  char *path = g_build_filename (dir, name, NULL);

  assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

char *
write_why_not_config (const char *dir,
                      const char *name,
                      const char *handlers)
{
  g_autofree char *text = g_strconcat ("[pipeline]\nprompt = Tell me a joke\nmodel = joker\n\n"
                                       "[model joker]\nprovider = fake\nmodel = fake\n"
                                       "chunks = [\"Why\", \" not\", \"?\"]\n\n", handlers, NULL);

  return write_in (dir, name, text);
}

char *
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

void
run_result_free (RunResult *result)
{
  g_free (result->out);
  g_free (result->err);
  g_free (result);
}

typedef struct {
  GMainLoop   *loop;
  GSubprocess *process;
  gboolean     timed_out;
  guint        n_signalled;
  gint64       started;
  gint64       caught;      /* when the process was seen to catch the signal */
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
   * library and its HTTP and consume modules in the install tree, not in
   * the build tree. */
  env = g_environ_unsetenv (env, "CHIME_PLUGIN_PATH");
  env = g_environ_unsetenv (env, "CHIME_HTTP_MODULE");
  env = g_environ_unsetenv (env, "CHIME_CONSUME_MODULE");
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

/* Whether /proc/@pid/status says that @pid catches @signal_number. */
static gboolean
process_catches (const char *pid,
                 int         signal_number)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status", pid);
  g_autofree char *text = read_text (path);
  const char *line = text != NULL ? strstr (text, "\nSigCgt:\t") : NULL;
  guint64 mask;

  if (line == NULL)
    return FALSE;
  mask = g_ascii_strtoull (line + strlen ("\nSigCgt:\t"), NULL, 16);
  return (mask >> (signal_number - 1)) & 1;
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
  if (options->signal_once_caught && waiter->caught == 0)
    {
      const char *pid = g_subprocess_get_identifier (waiter->process);

      if (pid == NULL || !process_catches (pid, options->signal_number))
        return G_SOURCE_CONTINUE;
      waiter->caught = now;
    }
  if (now - (options->signal_once_caught ? waiter->caught : waiter->started) <
      (gint64) options->signal_after_ms * 1000)
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

/* The sanitizers reserve far more address space than they use. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
static const gboolean address_sanitizer = TRUE;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
static const gboolean address_sanitizer = TRUE;
#else
static const gboolean address_sanitizer = FALSE;
#endif
#else
static const gboolean address_sanitizer = FALSE;
#endif

gboolean
runner_under_sanitizer (void)
{
  return address_sanitizer;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void
limit_address_space (gpointer data)
{
  rlim_t bytes = (rlim_t) GPOINTER_TO_UINT (data) * 1024 * 1024;
  struct rlimit limit = { bytes, bytes };

  setrlimit (RLIMIT_AS, &limit);
}

RunResult *
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
  if (options->memory_limit_mb > 0 && !address_sanitizer)
    g_subprocess_launcher_set_child_setup (launcher, limit_address_space,
                                           GUINT_TO_POINTER (options->memory_limit_mb), NULL);
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
      signal_timer = g_timeout_source_new (options->signal_once_caught ? 1 : 20);
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

RunResult *
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

GSubprocess *
start_chime (const char         *cwd,
             const char * const *args,
             const char         *err_path)
{
  g_autofree char *program = chime_binary ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) env = child_environment (NULL);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr (GError) error = NULL;
  GSubprocess *process;

  g_ptr_array_add (argv, program);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_environ (launcher, env);
  g_subprocess_launcher_set_cwd (launcher, cwd);
  g_subprocess_launcher_set_stderr_file_path (launcher, err_path);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  if (process == NULL)
    fail_msg ("cannot start chime: %s", error->message);
  return process;
}

RunResult *
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

gboolean
run_opened (const RunResult *result,
            const char      *name)
{
  g_autofree char *needle = g_strdup_printf ("file=%s", name);

  return strstr (result->err, needle) != NULL;
}

RunResult *
run_chime_on_terminal (const char         *cwd,
                       const char         *args,
                       const char * const *env)
{
  g_autofree char *program = chime_binary ();
  g_autofree char *quoted = g_shell_quote (program);
  g_autofree char *command = g_strdup_printf ("%s %s", quoted, args);
  RunOptions options = { .cwd = cwd, .env = env };

  return run_argv (&options, (const char *[]) { "script", "-qec", command, "/dev/null", NULL });
}

/* ------------------------------------------------------------------
 * Real providers, on the mock LLM server (tests/mock-llm-server.c)
 *
 * The server is started on first use and serves every test; each run
 * names its own scenario (X-Mock-Scenario) and a key (X-Mock-Key) by
 * which its requests are counted in the server's log.
 * ---------------------------------------------------------------- */

typedef struct {
  GSubprocess *process;
  guint        port;
  char        *log_path;
} MockServer;

static MockServer mock;

guint
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

char *
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

json_t *
mock_requests (const char *key)
{
  g_autofree char *text = read_text (mock.log_path);
  g_auto (GStrv) lines = split_lines (text != NULL ? text : "");
  json_t *requests = json_array ();

  for (guint i = 0; lines[i] != NULL; i++)
    {
      json_t *request = json_loads (lines[i], 0, NULL);
      json_t *headers = json_object_get (request, "headers");

      if (g_strcmp0 (json_string_value (json_object_get (headers, "x-mock-key")), key) == 0)
        json_array_append_new (requests, request);
      else
        json_decref (request);
    }
  return requests;
}

guint
mock_count_requests (const char *key)
{
  g_autoptr (json_t) requests = mock_requests (key);

  return json_array_size (requests);
}

char *
example_on_mock (const char *text,
                 const char *file_name,
                 const char *headers)
{
  g_autoptr (GRegex) regex = g_regex_new ("^(\\s*base_url\\s*=\\s*)https?://[^/\\s]+(\\S*)\\s*$",
                                          G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GRegex) keyless = g_regex_new ("^\\s*api_key_env\\s*=\\s*$", G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  g_autofree char *joined = NULL;
  g_autofree char *replacement = NULL;

  /* A local server that wants no key: the mock server plays one when told. */
  if (g_regex_match (keyless, text, 0, NULL))
    g_ptr_array_add (all, "X-Mock-Auth: none");
  if (headers != NULL)
    g_ptr_array_add (all, (char *) headers);
  g_ptr_array_add (all, NULL);
  joined = g_strjoinv ("; ", (char **) all->pdata);
  replacement = g_strdup_printf ("\\1http://127.0.0.1:%u\\2%s%s", mock_port (),
                                 joined[0] != '\0' ? "\nheaders = " : "", joined);
  if (!g_regex_match (regex, text, 0, NULL))
    fail_msg ("examples/%s calls a real API: it must set base_url, which the tests point at "
              "the mock server", file_name);
  return g_regex_replace (regex, text, -1, 0, replacement, 0, NULL);
}

void
assert_no_secret (const char *what,
                  const char *text)
{
  if (text != NULL && (strstr (text, MOCK_API_KEY) != NULL || strstr (text, "SECRET") != NULL))
    fail_msg ("the API key leaked into %s:\n%s", what, text);
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

static int
teardown_group (void **state)
{
  mock_stop ();
  return 0;
}

int
runner_run_tests (const struct CMUnitTest *tests,
                  gsize                    n_tests)
{
  return test_run_group_with_fixtures ("tests", tests, n_tests, setup_group, teardown_group);
}
