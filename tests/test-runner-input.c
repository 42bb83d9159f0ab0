/* Input that is wrong is never silently taken, and no file is read
 * without a bound: values that are not UTF-8 in any key, a configuration,
 * prompt_file or api_key_file that is /dev/zero, a FIFO without a writer
 * or a directory, and the syntax mistakes GKeyFile lets through (locale
 * keys, bad escapes, hexadecimal numbers, a section without its name, a
 * lone '}' in a prompt). Each gets a clear message and exit status 3 (1
 * for the API key, read when the run starts). The installed chime runs
 * with its address space limited (RUN_MEMORY_LIMIT_MB), so that an
 * unbounded read fails the test instead of the machine, and with the
 * helpers' timeout, so that a hang fails it too. */
#include "runner-helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const both_commands[] = { "check", "run" };

/* Runs `chime COMMAND CONFIG` in @dir, memory-limited. */
static RunResult *
run_limited (const char *dir,
             const char *command,
             const char *config)
{
  RunOptions options = { .cwd = dir, .memory_limit_mb = RUN_MEMORY_LIMIT_MB };
  const char *args[] = { command, config, NULL };

  return run_chime_argv (&options, args);
}

/* Writes @ini into a fresh folder, runs both commands on it and checks
 * that each fails with status 3 and prints @expected. */
static void
assert_both_refuse (const char *name,
                    const char *ini,
                    const char *expected)
{
  g_autofree char *dir = fresh_dir (name);
  g_autofree char *config = write_in (dir, "pipeline.ini", ini);

  for (guint i = 0; i < G_N_ELEMENTS (both_commands); i++)
    {
      g_autoptr (RunResult) result = run_limited (dir, both_commands[i], config);

      assert_status (result, 3);
      assert_string_contains (result->err, expected);
    }
}

#define PIPELINE "[pipeline]\nprompt = Tell me a joke\nmodel = m\n\n"
#define OPENAI_MODEL "[model m]\nprovider = openai\nmodel = gpt-4o-mini\nbase_url = http://127.0.0.1:1\n"

/* ------------------------------------------------------------------
 * Values that are not UTF-8
 * ---------------------------------------------------------------- */

/* `headers` not starting with '[' crashed both commands in g_strsplit. */
static void
test_headers_not_utf8 (void **state)
{
  assert_both_refuse ("headers-latin1", PIPELINE OPENAI_MODEL "headers = X-Title: caf\xe9\n",
                      "chime: invalid value for 'headers' in [model m] of pipeline.ini (line 9): "
                      "it is not UTF-8 text (byte 13 of the value is 0xE9); save the file as UTF-8\n");
}

/* `response` was silently replaced by the default response. */
static void
test_response_not_utf8 (void **state)
{
  assert_both_refuse ("response-latin1",
                      PIPELINE "[model m]\nprovider = fake\nresponse = Caf\xe9 au lait\n",
                      "chime: invalid value for 'response' in [model m] of pipeline.ini (line 7): "
                      "it is not UTF-8 text (byte 4 of the value is 0xE9); save the file as UTF-8\n");
}

/* `stop` was accepted as it was. */
static void
test_stop_not_utf8 (void **state)
{
  assert_both_refuse ("stop-latin1", PIPELINE OPENAI_MODEL "stop = fin\xff\n",
                      "invalid value for 'stop' in [model m] of pipeline.ini (line 9): "
                      "it is not UTF-8 text (byte 4 of the value is 0xFF)");
}

/* A prompt that is present but not UTF-8 was reported missing. */
static void
test_prompt_not_utf8 (void **state)
{
  g_autofree char *dir = fresh_dir ("prompt-latin1");
  g_autofree char *config = write_in (dir, "pipeline.ini",
                                      "[pipeline]\nprompt = Un caf\xe9 {topic}\nmodel = m\n\n"
                                      "[model m]\nprovider = fake\n");
  g_autoptr (RunResult) result = run_limited (dir, "check", config);

  assert_status (result, 3);
  assert_string_equal (result->err, "chime: invalid value for 'prompt' in [pipeline] of pipeline.ini "
                       "(line 2): it is not UTF-8 text (byte 7 of the value is 0xE9); save the file "
                       "as UTF-8\n");
}

/* A plugin's typed key (jsonl's path) goes through the same readers. */
static void
test_plugin_key_not_utf8 (void **state)
{
  assert_both_refuse ("plugin-key-latin1",
                      PIPELINE "[model m]\nprovider = fake\n\n[handler log]\nplugin = jsonl\n"
                      "path = caf\xe9.jsonl\n",
                      "chime: invalid value for 'path' in [handler log] of pipeline.ini (line 10): "
                      "it is not UTF-8 text (byte 4 of the value is 0xE9); save the file as UTF-8\n");
}

/* ------------------------------------------------------------------
 * Files that are not regular files, or too large
 * ---------------------------------------------------------------- */

static char *
make_fifo (const char *dir,
           const char *name)
{
  char *path = g_build_filename (dir, name, NULL);

  if (mkfifo (path, 0600) != 0)
    fail_msg ("mkfifo %s: %s", path, g_strerror (errno));
  return path;
}

/* The configuration itself: /dev/zero grew without end, a FIFO blocked. */
static void
test_config_not_a_regular_file (void **state)
{
  g_autofree char *dir = fresh_dir ("config-kinds");
  g_autofree char *fifo = make_fifo (dir, "pipeline.ini");
  g_autofree char *fifo_message = g_strdup_printf ("chime: cannot read configuration: %s is a FIFO "
                                                   "(named pipe), not a regular file\n", fifo);
  g_autofree char *dir_message = g_strdup_printf ("chime: cannot read configuration: %s is a "
                                                  "directory, not a regular file\n", dir);

  for (guint i = 0; i < G_N_ELEMENTS (both_commands); i++)
    {
      g_autoptr (RunResult) zero = run_limited (dir, both_commands[i], "/dev/zero");
      g_autoptr (RunResult) pipe = run_limited (dir, both_commands[i], fifo);
      g_autoptr (RunResult) folder = run_limited (dir, both_commands[i], dir);

      assert_status (zero, 3);
      assert_string_equal (zero->err, "chime: cannot read configuration: /dev/zero is a character "
                           "device, not a regular file\n");
      assert_status (pipe, 3);
      assert_string_equal (pipe->err, fifo_message);
      assert_status (folder, 3);
      assert_string_equal (folder->err, dir_message);
    }
}

static void
test_config_too_large (void **state)
{
  g_autofree char *dir = fresh_dir ("config-large");
  g_autofree char *comment = g_strnfill (1024 * 1024 + 1, '#');
  g_autofree char *config = write_in (dir, "pipeline.ini", comment);
  g_autoptr (RunResult) result = run_limited (dir, "check", config);
  g_autofree char *expected = g_strdup_printf ("chime: cannot read configuration: %s is larger than "
                                               "1 MiB, the most chime reads from it\n", config);

  /* A megabyte of '#' and no newline: one comment line, one byte over. */
  assert_status (result, 3);
  assert_string_equal (result->err, expected);
}

/* prompt_file = /dev/zero never ended; a FIFO blocked. */
static void
test_prompt_file_not_a_regular_file (void **state)
{
  g_autofree char *dir = fresh_dir ("prompt-file-kinds");
  g_autofree char *fifo = make_fifo (dir, "prompt.txt");
  const char *const paths[] = { "/dev/zero", "prompt.txt", "." };
  const char *const kinds[] = { "a character device", "a FIFO (named pipe)", "a directory" };
  const char *const shown[] = { "/dev/zero", fifo, dir };

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *ini = g_strdup_printf ("[pipeline]\nprompt_file = %s\nmodel = m\n\n"
                                              "[model m]\nprovider = fake\n", paths[i]);
      g_autofree char *config = write_in (dir, "pipeline.ini", ini);
      g_autoptr (RunResult) result = run_limited (dir, "check", config);
      g_autofree char *expected = g_strdup_printf ("chime: cannot read prompt_file in [pipeline] of "
                                                   "pipeline.ini (line 2): %s is %s, not a regular file\n",
                                                   shown[i], kinds[i]);

      assert_status (result, 3);
      assert_string_equal (result->err, expected);
    }
}

/* api_key_file = /dev/zero grew to 24 GB; a FIFO without a writer blocked
 * in open() and ignored SIGTERM. The key is read when the run starts. */
static void
test_api_key_file_not_a_regular_file (void **state)
{
  g_autofree char *dir = fresh_dir ("key-file-kinds");
  g_autofree char *fifo = make_fifo (dir, "api.key");
  const char *const paths[] = { "/dev/zero", "api.key" };
  const char *const kinds[] = { "a character device", "a FIFO (named pipe)" };
  const char *const shown[] = { "/dev/zero", fifo };

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *ini = g_strdup_printf (PIPELINE OPENAI_MODEL "max_retries = 0\napi_key_file = %s\n",
                                              paths[i]);
      g_autofree char *config = write_in (dir, "pipeline.ini", ini);
      g_autoptr (RunResult) result = run_limited (dir, "run", config);
      g_autofree char *expected = g_strdup_printf ("chime: openai: cannot read the API key (api_key_file "
                                                   "in [model m]): %s is %s, not a regular file\n",
                                                   shown[i], kinds[i]);

      assert_status (result, 1);
      assert_string_contains (result->err, expected);
    }
}

/* ------------------------------------------------------------------
 * What GKeyFile lets through
 * ---------------------------------------------------------------- */

/* In the file's line order; a problem without a line last. */
static void
test_syntax_mistakes_all_at_once (void **state)
{
  assert_both_refuse ("syntax-mistakes",
                      "[pipeline]\n"
                      "prompt = {{literal}} and a lone } brace\n"
                      "model = m\n"
                      "\n"
                      "[model m]\n"
                      "provider = openai\n"
                      "model = gpt-4o-mini\n"
                      "timeout_s = 0x10\n"
                      "system[fr] = Tu es drôle\n"
                      "headers = X-Path: C:\\qux\n"
                      "\n"
                      "[model ]\n"
                      "provider = fake\n",
                      "chime: 5 problems:\n"
                      "  invalid 'prompt' in [pipeline] of pipeline.ini (line 2): the prompt has a single "
                      "'}' at \"} brace\" (write '}}' for a literal brace)\n"
                      "  invalid value '0x10' for 'timeout_s' in [model m] of pipeline.ini (line 8): "
                      "expected a number from 0.001 to 86400\n"
                      "  unknown key 'system[fr]' in [model m] of pipeline.ini (line 9): chime has no "
                      "translated values (KEY[LOCALE]); write 'system =' without '[fr]'\n"
                      "  invalid value for 'headers' in [model m] of pipeline.ini (line 10): '\\q' is not "
                      "an escape (the escapes are \\s \\n \\t \\r, and \\\\ for a backslash)\n"
                      "  section [model ] in pipeline.ini needs a name: write [model NAME]\n");
}

/* A UTF-8 byte order mark, as Windows editors write it, is accepted. */
static void
test_byte_order_mark_accepted (void **state)
{
  g_autofree char *dir = fresh_dir ("bom");
  g_autofree char *config = write_in (dir, "pipeline.ini",
                                      "\xef\xbb\xbf[pipeline]\nprompt = Tell me a joke\nmodel = m\n\n"
                                      "[model m]\nprovider = fake\nresponse = Knock knock\n");
  g_autoptr (RunResult) result = run_limited (dir, "run", config);
  g_autoptr (json_t) run = find_result (result->out);

  assert_status (result, 0);
  assert_non_null (run);
  assert_string_equal (json_string_value (json_object_get (run, "output")), "Knock knock");
}

/* ------------------------------------------------------------------
 * Batch inputs (--inputs): a line bound, lines that are not text, and
 * waits a signal must end
 * ---------------------------------------------------------------- */

/* Runs `chime run batch.ini --inputs INPUTS` in @dir, memory-limited,
 * with @signal_number (0: none) once chime catches it and 300 ms more. */
static RunResult *
run_batch_inputs (const char *dir,
                  const char *inputs,
                  int         signal_number)
{
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  RunOptions options = {
    .cwd = dir,
    .memory_limit_mb = RUN_MEMORY_LIMIT_MB,
    .signal_number = signal_number,
    .signal_once_caught = TRUE,
    .signal_after_ms = 300,
  };
  const char *args[] = { "run", config, "--inputs", inputs, NULL };

  return run_chime_argv (&options, args);
}

/* /dev/zero, a line without end, filled the memory until GLib aborted. */
static void
test_batch_inputs_without_line_ends (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-zero");
  g_autoptr (RunResult) zero = run_batch_inputs (dir, "/dev/zero", 0);
  g_autoptr (RunResult) folder = run_batch_inputs (dir, ".", 0);

  assert_status (zero, 1);
  assert_string_equal (zero->err, "chime: batch /dev/zero: line 1 is longer than 1 MiB, the most chime "
                       "reads for one input (is it a JSON Lines file, one object per line?)\n");
  assert_string_equal (zero->out, "");
  assert_status (folder, 1);
  assert_string_equal (folder->err, "chime: batch .: . is a directory, not a JSON Lines file\n");
}

/* A line that is not UTF-8 stopped the batch ("Invalid byte sequence in
 * conversion input", the inputs after it lost); one with a NUL byte was
 * run with what came before the NUL. Each now fails in place. */
static void
test_batch_lines_that_are_not_text (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-not-text");
  g_autofree char *inputs = g_build_filename (dir, "inputs.jsonl", NULL);
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) lines = NULL;
  static const char text[] = "{\"topic\": \"otters\"}\r\n"
                             "{\"topic\": \"caf\xe9\"}\n"
                             "\n"
                             "{\"topic\": \"cats\"}\0{\"topic\": \"dogs\"}\n"
                             "{\"topic\": \"sea otters\"}";

  if (!g_file_set_contents (inputs, text, sizeof text - 1, NULL))
    fail_msg ("cannot write %s", inputs);
  result = run_batch_inputs (dir, "inputs.jsonl", 0);
  lines = parse_json_lines (result->out, "the results");
  assert_status (result, 1);
  assert_string_contains (result->err, "chime: 2 inputs failed");
  assert_int_equal (json_array_size (lines), 4);
  assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (lines, 1), "error"),
                                                           "message")),
                       "line 2 of inputs.jsonl is not UTF-8 text (byte 15 is 0xE9); save the file as UTF-8");
  assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (lines, 2), "error"),
                                                           "message")),
                       "line 4 of inputs.jsonl has a NUL byte (byte 18); a JSON Lines file is text");
  /* The inputs around them ran, the last one without a final newline. */
  assert_non_null (json_object_get (json_array_get (lines, 0), "output"));
  assert_non_null (json_object_get (json_array_get (lines, 3), "output"));
  assert_int_equal (json_integer_value (json_object_get (json_array_get (lines, 3), "index")), 3);
}

/* A FIFO without a writer blocked chime in open(), and one with a writer
 * that sent nothing in read(): SIGTERM was heard but the run went on
 * waiting (for stdin in a pipe too: the same read). */
static void
test_batch_inputs_wait_ends_on_signal (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-fifo");
  g_autofree char *fifo = make_fifo (dir, "inputs.jsonl");
  int writer;

  for (guint with_writer = 0; with_writer < 2; with_writer++)
    {
      g_autoptr (RunResult) result = NULL;

      /* Read and write, so that this open does not wait for a reader. */
      writer = with_writer ? open (fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC) : -1;
      result = run_batch_inputs (dir, fifo, SIGTERM);
      if (writer >= 0)
        close (writer);
      assert_status (result, 143);
      if (result->exit_after_signal_us > 2 * G_USEC_PER_SEC)
        fail_msg ("chime took %.1f s to end after SIGTERM (writer: %u)",
                  result->exit_after_signal_us / (gdouble) G_USEC_PER_SEC, with_writer);
      assert_string_equal (result->out, "");
    }
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_headers_not_utf8),
    cmocka_unit_test (test_response_not_utf8),
    cmocka_unit_test (test_stop_not_utf8),
    cmocka_unit_test (test_prompt_not_utf8),
    cmocka_unit_test (test_plugin_key_not_utf8),
    cmocka_unit_test (test_config_not_a_regular_file),
    cmocka_unit_test (test_config_too_large),
    cmocka_unit_test (test_prompt_file_not_a_regular_file),
    cmocka_unit_test (test_api_key_file_not_a_regular_file),
    cmocka_unit_test (test_syntax_mistakes_all_at_once),
    cmocka_unit_test (test_byte_order_mark_accepted),
    cmocka_unit_test (test_batch_inputs_without_line_ends),
    cmocka_unit_test (test_batch_lines_that_are_not_text),
    cmocka_unit_test (test_batch_inputs_wait_ends_on_signal),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
