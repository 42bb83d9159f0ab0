/* Helpers shared by the cmocka tests. */
#include "test-helpers.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static char *tmpdir;
static GPtrArray *captured;
static GMutex capture_lock;
static guint capture_handler;

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
cleanup_tmpdir (void)
{
  if (tmpdir != NULL && g_getenv ("CHIME_TEST_KEEP") == NULL)
    remove_tree (tmpdir);
}

const char *
test_tmpdir (void)
{
  if (tmpdir == NULL)
    {
      tmpdir = g_dir_make_tmp ("chime-test-XXXXXX", NULL);
      assert_non_null (tmpdir);
      atexit (cleanup_tmpdir);
    }
  return tmpdir;
}

char *
test_path (const char *name)
{
  return g_build_filename (test_tmpdir (), name, NULL);
}

char *
test_write_file (const char *name,
                 const char *text)
{
  char *path = test_path (name);

  assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

ChimeRuntime *
test_runtime_new (GError    **error,
                  const char *format,
                  ...)
{
  static guint counter;
  g_autofree char *text = NULL;
  g_autofree char *name = g_strdup_printf ("pipeline-%u.ini", ++counter);
  g_autofree char *path = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  path = test_write_file (name, text);
  return chime_runtime_new_from_file (path, error);
}

json_t *
test_read_json (const char *path)
{
  json_error_t error;
  json_t *json = json_load_file (path, 0, &error);

  if (json == NULL)
    fail_msg ("cannot read JSON from %s: %s", path, error.text);
  return json;
}

char **
test_read_lines (const char *path)
{
  g_autofree char *text = NULL;
  char **lines;
  guint n;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_new0 (char *, 1);
  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines);
  if (n > 0 && lines[n - 1][0] == '\0')
    {
      g_free (lines[n - 1]);
      lines[n - 1] = NULL;
    }
  return lines;
}

int
test_find_line (char * const *lines,
                const char   *needle,
                int           from)
{
  for (int i = from; lines[i] != NULL; i++)
    if (strstr (lines[i], needle) != NULL)
      return i;
  return -1;
}

int
test_find_last_line (char * const *lines,
                     const char   *needle)
{
  int last = -1;

  for (int i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], needle) != NULL)
      last = i;
  return last;
}

static void
capture (const char    *domain,
         GLogLevelFlags level,
         const char    *message,
         gpointer       user_data)
{
  g_mutex_lock (&capture_lock);
  if (captured != NULL)
    g_ptr_array_add (captured, g_strdup (message));
  g_mutex_unlock (&capture_lock);
}

void
test_log_capture_start (void)
{
  g_mutex_lock (&capture_lock);
  if (captured == NULL)
    captured = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_set_size (captured, 0);
  g_mutex_unlock (&capture_lock);
  if (capture_handler == 0)
    capture_handler = g_log_set_handler ("chime", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE |
                                         G_LOG_LEVEL_INFO, capture, NULL);
}

gboolean
test_log_contains (const char *needle)
{
  gboolean found = FALSE;

  g_mutex_lock (&capture_lock);
  for (guint i = 0; captured != NULL && i < captured->len; i++)
    if (strstr (g_ptr_array_index (captured, i), needle) != NULL)
      found = TRUE;
  g_mutex_unlock (&capture_lock);
  return found;
}

char *
test_log_find (const char *needle)
{
  char *found = NULL;

  g_mutex_lock (&capture_lock);
  for (guint i = 0; captured != NULL && i < captured->len && found == NULL; i++)
    if (strstr (g_ptr_array_index (captured, i), needle) != NULL)
      found = g_strdup (g_ptr_array_index (captured, i));
  g_mutex_unlock (&capture_lock);
  return found;
}

void
test_log_capture_stop (void)
{
  if (capture_handler != 0)
    g_log_remove_handler ("chime", capture_handler);
  capture_handler = 0;
}

json_t *
test_messages (const char *type,
               ...)
{
  json_t *messages = json_array ();
  va_list args;

  va_start (args, type);
  while (type != NULL)
    {
      const char *content = va_arg (args, const char *);
      json_array_append_new (messages, json_pack ("{s:s, s:s}", "type", type, "content", content));
      type = va_arg (args, const char *);
    }
  va_end (args);
  return messages;
}

int
test_run_group (const struct CMUnitTest *tests,
                gsize                    n_tests)
{
  return test_run_group_with_fixtures ("tests", tests, n_tests, NULL, NULL);
}

int
test_run_group_with_fixtures (const char              *group_name,
                              const struct CMUnitTest *tests,
                              gsize                    n_tests,
                              CMFixtureFunction        group_setup,
                              CMFixtureFunction        group_teardown)
{
  const char *filter = g_getenv ("CHIME_TEST_FILTER");
  g_autofree struct CMUnitTest *selected = g_new0 (struct CMUnitTest, n_tests);
  gsize n = 0;

  for (gsize i = 0; i < n_tests; i++)
    if (filter == NULL || strstr (tests[i].name, filter) != NULL)
      selected[n++] = tests[i];
  return _cmocka_run_group_tests (group_name, selected, n, group_setup, group_teardown);
}

void
test_set_plugin_path (const char *shipped_plugin_dir)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr (GDir) dir = g_dir_open (shipped_plugin_dir, 0, NULL);
  g_auto (GStrv) folders = NULL;
  g_autofree char *path = NULL;
  const char *name;

  g_strv_builder_add (builder, TEST_PLUGIN_DIR);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *folder = g_build_filename (shipped_plugin_dir, name, NULL);

      if (g_file_test (folder, G_FILE_TEST_IS_DIR))
        g_strv_builder_add (builder, folder);
    }
  folders = g_strv_builder_end (builder);
  path = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, folders);
  g_setenv ("CHIME_PLUGIN_PATH", path, TRUE);
}

static void
mock_server_child_setup (gpointer user_data)
{
#ifdef __linux__
  /* Never outlive the test, even if it crashes. */
  prctl (PR_SET_PDEATHSIG, SIGTERM);
#endif
}

GSubprocess *
test_mock_server_start (const char         *server_path,
                        const char * const *args,
                        guint              *port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GStrvBuilder) argv_builder = g_strv_builder_new ();
  g_auto (GStrv) argv = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  GSubprocess *server;
  guint64 value;

  g_strv_builder_add (argv_builder, server_path);
  if (args != NULL)
    g_strv_builder_addv (argv_builder, (const char **) args);
  argv = g_strv_builder_end (argv_builder);
  g_subprocess_launcher_set_child_setup (launcher, mock_server_child_setup, NULL, NULL);
  server = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv, &error);
  if (server == NULL)
    fail_msg ("cannot start %s: %s", server_path, error->message);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  if (line == NULL || !g_str_has_prefix (line, "PORT ") ||
      !g_ascii_string_to_unsigned (line + 5, 10, 1, 65535, &value, NULL))
    fail_msg ("the mock server said \"%s\" instead of its port", line != NULL ? line : "nothing");
  *port = (guint) value;
  return server;
}

void
test_mock_server_stop (GSubprocess **server)
{
  if (*server == NULL)
    return;
  g_subprocess_send_signal (*server, SIGTERM);
  g_subprocess_wait (*server, NULL, NULL);
  g_clear_object (server);
}
