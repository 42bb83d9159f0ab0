/* The usage handler as get_openai_callback() is used: how many model
 * requests there were and how many failed, and with a price table what
 * the tokens cost; a failed or cancelled run says so instead of "{}".
 * They run the installed chime (see runner-helpers.h). */
#include "runner-helpers.h"

#include <string.h>

#define USAGE_HANDLER "[handler usage]\nplugin = usage\n"

/* The fake model reports 4 input and 3 output tokens for "Why not?". */
static void
test_usage_cost_with_prices (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-prices");
  g_autofree char *prices = write_in (dir, "prices.json", "{\"fake\": {\"input\": 2.5, \"output\": 10}}\n");
  g_autofree char *config = write_why_not_config (dir, "usage.ini", USAGE_HANDLER "prices = prices.json\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-q", NULL);
  g_auto (GStrv) lines = NULL;

  assert_status (result, 0);
  lines = split_lines (result->err);
  assert_int_equal (g_strv_length (lines), 2);
  assert_true (g_str_has_prefix (lines[0], "usage: {\"fake\": {\"input_tokens\": 4") ||
               g_str_has_prefix (lines[0], "usage: {\"fake\":{\"input_tokens\":4"));
  /* 4 × 2.5 + 3 × 10 = 40 USD per million: $0.000040. */
  assert_string_equal (lines[1], "usage: 1 request, 0 failed, cost $0.000040");
  (void) prices;
}

/* A model without a price is named; a bad table fails the start. */
static void
test_usage_prices_problems (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-prices-bad");
  g_autofree char *other = write_in (dir, "other.json", "{\"gpt-4o\": {\"input\": 2.5, \"output\": 10}}\n");
  g_autofree char *bad = write_in (dir, "bad.json", "{\"fake\": {\"input\": \"cheap\"}}\n");
  g_autofree char *unpriced = write_why_not_config (dir, "unpriced.ini", USAGE_HANDLER "prices = other.json\n");
  g_autofree char *broken = write_why_not_config (dir, "broken.ini", USAGE_HANDLER "prices = bad.json\n");
  g_autoptr (RunResult) first = run_chime_in (dir, "run", unpriced, "-q", NULL);
  g_autoptr (RunResult) second = run_chime_in (dir, "check", broken, NULL);

  assert_status (first, 0);
  assert_string_contains (first->err, "usage: 1 request, 0 failed, cost $0.000000 (no price for 'fake')\n");
  assert_status (second, 3);
  assert_string_contains (second->err, "model 'fake' needs {\"input\": USD, \"output\": USD} per million tokens");
  (void) other;
  (void) bad;
}

/* A run whose model fails: no "{}", but the request and its failure. */
static void
test_usage_after_failed_run (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-failed");
  g_autofree char *config = write_in (dir, "failed.ini",
                                      "[pipeline]\nprompt = hi\nmodel = m\n\n"
                                      "[model m]\nprovider = fake\nchunks = [\"a\", \"b\"]\nfail_after = 1\n\n"
                                      USAGE_HANDLER);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, NULL);

  assert_status (result, 1);
  assert_null (strstr (result->err, "usage: {}"));
  assert_string_contains (result->err, "usage: no token usage reported (1 request, 1 failed)\n");
}

/* Usage reported and nothing failed, without prices: the one JSON line,
 * as before. */
static void
test_usage_plain_line (void **state)
{
  g_autofree char *dir = fresh_dir ("usage-plain");
  g_autofree char *config = write_why_not_config (dir, "plain.ini", USAGE_HANDLER);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "-q", NULL);
  g_auto (GStrv) lines = split_lines (result->err);

  assert_status (result, 0);
  assert_int_equal (g_strv_length (lines), 1);
  assert_true (g_str_has_prefix (lines[0], "usage: {"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_usage_cost_with_prices),
    cmocka_unit_test (test_usage_prices_problems),
    cmocka_unit_test (test_usage_after_failed_run),
    cmocka_unit_test (test_usage_plain_line),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
