/* Units: suggestions, run ids, the event clock, message rendering, lists,
 * event JSON. */
#include "test-helpers.h"

#include "events/event-private.h"
#include "events/event-clock.h"
#include "config/config-private.h"
#include "config/suggest.h"
#include "events/uuid.h"
#include "events/llm-result.h"
#include "dispatch/barrier.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string.h>

static void
test_suggest (void **state)
{
  static const char *const keys[] = { "threads", "delivery", "queue_limit", NULL };
  g_autofree char *close = chime_suggestion_suffix ("thread", keys, "keys");
  g_autofree char *far = chime_suggestion_suffix ("xyz", keys, "keys");

  assert_string_equal (chime_suggest ("thread", keys), "threads");
  assert_string_equal (chime_suggest ("delivry", keys), "delivery");
  assert_string_equal (chime_suggest ("QUEUE_LIMIT", keys), "queue_limit");
  assert_null (chime_suggest ("xyz", keys));
  assert_string_equal (close, "; did you mean 'threads'?");
  assert_string_equal (far, "; valid keys: threads, delivery, queue_limit");
}

static void
test_run_ids_are_uuid7_and_ordered (void **state)
{
  ChimeRunId previous, next;
  char text[CHIME_RUN_ID_STRING_LEN];
  g_autoptr (GRegex) shape = g_regex_new ("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                          "[0-9a-f]{12}$", 0, 0, NULL);

  chime_run_id_generate (&previous);
  for (guint i = 0; i < 10000; i++)
    {
      chime_run_id_generate (&next);
      /* Time-ordered: every id sorts after the one before. */
      assert_true (memcmp (previous.bytes, next.bytes, 16) < 0);
      previous = next;
    }
  chime_run_id_to_string (&next, text);
  assert_true (g_regex_match (shape, text, 0, NULL));
  assert_true (chime_run_id_equal (&next, &previous));
}

static void
test_buffer_string (void **state)
{
  g_autoptr (json_t) messages = test_messages ("system", "be brief", "human", "Hi, how are you?",
                                               "ai", "Good, how are you?", "tool", "42", NULL);
  g_autofree char *text = chime_messages_to_buffer_string (messages);
  g_autoptr (json_t) blocks = json_pack ("[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}]",
                                         "type", "human", "content",
                                         "type", "text", "text", "Hello ",
                                         "type", "text", "text", "there");
  g_autofree char *block_text = chime_messages_to_buffer_string (blocks);

  assert_string_equal (text, "System: be brief\nHuman: Hi, how are you?\nAI: Good, how are you?\nTool: 42");
  assert_string_equal (block_text, "Human: Hello there");
}

static void
test_list_splitting (void **state)
{
  g_auto (GStrv) a = chime_config_split_list ("llm, chain;agent  retry");
  g_auto (GStrv) b = chime_config_split_list ("");

  assert_int_equal (g_strv_length (a), 4);
  assert_string_equal (a[0], "llm");
  assert_string_equal (a[3], "retry");
  assert_int_equal (g_strv_length (b), 0);
}

static void
test_parse_bool (void **state)
{
  gboolean value;

  assert_true (chime_config_parse_bool ("Yes", &value) && value);
  assert_true (chime_config_parse_bool ("off", &value) && !value);
  assert_true (chime_config_parse_bool ("1", &value) && value);
  assert_false (chime_config_parse_bool ("maybe", &value));
}

static void
test_event_json (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log = test_path ("json-events.jsonl");
  ChimeRuntime *runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  const char *tags[] = { "demo", NULL };
  g_autoptr (json_t) metadata = json_pack ("{s:s}", "user", "ada");
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (ChimeRun) llm = NULL;
  ChimeEvent *event;
  g_autoptr (json_t) json = NULL;
  g_autoptr (GRegex) time_shape = g_regex_new ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z$",
                                               0, 0, NULL);

  assert_null (error);
  chime_callback_manager_add_tags (manager, tags, TRUE);
  chime_callback_manager_add_metadata (manager, metadata, TRUE);
  llm = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "FakeChat", NULL, &error);
  assert_non_null (llm);

  event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN,
                           (ChimeRunInfo *) chime_run_get_info (llm), "Why");
  json = chime_event_to_json (event);
  assert_string_equal (json_string_value (json_object_get (json, "event")), "llm_new_token");
  assert_string_equal (json_string_value (json_object_get (json, "token")), "Why");
  assert_string_equal (json_string_value (json_object_get (json, "run_type")), "chat_model");
  assert_string_equal (json_string_value (json_object_get (json, "name")), "FakeChat");
  assert_true (json_is_null (json_object_get (json, "parent_run_id")));
  assert_string_equal (json_string_value (json_array_get (json_object_get (json, "tags"), 0)), "demo");
  assert_string_equal (json_string_value (json_object_get (json_object_get (json, "metadata"), "user")),
                       "ada");
  assert_true (g_regex_match (time_shape, json_string_value (json_object_get (json, "time")), 0, NULL));
  assert_null (chime_event_get_prompts (event));
  chime_event_unref (event);

  g_clear_pointer (&llm, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

/* Strings that are not UTF-8 (from a plugin, a server, a file) are
 * written with U+FFFD, not left out of the event: jansson refuses them.
 * Found by tests/fuzz/fuzz-event-json. */
static void
test_event_json_not_utf8 (void **state)
{
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  const char *tags[] = { "d\xe9mo", NULL };
  g_autoptr (GError) failure = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "caf\xe9 closed");
  g_autoptr (ChimeRun) run = NULL;
  ChimeEvent *event;
  g_autoptr (json_t) json = NULL;
  g_autoptr (json_t) error_json = NULL;

  chime_callback_manager_add_tags (manager, tags, TRUE);
  run = chime_callback_manager_prepare_tool_start (manager, NULL, "input", NULL, "To\xc3", &event);
  json = chime_event_to_json (event);
  chime_event_unref (event);
  assert_string_equal (json_string_value (json_object_get (json, "name")), "To\xef\xbf\xbd");
  assert_string_equal (json_string_value (json_array_get (json_object_get (json, "tags"), 0)),
                       "d\xef\xbf\xbdmo");

  event = chime_run_prepare_tool_error (run, failure);
  error_json = chime_event_to_json (event);
  chime_event_unref (event);
  assert_string_equal (json_string_value (json_object_get (json_object_get (error_json, "error"), "message")),
                       "caf\xef\xbf\xbd closed");

  g_clear_pointer (&run, chime_run_unref);
  g_clear_pointer (&manager, chime_callback_manager_unref);
  chime_runtime_unref (runtime);
}

static void
test_event_type_names (void **state)
{
  ChimeEventType type;

  assert_string_equal (chime_event_type_to_string (CHIME_EVENT_CHAT_MODEL_START), "chat_model_start");
  assert_true (chime_event_type_from_string ("on_llm_new_token", &type));
  assert_int_equal (type, CHIME_EVENT_LLM_NEW_TOKEN);
  assert_true (chime_event_type_from_string ("custom_event", &type));
  assert_int_equal (type, CHIME_EVENT_CUSTOM_EVENT);
  assert_false (chime_event_type_from_string ("llm_token", &type));
  for (guint i = 0; i < CHIME_EVENT_N_TYPES; i++)
    {
      assert_true (chime_event_type_from_string (chime_event_type_to_string (i), &type));
      assert_int_equal (type, i);
    }
}

static void
test_fence_classes (void **state)
{
  assert_true (chime_event_type_is_fence (CHIME_EVENT_LLM_START));
  assert_true (chime_event_type_is_fence (CHIME_EVENT_CHAIN_ERROR));
  assert_false (chime_event_type_is_fence (CHIME_EVENT_LLM_NEW_TOKEN));
  assert_false (chime_event_type_is_fence (CHIME_EVENT_TEXT));
  assert_true (chime_event_type_is_error (CHIME_EVENT_TOOL_ERROR));
  assert_false (chime_event_type_is_error (CHIME_EVENT_TOOL_END));
}

/* The clock events are stamped with is g_get_monotonic_time()'s, to the
 * microsecond, and never goes back on a thread: checked over 20 ms, long
 * enough for it to calibrate (1 ms) and resynchronise (every 1 ms). */
static void
test_event_clock_follows_the_monotonic_clock (void **state)
{
  gint64 started = g_get_monotonic_time ();
  gint64 previous = chime_event_clock_now ();
  guint64 stamps = 0;

  assert_true (previous >= started);
  while (g_get_monotonic_time () - started < 20000)
    for (guint i = 0; i < 1000; i++)
      {
        gint64 before = g_get_monotonic_time ();
        gint64 now = chime_event_clock_now ();
        gint64 after = g_get_monotonic_time ();

        assert_true (now >= previous);
        /* A microsecond either way: the two round to µs separately. */
        assert_true (now >= before - 1);
        assert_true (now <= after + 1);
        previous = now;
        stamps++;
      }
  assert_true (stamps > 0);
}

/* The text of an LLMResult, as the generation's text and the message's
 * content: ASCII of every length around the word size (checked a word at
 * a time), UTF-8 kept as it is, and text that is not UTF-8 refused (no
 * result) as jansson refuses it. */
static void
test_llm_result_text (void **state)
{
  const char *texts[] = { "", "a", "1234567", "12345678", "123456789", "hello world, 16+",
                          "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93", "12345678\xf0\x9f\x99\x82" };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (json_t) result = chime_llm_result_build (texts[i], "run-x", NULL, NULL, NULL);
      json_t *generation = json_array_get (json_array_get (json_object_get (result, "generations"), 0), 0);

      assert_non_null (generation);
      assert_string_equal (json_string_value (json_object_get (generation, "text")), texts[i]);
      assert_string_equal (json_string_value (json_object_get (json_object_get (generation, "message"), "content")),
                           texts[i]);
    }
  assert_null (chime_llm_result_build ("12345678\xff", "run-x", NULL, NULL, NULL));
  assert_null (chime_llm_result_build ("\xc3", "run-x", NULL, NULL, NULL));
}

/* membarrier registration is done while libchime loads, before any
 * dispatcher: later, with GLib's threads running, it costs the kernel a
 * synchronize_rcu() (12 ms of every `chime run` before). This test runs
 * first, before anything made a dispatcher. */
static void
test_membarrier_registered_at_load (void **state)
{
  long commands = syscall (__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

  if (commands <= 0 || !(commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
    skip ();
  assert_true (chime_barrier_have_membarrier);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_membarrier_registered_at_load),
    cmocka_unit_test (test_suggest),
    cmocka_unit_test (test_run_ids_are_uuid7_and_ordered),
    cmocka_unit_test (test_event_clock_follows_the_monotonic_clock),
    cmocka_unit_test (test_buffer_string),
    cmocka_unit_test (test_list_splitting),
    cmocka_unit_test (test_parse_bool),
    cmocka_unit_test (test_event_json),
    cmocka_unit_test (test_event_json_not_utf8),
    cmocka_unit_test (test_llm_result_text),
    cmocka_unit_test (test_event_type_names),
    cmocka_unit_test (test_fence_classes),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
