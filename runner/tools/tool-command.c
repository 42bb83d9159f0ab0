/* The `command` kind of tool: a program run with GSubprocess on the main
 * loop. Its arguments (a JSON object) are its standard input, its
 * standard output is the result; a non-zero exit, a signal or the end of
 * `timeout_ms` fails the call with the first MAX_STDERR bytes of its
 * standard error. It gets no environment but the variables `env` lists
 * (a tool is code the model chooses to run: it should not see the API
 * keys chime was started with). */
#include "config.h"

#include "tool.h"
#include "pipeline/pipeline-error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* A tool's answer goes into the model's context: more is a mistake. */
#define MAX_OUTPUT (1024 * 1024)
#define MAX_STDERR 4096
#define READ_SIZE 8192
#define DEFAULT_TIMEOUT_MS 30000

typedef struct {
  ChimeTool parent;
  char    **argv;        /* argv[0] absolute */
  char     *command;     /* as written, for messages */
  char    **env;         /* the names of the variables passed on */
  char     *cwd;         /* the INI file's folder */
  gint64    timeout_ms;
} CommandTool;

typedef struct {
  CommandTool      *tool;
  GSubprocess      *process;
  GCancellable     *cancellable;   /* ours: stops the reads */
  GCancellable     *outer;
  gulong            outer_handler;
  GSource          *timeout;
  GMainContext     *context;
  GByteArray       *out;
  GByteArray       *err;
  char              out_buffer[READ_SIZE];
  char              err_buffer[READ_SIZE];
  guint             pending;       /* the reads and the wait still under way */
  gboolean          timed_out, too_long, cancelled;
  GError           *spawn_error;
  ChimeToolDoneFunc done;
  gpointer          user_data;
} CommandCall;

/* ------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------- */

static void command_invoke (ChimeTool *tool, json_t *args, ChimeRun *run, GCancellable *cancellable,
                            GMainContext *context, ChimeToolDoneFunc done, gpointer user_data);
static void command_free   (ChimeTool *tool);

static const ChimeToolOps command_ops = {
  .invoke = command_invoke,
  .free = command_free,
};

/* The program of @argv0 as an absolute path: looked up in PATH when it
 * has no slash, else relative to the INI file's folder. NULL when there
 * is no such executable. */
static char *
find_program (ChimeConfig *config,
              const char  *argv0)
{
  g_autofree char *path = NULL;

  if (strchr (argv0, '/') == NULL)
    return g_find_program_in_path (argv0);
  path = chime_config_resolve_path (config, argv0);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR) || access (path, X_OK) != 0)
    return NULL;
  return g_steal_pointer (&path);
}

ChimeTool *
chime_command_tool_new (ChimeConfig *config,
                        const char  *section)
{
  g_autofree char *command = chime_config_read_string (config, section, "command", NULL);
  g_autofree char *location = chime_config_describe_location (config, section, "command");
  g_auto (GStrv) argv = NULL;
  g_autoptr (GError) error = NULL;
  CommandTool *tool;
  char *program;

  if (command == NULL)
    {
      chime_config_add_problem (config, "missing required key 'command'%s: the program that runs "
                                "the tool, e.g. command = python3 word_count.py", location);
      return NULL;
    }
  if (!g_shell_parse_argv (command, NULL, &argv, &error))
    {
      chime_config_add_problem (config, "invalid value for 'command'%s: %s", location, error->message);
      return NULL;
    }
  program = find_program (config, argv[0]);
  if (program == NULL)
    {
      chime_config_add_problem (config, "cannot run 'command'%s: %s '%s' found%s; install it or "
                                "fix the path", location,
                                strchr (argv[0], '/') != NULL ? "no executable file" : "no program",
                                argv[0], strchr (argv[0], '/') != NULL ? "" : " in PATH");
      return NULL;
    }
  g_free (argv[0]);
  argv[0] = program;
  tool = g_new0 (CommandTool, 1);
  tool->parent.ops = &command_ops;
  tool->argv = g_steal_pointer (&argv);
  tool->command = g_steal_pointer (&command);
  tool->env = chime_config_read_list (config, section, "env", NULL);
  tool->cwd = g_strdup (chime_config_get_base_dir (config));
  chime_config_read_int (config, section, "timeout_ms", DEFAULT_TIMEOUT_MS, 1, 24 * 3600 * 1000,
                         &tool->timeout_ms);
  return &tool->parent;
}

static void
command_free (ChimeTool *tool)
{
  CommandTool *self = (CommandTool *) tool;

  g_strfreev (self->argv);
  g_free (self->command);
  g_strfreev (self->env);
  g_free (self->cwd);
  g_free (self);
}

/* ------------------------------------------------------------------
 * Running
 * ---------------------------------------------------------------- */

static char **
tool_environ (CommandTool *tool)
{
  char **environ = g_new0 (char *, 1);

  for (guint i = 0; tool->env[i] != NULL; i++)
    {
      const char *value = g_getenv (tool->env[i]);

      if (value != NULL)
        environ = g_environ_setenv (environ, tool->env[i], value, TRUE);
    }
  return environ;
}

/* The arguments as a file the command reads as its standard input: no
 * pipe to write, so no SIGPIPE when the command does not read them, and
 * no wait on a command that reads slowly. */
static int
arguments_fd (json_t  *args,
              GError **error)
{
  g_autofree char *text = json_dumps (args, JSON_COMPACT);
  g_autofree char *path = NULL;
  gsize length = strlen (text), written = 0;
  int fd = g_file_open_tmp ("chime-tool-XXXXXX", &path, error);

  if (fd < 0)
    return -1;
  g_unlink (path);
  while (written < length)
    {
      gssize n = write (fd, text + written, length - written);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          close (fd);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "cannot write the tool's arguments: %s", g_strerror (saved));
          return -1;
        }
      written += n;
    }
  lseek (fd, 0, SEEK_SET);
  return fd;
}

static void
call_free (CommandCall *call)
{
  if (call->outer_handler != 0)
    g_cancellable_disconnect (call->outer, call->outer_handler);
  g_clear_object (&call->outer);
  if (call->timeout != NULL)
    g_source_destroy (call->timeout);
  g_clear_pointer (&call->timeout, g_source_unref);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->process);
  g_byte_array_unref (call->out);
  g_byte_array_unref (call->err);
  g_main_context_unref (call->context);
  g_free (call);
}

/* What the command wrote, as text (an empty array has no data). */
static char *
bytes_text (GByteArray *bytes)
{
  return g_utf8_make_valid (bytes->len > 0 ? (const char *) bytes->data : "", bytes->len);
}

static char *
stderr_text (CommandCall *call)
{
  g_autofree char *text = bytes_text (call->err);

  g_strstrip (text);
  if (text[0] == '\0')
    return g_strdup ("");
  return g_strdup_printf (": %s%s", text, call->err->len >= MAX_STDERR ? " [...]" : "");
}

static GError *
call_error (CommandCall *call)
{
  CommandTool *tool = call->tool;
  g_autofree char *err = stderr_text (call);
  GSubprocess *process = call->process;

  if (call->cancelled)
    return g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED,
                        "tool '%s' was cancelled", tool->parent.name);
  if (call->timed_out)
    return g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_TOOL,
                        "tool '%s' timed out after %" G_GINT64_FORMAT " ms (timeout_ms in "
                        "[tool %s]); `%s` was killed%s", tool->parent.name, tool->timeout_ms,
                        tool->parent.name, tool->command, err);
  if (call->too_long)
    return g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_TOOL,
                        "tool '%s' wrote more than %d bytes; `%s` was killed", tool->parent.name,
                        MAX_OUTPUT, tool->command);
  if (g_subprocess_get_if_signaled (process))
    return g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_TOOL,
                        "tool '%s' failed: `%s` was killed by signal %d%s", tool->parent.name,
                        tool->command, g_subprocess_get_term_sig (process), err);
  if (g_subprocess_get_exit_status (process) != 0)
    return g_error_new (CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_TOOL,
                        "tool '%s' failed: `%s` exited with status %d%s", tool->parent.name,
                        tool->command, g_subprocess_get_exit_status (process), err);
  return NULL;
}

static void
call_step_done (CommandCall *call)
{
  GError *error;
  char *output = NULL;

  if (--call->pending > 0)
    return;
  error = call_error (call);
  if (error == NULL)
    {
      output = bytes_text (call->out);
      g_strchomp (output);
    }
  call->done (output, error, call->user_data);
  call_free (call);
}

/* Stops the command: the wait then ends, and the reads are cancelled in
 * case a child of the command still holds the pipes open. */
static void
call_stop (CommandCall *call)
{
  g_subprocess_force_exit (call->process);
  g_cancellable_cancel (call->cancellable);
}

static gboolean
on_timeout (gpointer data)
{
  CommandCall *call = data;

  call->timed_out = TRUE;
  call_stop (call);
  g_clear_pointer (&call->timeout, g_source_unref);
  return G_SOURCE_REMOVE;
}

static void
on_outer_cancelled (GCancellable *cancellable,
                    gpointer      data)
{
  CommandCall *call = data;

  /* Killing and cancelling are thread-safe; the ends of the reads and
   * the wait still come on the call's context. */
  call->cancelled = TRUE;
  call_stop (call);
}

static void read_more (CommandCall *call, GInputStream *stream);

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  CommandCall *call = data;
  GInputStream *stream = G_INPUT_STREAM (source);
  gboolean is_out = stream == g_subprocess_get_stdout_pipe (call->process);
  gssize n = g_input_stream_read_finish (stream, result, NULL);

  if (n <= 0)
    {
      call_step_done (call);
      return;
    }
  if (is_out && call->out->len + n > MAX_OUTPUT)
    {
      call->too_long = TRUE;
      call_stop (call);
      call_step_done (call);
      return;
    }
  if (is_out)
    g_byte_array_append (call->out, (guint8 *) call->out_buffer, n);
  else if (call->err->len < MAX_STDERR)
    g_byte_array_append (call->err, (guint8 *) call->err_buffer, MIN ((gsize) n, MAX_STDERR - call->err->len));
  read_more (call, stream);
}

/* Reads a bounded piece; the rest of a long stderr is read and dropped,
 * so that the command never blocks on a full pipe. */
static void
read_more (CommandCall  *call,
           GInputStream *stream)
{
  gboolean is_out = stream == g_subprocess_get_stdout_pipe (call->process);

  g_input_stream_read_async (stream, is_out ? call->out_buffer : call->err_buffer, READ_SIZE,
                             G_PRIORITY_DEFAULT, call->cancellable, on_read, call);
}

static void
on_exited (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  CommandCall *call = data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  call_step_done (call);
}

static gboolean
report_spawn_error (gpointer data)
{
  CommandCall *call = data;
  call->done (NULL, g_steal_pointer (&call->spawn_error), call->user_data);
  call_free (call);
  return G_SOURCE_REMOVE;
}

static GSubprocess *
spawn (CommandTool *tool,
       json_t      *args,
       GError     **error)
{
  g_autoptr (GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_auto (GStrv) environ = tool_environ (tool);
  int fd = arguments_fd (args, error);

  if (fd < 0)
    return NULL;
  g_subprocess_launcher_take_stdin_fd (launcher, fd);
  g_subprocess_launcher_set_environ (launcher, environ);
  g_subprocess_launcher_set_cwd (launcher, tool->cwd);
  return g_subprocess_launcher_spawnv (launcher, (const char * const *) tool->argv, error);
}

static void
command_invoke (ChimeTool        *tool,
                json_t           *args,
                ChimeRun         *run,
                GCancellable     *cancellable,
                GMainContext     *context,
                ChimeToolDoneFunc done,
                gpointer          user_data)
{
  CommandTool *self = (CommandTool *) tool;
  CommandCall *call = g_new0 (CommandCall, 1);
  GError *error = NULL;

  call->tool = self;
  call->done = done;
  call->user_data = user_data;
  call->context = g_main_context_ref (context);
  call->cancellable = g_cancellable_new ();
  call->out = g_byte_array_new ();
  call->err = g_byte_array_new ();
  call->process = spawn (self, args, &error);
  g_main_context_push_thread_default (context);
  if (call->process == NULL)
    {
      GSource *source = g_idle_source_new ();

      g_prefix_error (&error, "tool '%s' could not start `%s`: ", tool->name, self->command);
      call->spawn_error = error;
      g_source_set_callback (source, report_spawn_error, call, NULL);
      g_source_attach (source, context);
      g_source_unref (source);
      g_main_context_pop_thread_default (context);
      return;
    }
  call->pending = 3;
  read_more (call, g_subprocess_get_stdout_pipe (call->process));
  read_more (call, g_subprocess_get_stderr_pipe (call->process));
  g_subprocess_wait_async (call->process, NULL, on_exited, call);
  call->timeout = g_timeout_source_new (self->timeout_ms);
  g_source_set_callback (call->timeout, on_timeout, call, NULL);
  g_source_attach (call->timeout, context);
  g_main_context_pop_thread_default (context);
  if (cancellable != NULL)
    {
      call->outer = g_object_ref (cancellable);
      call->outer_handler = g_cancellable_connect (cancellable, G_CALLBACK (on_outer_cancelled),
                                                   call, NULL);
    }
}
