/* The sequence's stream as a user sees it: `chime run --stream` prints
 * what chain.stream() yields, as it comes; the v2 stream keeps
 * LangChain's order whatever the delivery mode; and docs/events-stream.md
 * shows the real stream of the default pipeline, checked here against a
 * fresh run so that it cannot rot.
 * They run the installed chime (see runner-helpers.h). */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * --stream
 * ---------------------------------------------------------------- */

/* The text as it came, then a newline; no result line on stdout. */
static void
test_stream_prints_the_text (void **state)
{
  g_autofree char *dir = fresh_dir ("stream");
  g_autofree char *config = copy_test_config (dir, "events.ini");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--stream", NULL);

  assert_status (result, 0);
  assert_string_equal (result->out, SEED_OUTPUT "\n");
  assert_string_equal (result->err, "");
}

/* With --output the result still goes to the file. */
static void
test_stream_with_output (void **state)
{
  g_autofree char *dir = fresh_dir ("stream-output");
  g_autofree char *config = copy_test_config (dir, "events.ini");
  g_autofree char *output = g_build_filename (dir, "result.json", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--stream", "-o", output, NULL);
  g_autofree char *text = NULL;
  g_autoptr (json_t) json = NULL;

  assert_status (result, 0);
  assert_string_equal (result->out, SEED_OUTPUT "\n");
  text = read_text (output);
  json = json_loads (text, 0, NULL);
  assert_non_null (json);
  assert_string_equal (json_string_value (json_object_get (json, "output")), SEED_OUTPUT);
}

/* The json parser's stream: one line per value, the object growing. */
static void
test_stream_json_values (void **state)
{
  g_autofree char *dir = fresh_dir ("stream-json");
  g_autofree char *config = write_in (dir, "json.ini",
                                      "[pipeline]\nprompt = Tell me a joke\nmodel = m\nparser = json\n"
                                      "[model m]\nprovider = fake\n"
                                      "chunks = [\"{\\\"setup\\\": \\\"Why\", \"\\\", \\\"punchline\\\"\", "
                                      "\": \\\"atoms\\\"}\"]\n");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--stream", NULL);

  assert_status (result, 0);
  assert_string_equal (result->out, "{\"setup\":\"Why\"}\n{\"setup\":\"Why\",\"punchline\":\"atoms\"}\n");
}

/* A failing model: what streamed stays, its line ended; the error on
 * stderr, exit 1. */
static void
test_stream_on_failure (void **state)
{
  g_autofree char *dir = fresh_dir ("stream-failure");
  g_autofree char *config = copy_test_config (dir, "failing-model.ini");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--stream", NULL);

  assert_status (result, 1);
  assert_string_equal (result->out, "Why don't\n");
  assert_string_contains (result->err, "failed after 2 chunks");
}

static void
test_stream_usage_errors (void **state)
{
  g_autofree char *dir = fresh_dir ("stream-usage");
  g_autofree char *config = copy_test_config (dir, "events.ini");
  g_autofree char *inputs = write_in (dir, "inputs.jsonl", "{}\n");
  g_autoptr (RunResult) batch = run_chime_in (dir, "run", config, "--stream", "--inputs", inputs, NULL);
  g_autoptr (RunResult) both = run_chime_in (dir, "run", config, "--stream", "--events", "-", NULL);

  assert_status (batch, 2);
  assert_string_contains (batch->err, "--stream cannot be used with --inputs");
  assert_status (both, 2);
  assert_string_contains (both->err, "--stream and --events - would both write to stdout");
}

/* ------------------------------------------------------------------
 * The v2 order in every delivery mode
 * ---------------------------------------------------------------- */

/* Awaited delivery holds the model for every event, background for none:
 * the chunk's three events still go model, parser, sequence. */
static void
check_order_with_delivery (const char *delivery)
{
  g_autofree char *dir = fresh_dir (delivery);
  g_autofree char *text = read_source_file ("tests/examples/events.ini");
  g_autoptr (GString) changed = g_string_new (text);
  g_autofree char *setting = g_strdup_printf ("delivery = %s", delivery);
  g_autofree char *config = NULL;
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) events = NULL;
  g_autofree char *names = NULL;

  assert_int_equal (g_string_replace (changed, "delivery = fenced", setting, 1), 1);
  config = write_in (dir, "events.ini", changed->str);
  result = run_chime_in (dir, "run", config, "--events", events_path, NULL);
  assert_status (result, 0);
  events = read_json_lines (events_path);
  names = event_names (events);
  assert_string_equal (names, V2_SEED_ORDER);
}

static void
test_order_awaited (void **state)
{
  check_order_with_delivery ("awaited");
}

static void
test_order_background (void **state)
{
  check_order_with_delivery ("background");
}

/* ------------------------------------------------------------------
 * docs/events-stream.md: the real stream of the default pipeline
 * ---------------------------------------------------------------- */

#define DOC_PATH "docs/events-stream.md"
#define DOC_BEGIN "<!-- generated by tests/test-runner-stream.c: chime run --events FILE -->\n```json\n"
#define DOC_END "```\n<!-- end of the generated stream -->"

/* @text with every UUID replaced by a stable one, numbered in order of
 * first appearance (00000000-0000-7000-8000-000000000001, ...): the
 * stream of any run of the seed example then reads the same. */
static char *
stable_ids (const char *text)
{
  g_autoptr (GRegex) regex = g_regex_new ("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                                          0, 0, NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GMatchInfo) match = NULL;
  const char *rest = text;
  gint start, end;

  g_regex_match (regex, text, 0, &match);
  while (g_match_info_matches (match))
    {
      g_autofree char *id = g_match_info_fetch (match, 0);
      const char *stable = g_hash_table_lookup (seen, id);

      g_match_info_fetch_pos (match, 0, &start, &end);
      if (stable == NULL)
        {
          stable = g_strdup_printf ("00000000-0000-7000-8000-%012u", g_hash_table_size (seen) + 1);
          g_hash_table_insert (seen, g_strdup (id), (gpointer) stable);
        }
      g_string_append_len (out, rest, text + start - rest);
      g_string_append (out, stable);
      rest = text + end;
      g_match_info_next (match, NULL);
    }
  g_string_append (out, rest);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The doc's stream is a fresh run's, ids aside. CHIME_UPDATE_DOCS=1
 * writes the fresh one into the doc instead (then review the diff). */
static void
test_doc_shows_the_real_stream (void **state)
{
  g_autofree char *dir = fresh_dir ("doc-stream");
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (RunResult) result = run_chime_in (dir, "run", "--events", events_path, NULL);
  g_autofree char *doc = read_source_file (DOC_PATH);
  g_autofree char *raw = NULL;
  g_autofree char *fresh = NULL;
  const char *begin, *end;
  g_autofree char *shown = NULL;

  assert_status (result, 0);
  raw = read_text (events_path);
  assert_non_null (raw);
  fresh = stable_ids (raw);
  begin = strstr (doc, DOC_BEGIN);
  end = begin != NULL ? strstr (begin, DOC_END) : NULL;
  if (begin == NULL || end == NULL)
    fail_msg (DOC_PATH " has no generated stream block (" DOC_BEGIN "..." DOC_END ")");
  begin += strlen (DOC_BEGIN);
  shown = g_strndup (begin, end - begin);
  if (g_str_equal (shown, fresh))
    return;
  if (g_strcmp0 (g_getenv ("CHIME_UPDATE_DOCS"), "1") == 0)
    {
      g_autofree char *path = g_build_filename (SRCDIR, DOC_PATH, NULL);
      g_autofree char *updated = g_strdup_printf ("%.*s%s%s", (int) (begin - doc), doc, fresh, end);
      g_autoptr (GError) error = NULL;

      assert_true (g_file_set_contents (path, updated, -1, &error));
      print_message ("updated %s\n", path);
      return;
    }
  fail_msg (DOC_PATH " shows a stream that the default pipeline no longer makes; run\n"
            "  CHIME_UPDATE_DOCS=1 make check TESTS=tests/test-runner-stream\n"
            "and review the diff. The doc shows:\n%s\nA fresh run makes:\n%s", shown, fresh);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_stream_prints_the_text),
    cmocka_unit_test (test_stream_with_output),
    cmocka_unit_test (test_stream_json_values),
    cmocka_unit_test (test_stream_on_failure),
    cmocka_unit_test (test_stream_usage_errors),
    cmocka_unit_test (test_order_awaited),
    cmocka_unit_test (test_order_background),
    cmocka_unit_test (test_doc_shows_the_real_stream),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
