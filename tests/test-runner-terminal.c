/* What a user watching a terminal sees: streamed answers that stay
 * readable when several runs stream at once (batch mode), and a
 * progress line below the streamed text, counting root runs.
 * They run the installed chime (see runner-helpers.h). */
#include "runner-helpers.h"

#include <string.h>

#define ANSWER "I'm unable to help."

/* A fake model streaming ANSWER slowly (so that batch runs overlap), and
 * @handlers. */
static char *
write_config (const char *dir,
              const char *handlers)
{
  g_autofree char *text = g_strconcat ("[pipeline]\nprompt = Say {input}\nmodel = slow\n\n"
                                       "[model slow]\nprovider = fake\nmodel = fake\n"
                                       "chunks = [\"I'm\", \" unable\", \" to\", \" help.\"]\n"
                                       "chunk_delay_ms = 30\n\n", handlers, NULL);

  return write_in (dir, "terminal.ini", text);
}

/* --inputs with four runs at once, all streaming: each answer comes out
 * whole on a line of its own, not interleaved token by token. */
static void
test_batch_streams_whole_answers (void **state)
{
  g_autofree char *dir = fresh_dir ("batch-stream");
  g_autofree char *config = write_config (dir, "[handler stream]\nplugin = streaming_stdout\n");
  g_autofree char *inputs = write_in (dir, "inputs.jsonl",
                                      "{\"input\": \"a\"}\n{\"input\": \"b\"}\n{\"input\": \"c\"}\n"
                                      "{\"input\": \"d\"}\n{\"input\": \"e\"}\n{\"input\": \"f\"}\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--inputs", inputs, "-j", "4", "-q", NULL);
  g_auto (GStrv) lines = split_lines (result->out);

  assert_status (result, 0);
  assert_int_equal (g_strv_length (lines), 6);
  for (guint i = 0; lines[i] != NULL; i++)
    assert_string_equal (lines[i], ANSWER);
}

/* One run streams live, as before: the text as it comes, then a newline. */
static void
test_single_run_streams_live (void **state)
{
  g_autofree char *dir = fresh_dir ("single-stream");
  g_autofree char *config = write_config (dir, "[handler stream]\nplugin = streaming_stdout\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-i", "x", "-q", NULL);

  assert_status (result, 0);
  assert_string_equal (result->out, ANSWER "\n");
}

/* ------------------------------------------------------------------
 * progress below streamed text
 * ---------------------------------------------------------------- */

/* streaming_stdout and progress on one terminal, tokens 120 ms apart (the
 * progress line redraws every 100 ms): the answer is never split by a
 * progress line drawn over it; the last progress line comes below it,
 * counting the one root run (not its prompt, model and parser), with the
 * elapsed time. */
static void
test_progress_stays_below_streamed_text (void **state)
{
  g_autofree char *dir = fresh_dir ("progress-below");
  g_autofree char *text = g_strconcat ("[pipeline]\nprompt = Say {input}\nmodel = slow\n\n"
                                       "[model slow]\nprovider = fake\nmodel = fake\n"
                                       "chunks = [\"I'm\", \" unable\", \" to\", \" help.\"]\n"
                                       "chunk_delay_ms = 120\n\n"
                                       "[handler stream]\nplugin = streaming_stdout\n\n"
                                       "[handler progress]\nplugin = progress\n", NULL);
  g_autofree char *config = write_in (dir, "below.ini", text);
  g_autofree char *args = g_strdup_printf ("run -q -i x %s", config);
  const char *env[] = { "TERM=xterm", NULL };
  g_autoptr (RunResult) result = run_chime_on_terminal (dir, args, env);
  const char *answer;
  GRegex *final_line;
  gboolean matched;

  assert_status (result, 0);
  /* The terminal turns "\n" into "\r\n". */
  answer = strstr (result->out, ANSWER);
  if (answer == NULL)
    fail_msg ("the answer is not in one piece on the terminal:\n%s", result->out);
  assert_non_null (strstr (result->out, "progress: 0 runs done, 1 running"));
  final_line = g_regex_new ("progress: 1 run done, 0 running, 4 tokens, [0-9]+\\.[0-9] tokens/s, "
                            "[0-9]+\\.[0-9] s *\r?\n", 0, 0, NULL);
  matched = g_regex_match (final_line, answer, 0, NULL);
  g_regex_unref (final_line);
  if (!matched)
    fail_msg ("no final progress line after the answer:\n%s", result->out);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_batch_streams_whole_answers),
    cmocka_unit_test (test_single_run_streams_live),
    cmocka_unit_test (test_progress_stays_below_streamed_text),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
