/* Bounded queues: what each on_full policy (block, drop_newest,
 * drop_oldest) keeps of a burst a slow handler cannot follow, and that
 * every event is either delivered or counted as dropped; and that a
 * ring slot reused lap after lap never changes an event a handler still
 * holds, nor lets the waiting emitter get ahead of a full ring. */
#include "dispatch-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * Bounded queues
 * ---------------------------------------------------------------- */

/* The tokens a recorder logged, in order. */
static GArray *
logged_tokens (const char *log,
               const char *handler)
{
  g_auto (GStrv) lines = test_read_lines (log);
  g_autofree char *prefix = g_strdup_printf ("%s llm_new_token ", handler);
  GArray *tokens = g_array_new (FALSE, FALSE, sizeof (guint));

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      {
        guint token = (guint) g_ascii_strtoull (lines[i] + strlen (prefix), NULL, 10);

        g_array_append_val (tokens, token);
      }
  return tokens;
}

/* What each policy keeps of a burst of 300 tokens (1..300) that a slow
 * handler cannot follow: drop_newest its queue's worth of the first ones
 * (16, of which chat_model_start may take one), drop_oldest the last ones;
 * either way in order. */
static void
check_kept_tokens (const char *policy,
                   GArray     *tokens)
{
  g_autoptr (GString) seen = g_string_new (NULL);

  for (guint i = 0; i < tokens->len; i++)
    g_string_append_printf (seen, " %u", g_array_index (tokens, guint, i));
  if (tokens->len < 15)
    fail_msg ("%s kept only%s", policy, seen->str);
  for (guint i = 1; i < tokens->len; i++)
    if (g_array_index (tokens, guint, i) <= g_array_index (tokens, guint, i - 1))
      fail_msg ("%s: token %u came after %u", policy, g_array_index (tokens, guint, i),
                g_array_index (tokens, guint, i - 1));
  if (g_str_equal (policy, "drop_newest"))
    for (guint i = 0; i < 15; i++)
      if (g_array_index (tokens, guint, i) != i + 1)
        fail_msg ("drop_newest lost token %u of the first 15:%s", i + 1, seen->str);
  if (g_str_equal (policy, "drop_oldest"))
    assert_int_equal (g_array_index (tokens, guint, tokens->len - 1), 300);
}

static void
run_on_full_test (const char *policy,
                  gboolean    expect_drops)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autofree char *log_name = g_strdup_printf ("on-full-%s.log", policy);
  g_autofree char *log = test_path (log_name);
  g_autoptr (GArray) tokens = NULL;
  ChimeHandlerStats slow, fast;

  runtime = test_runtime_new (&error,
                              "[runtime]\ndelivery = background\nqueue_limit = 16\non_full = %s\n"
                              "[handler slow]\nplugin = recorder_sync\ndelay_us = 1000\nlog = %s\n"
                              "[handler fast]\nplugin = recorder_async\nlog = %s\n", policy, log, log);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  emit_tokens (llm, 1, 300);
  end_llm (llm);
  chime_runtime_flush (runtime);
  slow = stats_of (runtime, "slow");
  fast = stats_of (runtime, "fast");
  /* Every event is either delivered or counted as dropped. */
  assert_int_equal (slow.delivered + slow.dropped, 302);
  assert_int_equal (fast.delivered + fast.dropped, 302);
  tokens = logged_tokens (log, "slow");
  check_kept_tokens (policy, tokens);
  g_clear_pointer (&tokens, g_array_unref);
  /* The async handler, too: the main loop does not run while the burst
   * is emitted from it. */
  tokens = logged_tokens (log, "fast");
  check_kept_tokens (policy, tokens);
  if (expect_drops)
    assert_true (slow.dropped > 0);
  else
    {
      assert_int_equal (slow.dropped, 0);
      assert_int_equal (fast.dropped, 0);
    }
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

static void
test_on_full_block (void **state)
{
  run_on_full_test ("block", FALSE);
}

static void
test_on_full_drop_newest (void **state)
{
  run_on_full_test ("drop_newest", TRUE);
}

static void
test_on_full_drop_oldest (void **state)
{
  run_on_full_test ("drop_oldest", TRUE);
}

/* ------------------------------------------------------------------
 * Slots reused lap after lap. A token is made in the ring slot it goes
 * to, out of the event that slot held a lap before, when nobody else
 * holds that one: a handler keeping references to every third token,
 * the last 20 of them, on a 16-slot ring (so that some slots are reused
 * in place and some not) must find every one unchanged; short and long tokens
 * alternate (a long one has its own allocation), the handler has every
 * chunk built (cached in the event), and tokens of a second run come
 * between (an event of another run is not reused). Numbers go up and
 * times never back.
 * ---------------------------------------------------------------- */

#define LAP_TOKENS 3000

/* "TOKENS KEPT_CHANGED CHUNK_MISMATCHES SEQUENCE_VIOLATIONS TIME_VIOLATIONS" */
static void
assert_keeper_report (const char *path,
                      guint64     tokens)
{
  g_autofree char *text = NULL;
  guint64 counts[5] = { 0 };

  assert_true (g_file_get_contents (path, &text, NULL, NULL));
  assert_int_equal (sscanf (text, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                            " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &counts[0], &counts[1],
                            &counts[2], &counts[3], &counts[4]), 5);
  assert_int_equal (counts[0], tokens);
  assert_int_equal (counts[1], 0);   /* a kept event changed */
  assert_int_equal (counts[2], 0);   /* a chunk of another token */
  assert_int_equal (counts[3], 0);   /* numbers not going up */
  assert_int_equal (counts[4], 0);   /* times going back */
}

static void
test_reused_slots_keep_held_events (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *report = test_path ("keeper.txt");
  g_autofree char *long_token = g_strnfill (100, 'x');
  ChimeRuntime *runtime;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) llm = NULL;
  g_autoptr (ChimeRun) other = NULL;

  runtime = test_runtime_new (&error,
                              "[runtime]\nqueue_limit = 16\n"
                              "[handler keeper]\nplugin = token_keeper\nkeep = 20\nkeep_every = 3\nreport = %s\n",
                              report);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = start_chat (manager);
  other = start_chat (manager);
  for (guint i = 0; i < LAP_TOKENS; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u%s", i, i % 4 == 0 ? long_token : "");

      assert_true (chime_run_on_llm_new_token (i % 50 == 49 ? other : llm, token, NULL, &error));
      assert_null (error);
    }
  end_llm (llm);
  end_llm (other);
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&other, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
  assert_keeper_report (report, LAP_TOKENS);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_on_full_block),
    cmocka_unit_test (test_on_full_drop_newest),
    cmocka_unit_test (test_on_full_drop_oldest),
    cmocka_unit_test (test_reused_slots_keep_held_events),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
