/* Streams that do not go well: slow ones handed on as they come, stalls
 * and timeouts, streams cut short or ending in an error event, a stream
 * held back by a slow handler, and runs cancelled at any point.
 * Whole pipelines from INI text against the mock LLM server, over real
 * sockets, for each provider (OpenAI and Anthropic). */
#include "provider-helpers.h"

#include "http/http-client.h"
#include "providers/model.h"
#include "providers/provider-model.h"
#include "providers/provider-stream-events.h"
#include "providers/provider-stream-private.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Broken streams                                                     */
/* ------------------------------------------------------------------ */

static void
test_slow_stream (void **state)
{
  Case *cases[2];

  for (guint i = 0; i < 2; i++)
    cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "slow", .arg = "120",
                                                     .model_extra = "timeout_s = 1\n" });
  run_cases (cases, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) tokens = trace_events (cases[i], "llm_new_token");
      g_autoptr (GDateTime) first = NULL;
      g_autoptr (GDateTime) last = NULL;

      assert_succeeded (cases[i]);
      assert_tokens (cases[i], providers[i]->tokens, g_strv_length ((char **) providers[i]->tokens));
      assert_fixture_result (cases[i]);
      assert_requests (cases[i], 1);
      /* The tokens were handed on as they came, not at the end. */
      first = g_date_time_new_from_iso8601 (json_string_value (json_object_get (json_array_get (tokens, 0),
                                                                                "time")), NULL);
      last = g_date_time_new_from_iso8601 (json_string_value (json_object_get (
                                             json_array_get (tokens, json_array_size (tokens) - 1), "time")),
                                           NULL);
      assert_true (g_date_time_difference (last, first) >= 200 * 1000);
      assert_true (cases[i]->elapsed >= 0.6);
      case_free (cases[i]);
    }
}

static void
test_stall_times_out (void **state)
{
  Case *cases[4];

  for (guint i = 0; i < 2; i++)
    {
      /* Two tokens, then silence: not retried, tokens went out. */
      cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "stall", .arg = providers[i]->two_tokens_arg,
                                                       .model_extra = "timeout_s = 0.5\n" });
      /* No response at all in time: retried, like the SDKs' timeouts. */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "delay", .arg = "1500",
                                                           .model_extra = "timeout_s = 0.4\nmax_retries = 1\n" });
    }
  run_cases (cases, 4);
  for (guint i = 0; i < 2; i++)
    {
      assert_failed_with (cases[i], "the stream stalled: nothing received for 0.5 s (timeout_s in [model m])");
      assert_tokens (cases[i], providers[i]->tokens, 2);
      assert_requests (cases[i], 1);
      assert_true (cases[i]->elapsed >= 0.5 && cases[i]->elapsed < 3.0);

      assert_failed_with (cases[2 + i], "within 0.4 s (timeout_s in [model m]) (gave up after 2 attempts)");
      assert_string_contains (cases[2 + i]->error->message, ": no response from http://127.0.0.1:");
      assert_requests (cases[2 + i], 2);
      case_free (cases[i]);
      case_free (cases[2 + i]);
    }
}

static void
test_truncated_streams (void **state)
{
  Case *cases[6];

  for (guint i = 0; i < 2; i++)
    {
      cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "disconnect",
                                                       .arg = providers[i]->two_tokens_arg });
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "no-terminator" });
      cases[4 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "error-event",
                                                           .arg = providers[i]->two_tokens_arg });
    }
  run_cases (cases, 6);
  for (guint i = 0; i < 2; i++)
    {
      const ProviderCase *p = providers[i];
      g_autofree char *truncated = g_strdup_printf ("%s: the stream ended before its terminator %s", p->name,
                                                    p->terminator);

      /* Cut mid-body after two tokens: an error, not retried. */
      assert_failed_with (cases[i], truncated);
      assert_tokens (cases[i], p->tokens, 2);
      assert_requests (cases[i], 1);
      /* Everything but the terminator: every token, still an error. */
      assert_failed_with (cases[2 + i], truncated);
      assert_tokens (cases[2 + i], p->tokens, g_strv_length ((char **) p->tokens));
      assert_requests (cases[2 + i], 1);
      /* The provider's own error event, quoted. */
      assert_failed_with (cases[4 + i], p->error_event);
      assert_tokens (cases[4 + i], p->tokens, 2);
      assert_requests (cases[4 + i], 1);
      for (guint j = 0; j < 3; j++)
        case_free (cases[2 * j + i]);
    }
}

/* jansson quotes the bytes near a syntax error as they came, and may cut
 * a UTF-8 sequence in two; the stream's error must still be UTF-8, as it
 * is printed and goes into llm_error events. Found by
 * tests/fuzz/fuzz-provider-stream. */
static void
test_bad_json_error_is_utf8 (void **state)
{
  static const char data[] = "{\"choices\":[{\"delta\":{\"content\":\"caf\\u0\xd6\x9a\"}}]}";
  g_autoptr (ChimeConfig) ini = chime_config_new_from_data ("[model m]\nprovider = openai\nmodel = gpt-x\n",
                                                            "m.ini", test_tmpdir (), NULL);
  g_autoptr (ChimeModel) model = chime_model_new (ini, "m");
  ChimeModelStream stream = { .ops = ((ChimeProviderModel *) model)->ops };
  ChimeSseEvent event = { "message", data, sizeof data - 1, "", -1 };

  assert_null (chime_provider_stream_parse (&stream, &event));
  assert_non_null (stream.stream_error);
  assert_string_contains (stream.stream_error->message,
                          "openai: the stream sent an event that is not a JSON object (invalid escape");
  assert_true (g_utf8_validate (stream.stream_error->message, -1, NULL));
  g_clear_error (&stream.stream_error);
}

/* ------------------------------------------------------------------ */
/* Back-pressure and cancellation                                     */
/* ------------------------------------------------------------------ */

#define HUGE_TOKENS 3000

static void
test_back_pressure (void **state)
{
  for (guint i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      g_autoptr (Case) c = case_new (providers[i], &(CaseSpec) { .scenario = "huge",
                                                                 .arg = G_STRINGIFY (HUGE_TOKENS),
                                                                 .runtime = "delivery = awaited",
                                                                 .recorder = "delay_us = 50" });
      g_auto (GStrv) tokens = NULL;
      ChimeHttpStats stats;

      chime_http_reset_stats ();
      run_case (c);
      assert_succeeded (c);
      tokens = recorded_tokens (c);
      assert_int_equal (g_strv_length (tokens), HUGE_TOKENS);
      assert_int_equal (strlen (json_string_value (json_object_get (c->result, "output"))), 4 * HUGE_TOKENS);
      chime_http_get_stats (&stats);
      /* Each awaited token held the transfer: curl stopped reading, and
       * no more than one write callback's worth waited on our side. */
      if (stats.pauses < 100)
        fail_msg ("%s: the transfer was paused only %" G_GUINT64_FORMAT " times", c->label, stats.pauses);
      assert_true (stats.max_pending <= 64 * 1024);
    }
}

static void
test_cancel (void **state)
{
  Case *cases[6];
  ChimeHttpStats stats;

  for (guint i = 0; i < 2; i++)
    {
      /* While the stream waits for bytes. */
      cases[i] = case_new (providers[i], &(CaseSpec) { .scenario = "stall", .arg = "1",
                                                       .model_extra = "timeout_s = 30\n" });
      /* During the backoff before a retry. */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "status", .arg = "500",
                                                           .model_extra = "max_retries = 5\n" });
      /* While paused by a slow handler. */
      cases[4 + i] = case_new (providers[i], &(CaseSpec) { .scenario = "huge", .arg = "100000",
                                                           .runtime = "delivery = awaited",
                                                           .recorder = "delay_us = 200" });
    }
  for (guint i = 0; i < 6; i++)
    cases[i]->cancel_after_ms = 250;
  run_cases (cases, 6);
  for (guint i = 0; i < 6; i++)
    {
      if (!g_error_matches (cases[i]->error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_CANCELLED))
        fail_msg ("%s: %s", cases[i]->label, cases[i]->error ? cases[i]->error->message : "succeeded");
      assert_true (cases[i]->elapsed < 2.0);
      assert_int_equal (count_events (cases[i], "llm_error"), 1);
      /* The backoff was cut short: one request, one retry announced. */
      if (i / 2 == 1)
        assert_int_equal (count_requests (cases[i]->mock_key), 1);
      case_free (cases[i]);
    }
  /* Every transfer ended. */
  chime_http_get_stats (&stats);
  assert_int_equal (stats.active, 0);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_slow_stream),
    cmocka_unit_test (test_stall_times_out),
    cmocka_unit_test (test_truncated_streams),
    cmocka_unit_test (test_bad_json_error_is_utf8),
    cmocka_unit_test (test_back_pressure),
    cmocka_unit_test (test_cancel),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
