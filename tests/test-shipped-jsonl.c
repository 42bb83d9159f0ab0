/* The jsonl plugin: one JSON line per event, in order, each written at
 * once (and fsync'ed if asked), truncating or appending, a path it cannot
 * open named in the error, and a file it cannot write to reported once
 * with the write's own reason.
 * Loaded as a real module from the build tree; every test emits through
 * the run managers, frees the runtime (so every instance has shut
 * down), then checks the output. */
#include "shipped-helpers.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------
 * jsonl
 * ---------------------------------------------------------------- */

static const char *
field (json_t     *object,
       const char *key)
{
  return json_string_value (json_object_get (object, key));
}

static void
test_jsonl_writes_every_event_in_order (void **state)
{
  static const char *const expected[] = {
    "chain_start", "chat_model_start", "llm_new_token", "llm_new_token", "llm_new_token",
    "llm_end", "chain_end",
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("events.jsonl");
  g_autoptr (json_t) usage = usage_metadata (8, 10, 0, 0);
  g_autoptr (GPtrArray) parsed = g_ptr_array_new_with_free_func ((GDestroyNotify) json_decref);
  json_t **events;
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;
  json_t *response_usage;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  run_with_usage (runtime, "model-a", usage);
  chime_runtime_unref (runtime);

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_ptr_array_add (parsed, parse_line (lines[i]));
      assert_string_equal (field (g_ptr_array_index (parsed, i), "event"), expected[i]);
    }
  events = (json_t **) parsed->pdata;
  /* The runs: a root chain and a chat model under it. */
  assert_string_equal (field (events[0], "name"), "Root");
  assert_true (json_is_null (json_object_get (events[0], "parent_run_id")));
  assert_string_equal (field (events[1], "name"), "FakeChat");
  assert_string_equal (field (events[1], "run_type"), "chat_model");
  assert_string_equal (field (events[1], "parent_run_id"), field (events[0], "run_id"));
  assert_string_equal (field (events[6], "run_id"), field (events[0], "run_id"));
  /* The payloads. */
  assert_string_equal (field (json_object_get (events[0], "inputs"), "input"), "hi");
  assert_string_equal (field (events[2], "token"), "Hello");
  assert_string_equal (field (events[3], "token"), " ");
  assert_string_equal (field (events[4], "token"), "world");
  response_usage = json_object_get (
    json_object_get (json_array_get (json_array_get (json_object_get (
      json_object_get (events[5], "response"), "generations"), 0), 0), "message"),
    "usage_metadata");
  assert_true (json_equal (response_usage, usage));
  assert_string_equal (field (json_object_get (events[6], "outputs"), "output"), "done");
}

/* After chain_end is handled, the file is complete before shutdown. */
static void
test_jsonl_flushes_at_run_boundaries (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("boundaries.jsonl");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_flush (runtime);
  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 7);
  chime_runtime_unref (runtime);
}

/* With fsync = true every line is on disk once handled, tokens too. */
static void
test_jsonl_fsync_writes_every_line (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("fsync.jsonl");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\nfsync = true\n", path);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "FakeChat", NULL, &error);
  assert_true (chime_run_on_llm_new_token (llm, "Hello", NULL, &error));
  assert_true (chime_run_on_llm_new_token (llm, "!", NULL, &error));
  chime_runtime_flush (runtime);
  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 3);
  assert_string_contains (lines[2], "\"token\":\"!\"");
  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

static void
test_jsonl_truncates_by_default (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("truncate.jsonl", "stale line\nanother\n");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_unref (runtime);

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 7);
  assert_int_equal (test_find_line (lines, "stale", 0), -1);
  assert_string_contains (lines[0], "\"event\":\"chain_start\"");
}

/* `chime check` starts every handler without running anything: that must
 * not wipe the last run's trace. */
static void
test_jsonl_starting_without_events_keeps_the_file (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("untouched.jsonl", "{\"last\":\"run\"}\n");
  g_autofree char *contents = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  chime_runtime_unref (runtime);

  assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  assert_string_equal (contents, "{\"last\":\"run\"}\n");
}

static void
test_jsonl_append_keeps_earlier_lines (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_write_file ("append.jsonl", "{\"earlier\":true}\n");
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  g_auto (GStrv) lines = NULL;

  for (guint i = 0; i < 2; i++)
    {
      ChimeRuntime *runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                                                "[handler trace]\nplugin = jsonl\npath = %s\n"
                                                "append = true\n", path);
      assert_null (error);
      run_conversation (runtime, hello_tokens, result);
      chime_runtime_unref (runtime);
    }

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 1 + 2 * 7);
  assert_string_equal (lines[0], "{\"earlier\":true}");
  assert_string_contains (lines[1], "\"event\":\"chain_start\"");
  assert_string_contains (lines[7], "\"event\":\"chain_end\"");
  assert_string_contains (lines[8], "\"event\":\"chain_start\"");
  for (guint i = 0; lines[i] != NULL; i++)
    json_decref (parse_line (lines[i]));
}

static void
test_jsonl_unwritable_path_names_it (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("no-such-folder/events.jsonl");
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (runtime);
  assert_true (g_error_matches (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN));
  assert_string_contains (error->message, "handler 'trace' (plugin 'jsonl'");
  assert_string_contains (error->message, path);
  assert_string_contains (error->message, g_strerror (ENOENT));
}

static void
test_jsonl_requires_path (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[handler trace]\nplugin = jsonl\n");
  assert_null (runtime);
  assert_string_contains (error->message, "missing required key 'path'");
}

/* Every line, tokens included, is in the file once its event is handled,
 * without a flush or a run boundary: a crash of another handler never
 * costs the lines before it. */
static void
test_jsonl_writes_each_line_at_once (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("at-once.jsonl");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (json_t) last = NULL;
  ChimeRuntime *runtime;

  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = %s\n", path);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "FakeChat", NULL, &error);
  assert_true (chime_run_on_llm_new_token (llm, "Hello", NULL, &error));
  assert_true (chime_run_on_llm_new_token (llm, " world", NULL, &error));
  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 3);
  last = parse_line (lines[2]);
  assert_string_equal (json_string_value (json_object_get (last, "token")), " world");
  assert_true (chime_run_on_llm_end (llm, NULL, &error));
  chime_runtime_unref (runtime);
}

/* /dev/full: the write's ENOSPC, not ftruncate()'s EINVAL on a device;
 * one failure for the whole run, not one per event, and the runtime
 * keeps its message. */
static void
test_jsonl_full_device_fails_once (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) result = llm_result ("Hello world", NULL, NULL);
  ChimeHandlerStats stats;
  ChimeRuntime *runtime;

  test_log_capture_start ();
  runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                              "[handler trace]\nplugin = jsonl\npath = /dev/full\n");
  assert_null (error);
  run_conversation (runtime, hello_tokens, result);
  chime_runtime_shutdown (runtime);
  assert_true (chime_runtime_get_handler_stats (runtime, "trace", &stats, sizeof stats));
  assert_int_equal (stats.delivered, 7);
  assert_int_equal (stats.failed, 1);
  assert_string_equal (chime_runtime_get_handler_failure (runtime, "trace"),
                       "cannot write /dev/full: No space left on device");
  assert_true (test_log_contains ("handler 'trace' (jsonl) failed on chain_start: "
                                  "cannot write /dev/full: No space left on device"));
  assert_null (chime_runtime_get_handler_failure (runtime, "nobody"));
  chime_runtime_unref (runtime);
  test_log_capture_stop ();
}

/* ------------------------------------------------------------------ */

#define DEDUPE_CONFIG \
  "[runtime]\ndelivery = awaited\n[handler trace]\nplugin = jsonl\npath = %s\nappend = true\ndedupe = true\n"

/* dedupe = true: an event given twice (the same object, or a copy
 * rebuilt from its transport form, as `chime consume` makes after a
 * redelivery) is written once, with its id; the ids of the lines already
 * in the file count (a restarted consumer appending to its file); and the
 * half-written line a killed writer left is cut off. */
static void
test_jsonl_dedupe_writes_each_event_once (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("dedupe.jsonl");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeEvent) start = NULL;
  g_autoptr (ChimeEvent) copy = NULL;
  g_autoptr (json_t) transport = NULL;
  g_auto (GStrv) lines = NULL;
  char id[CHIME_EVENT_ID_LEN];
  ChimeRuntime *runtime;
  ChimeEvent *text;
  ChimeRun *run;

  /* A writer died in the middle of this line. */
  assert_true (g_file_set_contents (path, "{\"event\":\"chain_st", -1, NULL));
  runtime = test_runtime_new (&error, DEDUPE_CONFIG, path);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  run = chime_callback_manager_prepare_chain_start (manager, NULL, NULL, "Root", NULL, &start);
  transport = chime_event_to_transport (start);
  copy = chime_event_from_transport (transport, &error);
  assert_null (error);
  assert_true (chime_runtime_replay (runtime, start, NULL));
  assert_true (chime_runtime_replay (runtime, start, NULL));
  assert_true (chime_runtime_replay (runtime, copy, NULL));
  text = chime_run_prepare_text (run, "hello");
  assert_true (chime_runtime_replay (runtime, text, NULL));
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  /* Another writer of the file, later: what the file has is known. */
  runtime = test_runtime_new (&error, DEDUPE_CONFIG, path);
  assert_null (error);
  assert_true (chime_runtime_replay (runtime, copy, NULL));
  assert_true (chime_runtime_replay (runtime, text, NULL));
  chime_runtime_unref (runtime);

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 2);
  {
    g_autoptr (json_t) first = parse_line (lines[0]);
    g_autoptr (json_t) second = parse_line (lines[1]);

    chime_event_get_id (start, id);
    assert_string_equal (field (first, "event"), "chain_start");
    assert_string_equal (field (first, "event_id"), id);
    assert_true (g_str_has_suffix (id, ":1"));
    chime_event_get_id (text, id);
    assert_string_equal (field (second, "event"), "text");
    assert_string_equal (field (second, "event_id"), id);
    assert_true (g_str_has_suffix (id, ":2"));
  }
  chime_event_unref (text);
  chime_run_unref (run);
}

/* A copy of @event, as `chime consume` would rebuild it, numbered
 * @sequence in its run. */
static ChimeEvent *
renumbered (ChimeEvent *event,
            gint64      sequence)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) transport = chime_event_to_transport (event);
  ChimeEvent *copy;

  json_object_set_new (transport, "sequence", json_integer (sequence));
  copy = chime_event_from_transport (transport, &error);
  assert_null (error);
  return copy;
}

/* Replays @event numbered @sequence into @runtime. */
static void
replay_numbered (ChimeRuntime *runtime,
                 ChimeEvent   *event,
                 gint64        sequence)
{
  g_autoptr (ChimeEvent) copy = renumbered (event, sequence);

  assert_true (chime_runtime_replay (runtime, copy, NULL));
}

/* dedupe keeps a run's ids as ranges of sequence numbers: events that
 * come back out of order, around gaps and inside ranges already joined,
 * are each written once. With dedupe_runs = 1 only the run seen last is
 * remembered: the bound on memory, which forgets an older run's ids. */
static void
test_jsonl_dedupe_remembers_ranges_of_a_bounded_number_of_runs (void **state)
{
  static const gint64 order[] = { 5, 3, 4, 3, 5, 1, 9, 2, 1, 4, 9 };
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("ranges.jsonl");
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeEvent) first = NULL;
  g_autoptr (ChimeEvent) second = NULL;
  g_auto (GStrv) lines = NULL;
  ChimeRuntime *runtime;
  ChimeRun *one, *two;

  runtime = test_runtime_new (&error, DEDUPE_CONFIG "dedupe_runs = 1\n", path);
  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  one = chime_callback_manager_prepare_chain_start (manager, NULL, NULL, "One", NULL, &first);
  two = chime_callback_manager_prepare_chain_start (manager, NULL, NULL, "Two", NULL, &second);
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    replay_numbered (runtime, first, order[i]);
  /* 1 to 5 and 9 are written; run Two's event makes run One the older. */
  replay_numbered (runtime, second, 1);
  replay_numbered (runtime, second, 1);
  replay_numbered (runtime, first, 3);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);

  lines = test_read_lines (path);
  assert_int_equal (g_strv_length (lines), 6 + 1 + 1);
  {
    g_autoptr (json_t) last = parse_line (lines[7]);

    assert_string_equal (field (last, "name"), "One");
    assert_true (g_str_has_suffix (field (last, "event_id"), ":3"));
  }
  chime_run_unref (one);
  chime_run_unref (two);
}

/* dedupe_runs must be a positive number, said with the handler's name. */
static void
test_jsonl_dedupe_runs_must_be_positive (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = test_path ("never.jsonl");
  ChimeRuntime *runtime = test_runtime_new (&error, DEDUPE_CONFIG "dedupe_runs = 0\n", path);

  assert_null (runtime);
  assert_non_null (error);
  assert_non_null (strstr (error->message, "key 'dedupe_runs' of [handler trace] is 0: give a number from 1 to"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_jsonl_writes_every_event_in_order),
    cmocka_unit_test (test_jsonl_flushes_at_run_boundaries),
    cmocka_unit_test (test_jsonl_fsync_writes_every_line),
    cmocka_unit_test (test_jsonl_truncates_by_default),
    cmocka_unit_test (test_jsonl_starting_without_events_keeps_the_file),
    cmocka_unit_test (test_jsonl_append_keeps_earlier_lines),
    cmocka_unit_test (test_jsonl_unwritable_path_names_it),
    cmocka_unit_test (test_jsonl_requires_path),
    cmocka_unit_test (test_jsonl_writes_each_line_at_once),
    cmocka_unit_test (test_jsonl_full_device_fails_once),
    cmocka_unit_test (test_jsonl_dedupe_writes_each_event_once),
    cmocka_unit_test (test_jsonl_dedupe_remembers_ranges_of_a_bounded_number_of_runs),
    cmocka_unit_test (test_jsonl_dedupe_runs_must_be_positive),
  };

  return shipped_run_tests (tests, G_N_ELEMENTS (tests));
}
