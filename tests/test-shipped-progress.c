/* The progress plugin: one line on stderr redrawn in place, only on a
 * terminal unless forced, a few times a second at most, and a final
 * line when the runtime stops.
 * Loaded as a real module from the build tree; every test emits through
 * the run managers, frees the runtime (so every instance has shut
 * down), then checks the output. */
#include "shipped-helpers.h"

#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------
 * progress
 * ---------------------------------------------------------------- */

/* The text after the last carriage return: what the terminal shows. */
static const char *
last_redraw (const char *output)
{
  const char *last = strrchr (output, '\r');

  return last != NULL ? last + 1 : output;
}

static void
test_progress_forced_final_line (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDERR_FILENO, "progress.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler progress]\nplugin = progress\nforce = true\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  assert_true (output[0] == '\r');
  assert_matches (last_redraw (output),
                  "^progress: 1 run done, 0 running, 3 tokens, [0-9]+\\.[0-9] tokens/s, [0-9]+\\.[0-9] s *\n\\z");
}

static void
test_progress_silent_when_not_a_tty (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;

  capture_start (STDERR_FILENO, "progress-silent.txt");
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler progress]\nplugin = progress\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);
  output = capture_stop ();

  assert_text_equal (output, "");
}

/* 2,000 tokens in a burst redraw the line a handful of times, not 2,000. */
static void
test_progress_throttles_redraws (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) tokens = g_ptr_array_new ();
  g_autoptr (json_t) result = llm_result ("x", NULL, NULL);
  g_autofree char *output = NULL;
  ChimeRuntime *runtime;
  gint64 start, elapsed_ms;
  guint redraws = 0;

  for (guint i = 0; i < 2000; i++)
    g_ptr_array_add (tokens, (gpointer) "x");
  g_ptr_array_add (tokens, NULL);

  capture_start (STDERR_FILENO, "progress-throttle.txt");
  start = g_get_monotonic_time ();
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler progress]\nplugin = progress\nforce = true\n");
  assert_null (error);
  run_conversation (runtime, (const char * const *) tokens->pdata, result);
  chime_runtime_unref (runtime);
  elapsed_ms = (g_get_monotonic_time () - start) / G_TIME_SPAN_MILLISECOND;
  output = capture_stop ();

  for (const char *c = output; *c != '\0'; c++)
    redraws += *c == '\r';
  /* The first event, one per 100 ms, a trailing one, and the final line. */
  if (redraws < 2 || redraws > elapsed_ms / 100 + 3)
    fail_msg ("%u redraws in %" G_GINT64_FORMAT " ms", redraws, elapsed_ms);
  assert_matches (last_redraw (output), "^progress: 1 run done, 0 running, 2000 tokens, ");
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown (test_progress_forced_final_line, teardown_capture),
    cmocka_unit_test_teardown (test_progress_silent_when_not_a_tty, teardown_capture),
    cmocka_unit_test_teardown (test_progress_throttles_redraws, teardown_capture),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
