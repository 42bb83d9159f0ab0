/* The plugin ABI (2.2) as a host enforces it: which built plugins load,
 * which are refused and with what message, and how a plugin built with
 * fewer event slots than the host knows is called. Each test plugin is a
 * real shared object in tests/plugins, loaded with libltdl. */
#include "test-helpers.h"

#include <string.h>

/* The message a runtime with one handler of @plugin refuses with. */
static char *
refusal (const char *plugin)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[handler x]\nplugin = %s\n", plugin);

  if (runtime != NULL)
    fail_msg ("plugin %s was loaded; it must be refused", plugin);
  assert_true (g_error_matches (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID));
  return g_strdup (error->message);
}

/* A plugin built against chime 0.1 (ABI 1.0) is refused by its version,
 * with the file, the ABI found, the one expected and what to do. */
static void
test_abi_1_is_refused (void **state)
{
  g_autofree char *message = refusal ("abi_1");

  assert_string_contains (message, "/tests/plugins/.libs/abi_1.so");
  assert_string_contains (message, "was built for plugin ABI 1.0, but this chime provides ABI 2.2 "
                          "(it loads plugins built for 2.0 to 2.2)");
  assert_string_contains (message, "rebuild it against chime " CHIME_VERSION_STRING);
  assert_string_contains (message, "[handler x] of ");
}

static void
test_future_major_is_refused (void **state)
{
  g_autofree char *message = refusal ("bad_abi");

  assert_string_contains (message, "bad_abi.so was built for plugin ABI 99.0, but this chime provides ABI 2.2");
  assert_string_contains (message, "rebuild it against chime " CHIME_VERSION_STRING);
}

/* A newer minor may rely on what this host does not know. */
static void
test_newer_minor_is_refused (void **state)
{
  g_autofree char *message = refusal ("abi_newer_minor");
  g_autofree char *found = g_strdup_printf ("was built for plugin ABI %d.%d, newer than this chime's ABI %d.%d",
                                            CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR + 1,
                                            CHIME_PLUGIN_ABI_MAJOR, CHIME_PLUGIN_ABI_MINOR);

  assert_string_contains (message, "abi_newer_minor.so");
  assert_string_contains (message, found);
  assert_string_contains (message, "rebuild it against chime " CHIME_VERSION_STRING);
  assert_string_contains (message, "or use a newer chime");
}

/* A flag is defined by a minor: a descriptor of ABI 2.0 cannot have
 * CHIME_PLUGIN_WANTS_STREAM (2.1), so it was not built by these macros. */
static void
test_flag_newer_than_the_plugin_abi_is_refused (void **state)
{
  g_autofree char *message = refusal ("abi_old_flag");

  assert_string_contains (message, "abi_old_flag.so sets flags 0x2 in its descriptor, but plugin ABI 2.0, "
                          "which it was built for, defines only 0x1");
  assert_string_contains (message, "CHIME_PLUGIN_WANTS_STREAM needs ABI 2.1");
  assert_string_contains (message, "rebuild it against chime " CHIME_VERSION_STRING);
}

/* Tools came with 2.2, in a word 2.1 kept reserved. */
static void
test_tools_need_abi_2_2 (void **state)
{
  g_autofree char *message = refusal ("abi_old_tools");

  assert_string_contains (message, "abi_old_tools.so declares tools, which need plugin ABI 2.2, but was "
                          "built for 2.1");
}

/* A plugin with tools and no handler entry point loads, and a host reads
 * its tools in its own layout. */
static void
test_tool_plugin_loads (void **state)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) path = chime_plugin_get_search_path (NULL);
  const ChimePlugin *plugin = chime_plugin_load ("test_tools", (const char * const *) path, &error);
  const ChimeToolDescriptor *tools;

  assert_null (error);
  tools = chime_plugin_get_tools (plugin);
  assert_non_null (tools);
  assert_string_equal (tools[0].name, "count_words");
  assert_non_null (tools[0].invoke);
  assert_string_equal (tools[1].name, "later");
  assert_non_null (tools[1].invoke_async);
  assert_string_equal (tools[2].name, "broken");
  assert_null (tools[3].name);
}

static void
test_reserved_space_must_be_zero (void **state)
{
  g_autofree char *message = refusal ("abi_reserved");

  assert_string_contains (message, "abi_reserved.so has non-zero reserved fields in its descriptor (word 3)");
  assert_string_contains (message, "CHIME_SYNC_PLUGIN_DEFINE");
}

/* A plugin built for ABI 2.0 loads. The host reads only the event slots
 * it has: events beyond them are not implemented and go to the catch-all;
 * the poisoned entry points right after the plugin's last slot are never
 * called. Events within the slots but left NULL go to the catch-all too.
 * Without CHIME_PLUGIN_WANTS_STREAM (2.1), it never sees a stream chunk. */
static void
test_fewer_event_slots (void **state)
{
  g_autofree char *calls = test_path ("fewer-slots.txt");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n"
                                                       "[handler old]\nplugin = abi_fewer_slots\n"
                                                       "path = %s\n", calls);
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (json_t) inputs = json_object ();
  g_autoptr (json_t) retry = json_pack ("{s:i}", "attempt", 1);
  g_auto (GStrv) lines = NULL;
  ChimeHandlerStats stats;

  assert_null (error);
  manager = chime_runtime_new_callback_manager (runtime);
  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Chain", NULL, &error);
  assert_non_null (chain);
  assert_true (chime_run_on_text (chain, "hello", &error));
  assert_true (chime_run_on_retry (chain, retry, &error));
  assert_true (chime_run_on_custom_event (chain, "progress", NULL, &error));
  assert_true (chime_run_on_custom_event (chain, CHIME_STREAM_EVENT, NULL, &error));
  chime_runtime_flush (runtime);

  lines = test_read_lines (calls);
  assert_int_equal (g_strv_length (lines), 4);
  assert_string_equal (lines[0], "on_event chain_start");
  assert_string_equal (lines[1], "on_text text");
  assert_string_equal (lines[2], "on_event retry");
  assert_string_equal (lines[3], "on_event custom_event");
  assert_true (chime_runtime_get_handler_stats (runtime, "old", &stats, sizeof stats));
  assert_int_equal (stats.delivered, 4);
  assert_int_equal (stats.failed, 0);
}

/* A caller built against an older, shorter ChimeHandlerStats passes its
 * size and gets only the counters it knows: nothing is written past it. */
static void
test_stats_copied_with_their_size (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[handler r]\nplugin = recorder_sync\n");
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_object ();
  g_autoptr (ChimeRun) chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "C", NULL, &error);
  guint64 older[2] = { 0, 0 };
  guint64 guard = G_GUINT64_CONSTANT (0x5eed5eed5eed5eed);
  struct {
    guint64 counters[1];
    guint64 guard;
  } shorter = { { 0 }, G_GUINT64_CONSTANT (0x5eed5eed5eed5eed) };

  chime_runtime_flush (runtime);
  assert_true (chime_runtime_get_handler_stats (runtime, "r", (ChimeHandlerStats *) older, sizeof older));
  assert_int_equal (older[0], 1);   /* delivered */
  assert_int_equal (older[1], 0);   /* failed */
  assert_true (chime_runtime_get_handler_stats (runtime, "r", (ChimeHandlerStats *) &shorter,
                                                sizeof shorter.counters));
  assert_int_equal (shorter.counters[0], 1);
  assert_true (shorter.guard == guard);
  assert_false (chime_runtime_get_handler_stats (runtime, "nobody", (ChimeHandlerStats *) older,
                                                 sizeof older));
}

/* What `chime check` and `chime plugins` show, through the public API. */
static void
test_handler_and_plugin_info (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = test_runtime_new (&error, "[handler a]\nplugin = recorder_async\n"
                                                       "raise_error = true\n"
                                                       "[handler b]\nplugin = abi_fewer_slots\n"
                                                       "path = x.txt\nrun_inline = true\n"
                                                       "[handler c]\nplugin = recorder_stream\n");
  g_auto (GStrv) search_path = chime_plugin_get_search_path (NULL);
  const ChimeHandlerInfo *a, *b, *c;
  const ChimePlugin *plugin;
  const ChimeConfigKey *keys;

  assert_null (error);
  assert_int_equal (chime_runtime_get_n_handlers (runtime), 3);
  a = chime_runtime_get_handler_info (runtime, 0);
  b = chime_runtime_get_handler_info (runtime, 1);
  c = chime_runtime_get_handler_info (runtime, 2);
  assert_string_equal (a->name, "a");
  assert_string_equal (a->plugin_name, "recorder_async");
  assert_int_equal (a->mode, CHIME_HANDLER_ASYNC);
  assert_true (a->raise_error);
  assert_false (a->run_inline);
  assert_true (g_str_has_suffix (a->plugin_path, "/tests/plugins/.libs/recorder_async.so"));
  assert_string_equal (b->plugin_name, "abi_fewer_slots");
  assert_int_equal (b->mode, CHIME_HANDLER_SYNC);
  assert_true (b->run_inline);
  assert_int_equal (a->plugin_flags, CHIME_PLUGIN_FLAGS_NONE);
  assert_int_equal (c->plugin_flags, CHIME_PLUGIN_WANTS_STREAM);

  assert_string_equal (search_path[0], TEST_PLUGIN_DIR);
  plugin = chime_plugin_load ("abi_fewer_slots", (const char * const *) search_path, &error);
  assert_non_null (plugin);
  assert_string_equal (chime_plugin_get_name (plugin), "abi_fewer_slots");
  assert_string_equal (chime_plugin_get_path (plugin), b->plugin_path);
  assert_int_equal (chime_plugin_get_flags (plugin), CHIME_PLUGIN_FLAGS_NONE);
  keys = chime_plugin_get_config_keys (plugin);
  assert_string_equal (keys[0].key, "path");
  assert_int_equal (keys[0].type, CHIME_CONFIG_PATH);
  assert_true (keys[0].flags & CHIME_CONFIG_KEY_REQUIRED);
  assert_null (keys[1].key);
  assert_string_equal (chime_config_type_to_string (keys[0].type), "path");
}

/* Runs and managers hold their runtime: dropping the program's reference
 * first is safe, and the runtime shuts down (every event handled) when the
 * last run goes. */
static void
test_runs_hold_the_runtime (void **state)
{
  g_autofree char *calls = test_path ("held.txt");
  g_autoptr (GError) error = NULL;
  ChimeRuntime *runtime = test_runtime_new (&error, "[handler old]\nplugin = abi_fewer_slots\n"
                                            "path = %s\n", calls);
  ChimeCallbackManager *manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_object ();
  ChimeRun *chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "C", NULL, &error);
  g_auto (GStrv) lines = NULL;

  chime_runtime_unref (runtime);
  chime_callback_manager_unref (manager);
  assert_true (chime_run_get_runtime (chain) == runtime);
  assert_true (chime_run_on_text (chain, "still here", &error));
  chime_run_unref (chain);
  lines = test_read_lines (calls);
  assert_int_equal (g_strv_length (lines), 2);
  assert_string_equal (lines[1], "on_text text");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_abi_1_is_refused),
    cmocka_unit_test (test_future_major_is_refused),
    cmocka_unit_test (test_newer_minor_is_refused),
    cmocka_unit_test (test_flag_newer_than_the_plugin_abi_is_refused),
    cmocka_unit_test (test_reserved_space_must_be_zero),
    cmocka_unit_test (test_tools_need_abi_2_2),
    cmocka_unit_test (test_tool_plugin_loads),
    cmocka_unit_test (test_fewer_event_slots),
    cmocka_unit_test (test_stats_copied_with_their_size),
    cmocka_unit_test (test_handler_and_plugin_info),
    cmocka_unit_test (test_runs_hold_the_runtime),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
