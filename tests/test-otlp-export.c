/* The otlp plugin's batch span processor and exporter against a
 * collector that misbehaves, on a real loopback socket
 * (tests/otlp-receiver.c): 503 with Retry-After then 200 (the spans
 * arrive once), 400 (dropped, counted, never retried), a partial success
 * (not retried), a collector that is down (the run goes on; the spans are
 * counted as failed), and 10,000 runs through a queue of 2048 (the excess
 * dropped and counted, every batch within its bound), a collector that
 * never answers (the end of the run waits export_timeout_ms, then counts
 * what was not sent). What was exported,
 * dropped and failed is read from the handler's end-of-run report. */
#include "otlp-helpers.h"
#include "shipped-helpers.h"

#include <string.h>

/* A receiver, and the handler's log lines captured (its report). */
static int
setup (void **state)
{
  test_log_capture_start ();
  return otlp_setup_receiver (state);
}

static int
teardown (void **state)
{
  test_log_capture_stop ();
  return otlp_teardown_receiver (state);
}

static ChimeRuntime *
otlp_runtime (const char *section)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler otlp]\nplugin = otlp\n%s\n", section);

  if (runtime == NULL)
    fail_msg ("%s", error->message);
  return runtime;
}

/* @n_runs root chains with one chat model each: 2 spans a run. */
static void
emit_runs (ChimeRuntime *runtime,
           guint         n_runs)
{
  g_autoptr (json_t) result = llm_result ("Hello", "fake", NULL);

  for (guint i = 0; i < n_runs; i++)
    run_conversation (runtime, NULL, result);
}

/* The runs, then the shutdown, which ends the last exports. */
static void
run_otlp (const char *section,
          guint       n_runs)
{
  ChimeRuntime *runtime = otlp_runtime (section);

  emit_runs (runtime, n_runs);
  chime_runtime_unref (runtime);
}

#define assert_report(needle)                                               \
  do {                                                                      \
    if (!test_log_contains (needle))                                        \
      fail_msg ("the end-of-run report does not say \"%s\"", needle);       \
  } while (0)

static void
test_retry_after_then_ok (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *section = g_strdup_printf ("endpoint = %s\nschedule_delay_ms = 20",
                                              otlp_receiver_get_url (receiver));
  g_autoptr (json_t) requests = NULL;
  g_autoptr (json_t) spans = NULL;

  otlp_receiver_script (receiver, 503, "Retry-After: 1", "{\"code\":14,\"message\":\"busy\"}");
  run_otlp (section, 3);
  requests = otlp_receiver_requests (receiver);
  spans = otlp_receiver_spans (receiver);
  /* One refused attempt, one accepted: the spans arrive once. */
  assert_int_equal (json_array_size (requests), 2);
  assert_int_equal (json_integer_value (json_object_get (json_array_get (requests, 0), "status")), 503);
  assert_true (json_equal (json_object_get (json_array_get (requests, 0), "spans"),
                           json_object_get (json_array_get (requests, 1), "spans")));
  assert_int_equal (json_array_size (spans), 6);
  otlp_assert_run_tree (spans, 3);
  assert_report ("6 spans exported, 0 dropped");
  assert_report("0 failed");
}

static void
test_bad_request_is_not_retried (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *section = g_strdup_printf ("endpoint = %s\nschedule_delay_ms = 20",
                                              otlp_receiver_get_url (receiver));
  g_autoptr (json_t) requests = NULL;

  otlp_receiver_script (receiver, 400, NULL, "{\"code\":3,\"message\":\"bad span\"}");
  run_otlp (section, 2);
  requests = otlp_receiver_requests (receiver);
  assert_int_equal (json_array_size (requests), 1);
  assert_report ("0 spans exported, 0 dropped");
  assert_report ("4 failed: the collector at ");
  assert_report ("answered HTTP 400: {\"code\":3,\"message\":\"bad span\"}");
}

static void
test_partial_success_is_not_retried (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *section = g_strdup_printf ("endpoint = %s\nschedule_delay_ms = 20\nprotocol = http/json",
                                              otlp_receiver_get_url (receiver));
  g_autoptr (json_t) requests = NULL;

  otlp_receiver_script (receiver, 200, NULL,
                        "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"too old\"}}");
  run_otlp (section, 2);
  requests = otlp_receiver_requests (receiver);
  assert_int_equal (json_array_size (requests), 1);
  assert_report ("3 spans exported, 0 dropped");
  assert_report ("1 failed: the collector rejected 1 spans: too old");
}

/* Nothing listens: every attempt is refused, retried with backoff until
 * the export's timeout, then counted. The runs themselves are not held
 * up (they ended before the exports were given up). */
static void
test_collector_down (void **state)
{
  g_autofree char *url = otlp_closed_url ();
  g_autofree char *section = g_strdup_printf ("endpoint = %s\nschedule_delay_ms = 20\ntimeout = 1500", url);

  run_otlp (section, 2);
  assert_report ("0 spans exported, 0 dropped");
  assert_report ("4 failed: cannot reach ");
  assert_report ("gave up after");
}

/* A collector that never answers: the end of the run waits
 * export_timeout_ms for it, no longer, and says what was not sent. */
static void
test_shutdown_deadline (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *section = g_strdup_printf ("endpoint = %s\nschedule_delay_ms = 20\ntimeout = 60000\n"
                                              "export_timeout_ms = 300", otlp_receiver_get_url (receiver));
  gint64 started;

  otlp_receiver_hold (receiver, TRUE);
  started = g_get_monotonic_time ();
  run_otlp (section, 3);
  /* Not the 60 s the export itself may take. */
  assert_true (g_get_monotonic_time () - started < 30 * G_TIME_SPAN_SECOND);
  assert_report ("0 spans exported, 0 dropped");
  assert_report ("6 failed: the last exports did not end within export_timeout_ms 300");
}

/* 10,000 runs (20,000 spans) while the collector holds its first answer:
 * the queue never holds more than max_queue_size spans, so what does not
 * fit is dropped and counted, and every span is either exported or
 * counted. The runs do not wait for the collector. */
static void
test_full_queue_drops (void **state)
{
  OtlpReceiver *receiver = *state;
  g_autofree char *section = g_strdup_printf ("endpoint = %s\nmax_queue_size = 2048\nschedule_delay_ms = 60000\n"
                                              "timeout = 600000", otlp_receiver_get_url (receiver));
  ChimeRuntime *runtime = otlp_runtime (section);
  g_autoptr (json_t) requests = NULL;
  g_autoptr (json_t) spans = NULL;
  g_autofree char *report = NULL;
  json_t *request;
  size_t i;
  guint64 exported = 0, dropped = 0, failed = 0;

  otlp_receiver_hold (receiver, TRUE);
  emit_runs (runtime, 10000);
  otlp_receiver_hold (receiver, FALSE);
  chime_runtime_unref (runtime);
  requests = otlp_receiver_requests (receiver);
  spans = otlp_receiver_spans (receiver);
  json_array_foreach (requests, i, request)
    assert_true (json_array_size (json_object_get (request, "spans")) <= 512);
  report = test_log_find ("spans exported");
  assert_non_null (report);
  assert_int_equal (sscanf (strstr (report, "otlp): ") + 7,
                            "%" G_GUINT64_FORMAT " spans exported, %" G_GUINT64_FORMAT " dropped (queue full, "
                            "max_queue_size 2048), %" G_GUINT64_FORMAT " failed", &exported, &dropped, &failed), 3);
  assert_int_equal (exported, json_array_size (spans));
  assert_true (dropped > 0);
  assert_int_equal (failed, 0);
  assert_int_equal (exported + dropped, 20000);
  /* The batch held, and the 2048 spans the queue had room for. */
  assert_int_equal (exported, 512 + 2048);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_retry_after_then_ok, setup, teardown),
    cmocka_unit_test_setup_teardown (test_bad_request_is_not_retried, setup, teardown),
    cmocka_unit_test_setup_teardown (test_partial_success_is_not_retried, setup, teardown),
    cmocka_unit_test_setup_teardown (test_collector_down, setup, teardown),
    cmocka_unit_test_setup_teardown (test_shutdown_deadline, setup, teardown),
    cmocka_unit_test_setup_teardown (test_full_queue_drops, setup, teardown),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
