/* The files a user names for chime to write (`run -o FILE`, usage's
 * `path`) are written as a shell's `> FILE` would: into the named file.
 * A symlink is followed, a FIFO (or a device) is written to as it is,
 * and only a regular file is replaced atomically. A folder that does not
 * exist is said before the run, naming it, not after the run's work.
 * They run the installed chime (see runner-helpers.h). */
#include "runner-helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
assert_is_symlink_to (const char *link,
                      const char *target)
{
  g_autofree char *points_to = g_file_read_link (link, NULL);

  assert_non_null (points_to);
  assert_string_equal (points_to, target);
}

static void
assert_result_text (const char *text)
{
  g_autoptr (json_t) json = NULL;

  assert_non_null (text);
  json = json_loads (text, 0, NULL);
  assert_non_null (json);
  assert_string_equal (json_string_value (json_object_get (json, "output")), "Why not?");
}

/* A FIFO at @dir/@name, opened for reading without waiting for a writer
 * (so chime's open for writing does not block either). */
static int
open_fifo_reader (const char *dir,
                  const char *name,
                  char      **out_path)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  int fd;

  assert_int_equal (mkfifo (path, 0600), 0);
  fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  assert_true (fd >= 0);
  *out_path = g_steal_pointer (&path);
  return fd;
}

/* What the writer left in the FIFO (it has closed its end). */
static char *
read_fifo (int fd)
{
  g_autoptr (GString) text = g_string_new (NULL);
  char buffer[4096];
  gssize n;

  while ((n = read (fd, buffer, sizeof buffer)) > 0)
    g_string_append_len (text, buffer, n);
  close (fd);
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static void
assert_is_fifo (const char *path)
{
  struct stat info;

  assert_int_equal (lstat (path, &info), 0);
  assert_true (S_ISFIFO (info.st_mode));
}

/* ------------------------------------------------------------------
 * run -o FILE
 * ---------------------------------------------------------------- */

/* -o through a symlink writes the file it points to; the link stays. */
static void
test_output_follows_symlink (void **state)
{
  g_autofree char *dir = fresh_dir ("symlink");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "");
  g_autofree char *real = write_in (dir, "real.json", "old\n");
  g_autofree char *link = g_build_filename (dir, "link.json", NULL);
  g_autoptr (RunResult) result = NULL;
  g_autofree char *text = NULL;

  assert_int_equal (symlink ("real.json", link), 0);
  result = run_chime_in (dir, "run", config, "-o", link, NULL);
  assert_status (result, 0);
  assert_is_symlink_to (link, "real.json");
  text = read_text (real);
  assert_result_text (text);
}

/* A symlink to a file not there yet: the file is created where it points. */
static void
test_output_dangling_symlink_creates_target (void **state)
{
  g_autofree char *dir = fresh_dir ("dangling");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "");
  g_autofree char *link = g_build_filename (dir, "link.json", NULL);
  g_autofree char *target = g_build_filename (dir, "new.json", NULL);
  g_autoptr (RunResult) result = NULL;
  g_autofree char *text = NULL;

  assert_int_equal (symlink ("new.json", link), 0);
  result = run_chime_in (dir, "run", config, "-o", link, NULL);
  assert_status (result, 0);
  assert_is_symlink_to (link, "new.json");
  text = read_text (target);
  assert_result_text (text);
}

/* -o FIFO: the result goes down the pipe, which stays a pipe (as root, the
 * same rename turned /dev/null into a regular file). */
static void
test_output_into_fifo (void **state)
{
  g_autofree char *dir = fresh_dir ("fifo");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "");
  g_autofree char *fifo = NULL;
  int fd = open_fifo_reader (dir, "result.pipe", &fifo);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-o", fifo, NULL);
  g_autofree char *text = read_fifo (fd);

  assert_status (result, 0);
  assert_is_fifo (fifo);
  assert_result_text (text);
}

/* --inputs -o FIFO: the JSON lines go down the pipe too. */
static void
test_batch_output_into_fifo (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-fifo");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "");
  g_autofree char *inputs = write_in (dir, "inputs.jsonl", "{}\n{}\n");
  g_autofree char *fifo = NULL;
  int fd = open_fifo_reader (dir, "results.pipe", &fifo);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--inputs", inputs, "-o", fifo, NULL);
  g_autofree char *text = read_fifo (fd);
  g_autoptr (json_t) lines = NULL;

  assert_status (result, 0);
  assert_is_fifo (fifo);
  lines = parse_json_lines (text, "the FIFO");
  assert_int_equal (json_array_size (lines), 2);
}

/* -o into a folder that does not exist: said before the run (no handler
 * saw it start), naming the folder, not some temporary file. */
static void
test_output_missing_folder_before_run (void **state)
{
  g_autofree char *dir = fresh_dir ("missing-folder");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "[handler trace]\nplugin = jsonl\npath = trace.jsonl\n");
  g_autofree char *output = g_build_filename (dir, "nowhere", "result.json", NULL);
  g_autofree char *trace = g_build_filename (dir, "trace.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-o", output, NULL);
  g_autofree char *events = read_text (trace);

  assert_status (result, 1);
  assert_string_contains (result->err, "the folder");
  assert_string_contains (result->err, "nowhere does not exist");
  assert_null (strstr (result->err, "result.json."));
  /* The run never started. */
  assert_true (events == NULL || strstr (events, "chain_start") == NULL);
}

/* A run that fails leaves the file -o names as it was. */
static void
test_output_kept_when_run_fails (void **state)
{
  g_autofree char *dir = fresh_dir ("kept");
  g_autofree char *config = copy_test_config (dir, "failing-model.ini");
  g_autofree char *output = write_in (dir, "result.json", "previous\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-o", output, NULL);
  g_autofree char *text = read_text (output);
  g_autoptr (GDir) folder = g_dir_open (dir, 0, NULL);
  const char *name;

  assert_status (result, 1);
  assert_string_equal (text, "previous\n");
  /* No temporary file left beside it. */
  while ((name = g_dir_read_name (folder)) != NULL)
    assert_false (g_str_has_prefix (name, ".goutputstream"));
}

/* -q: no result on stdout; with -o the file still gets it. */
static void
test_quiet (void **state)
{
  g_autofree char *dir = fresh_dir ("quiet");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) alone = run_chime_in (dir, "run", config, "-q", NULL);
  g_autoptr (RunResult) with_output = run_chime_in (dir, "run", config, "--quiet", "-o", output, NULL);
  g_autofree char *inputs = write_in (dir, "inputs.jsonl", "{}\n{}\n");
  g_autoptr (RunResult) batch = run_chime_in (dir, "run", config, "--inputs", inputs, "-q", NULL);
  g_autofree char *text = read_text (output);

  assert_status (alone, 0);
  assert_string_equal (alone->out, "");
  assert_status (with_output, 0);
  assert_string_equal (with_output->out, "");
  assert_result_text (text);
  assert_status (batch, 0);
  assert_string_equal (batch->out, "");
}

/* ------------------------------------------------------------------
 * usage's path
 * ---------------------------------------------------------------- */

/* usage's path through a symlink writes the file it points to. */
static void
test_usage_path_follows_symlink (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-symlink");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "[handler usage]\nplugin = usage\npath = usage-link.json\n");
  g_autofree char *real = write_in (dir, "usage-real.json", "old\n");
  g_autofree char *link = g_build_filename (dir, "usage-link.json", NULL);
  g_autoptr (RunResult) result = NULL;
  g_autofree char *text = NULL;
  g_autoptr (json_t) json = NULL;

  assert_int_equal (symlink ("usage-real.json", link), 0);
  result = run_chime_in (dir, "run", config, "-q", NULL);
  assert_status (result, 0);
  assert_is_symlink_to (link, "usage-real.json");
  text = read_text (real);
  json = json_loads (text, 0, NULL);
  assert_true (json_is_object (json));
}

/* usage's path a FIFO: the report goes down the pipe. */
static void
test_usage_path_into_fifo (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-fifo");
  g_autofree char *fifo = NULL;
  int fd = open_fifo_reader (dir, "usage.pipe", &fifo);
  g_autofree char *handler = g_strdup_printf ("[handler usage]\nplugin = usage\npath = %s\n", fifo);
  g_autofree char *config = write_why_not_config (dir, "files.ini", handler);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-q", NULL);
  g_autofree char *text = read_fifo (fd);
  g_autoptr (json_t) json = json_loads (text, 0, NULL);

  assert_status (result, 0);
  assert_is_fifo (fifo);
  assert_true (json_is_object (json));
}

/* usage's path in a folder that does not exist: the handler fails to
 * start (exit 3, as any bad configuration), before the run. */
static void
test_usage_path_missing_folder (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-missing");
  g_autofree char *config = write_why_not_config (dir, "files.ini", "[handler usage]\nplugin = usage\npath = gone/usage.json\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_status (result, 3);
  assert_string_contains (result->err, "handler 'usage'");
  assert_string_contains (result->err, "gone does not exist");
  assert_null (find_result (result->out));
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_output_follows_symlink),
    cmocka_unit_test (test_output_dangling_symlink_creates_target),
    cmocka_unit_test (test_output_into_fifo),
    cmocka_unit_test (test_batch_output_into_fifo),
    cmocka_unit_test (test_output_missing_folder_before_run),
    cmocka_unit_test (test_output_kept_when_run_fails),
    cmocka_unit_test (test_quiet),
    cmocka_unit_test (test_usage_path_follows_symlink),
    cmocka_unit_test (test_usage_path_into_fifo),
    cmocka_unit_test (test_usage_path_missing_folder),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
