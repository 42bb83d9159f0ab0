/* `chime run --trace FILE.html`: the trace page, opened in a real browser
 * (headless Chromium, see browser-helpers.h). The tests run the installed
 * chime and plugin, then read the DOM the page's script built: one bar
 * per run, nested under its parent, a failed run marked, every root of a
 * batch on one page, a run's payloads shown when it is selected, no
 * JavaScript error, no API key anywhere in the file; and the live
 * plugin's page, following a run as it happens. */
#include "browser-helpers.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

/* "file://" and the absolute @path. */
static char *
file_url (const char *path,
          const char *fragment)
{
  g_autofree char *uri = g_filename_to_uri (path, NULL, NULL);

  assert_non_null (uri);
  return g_strconcat (uri, fragment, NULL);
}

/* The .row elements of @page, one per run, in tree order. */
static GPtrArray *
page_rows (BrowserPage *page)
{
  return dom_elements (page->dom, "row");
}

static int
row_depth (const char *row)
{
  g_autofree char *depth = dom_attribute (row, "data-depth");

  assert_non_null (depth);
  return atoi (depth);
}

/* Every row below depth 0 sits under the closest row above it that is one
 * level up, and that row is its parent: the tree is drawn as it is. */
static void
assert_rows_nested (GPtrArray *rows)
{
  for (guint i = 0; i < rows->len; i++)
    {
      const char *row = g_ptr_array_index (rows, i);
      g_autofree char *parent_id = dom_attribute (row, "data-parent-id");
      int depth = row_depth (row);
      guint above = i;

      if (depth == 0)
        continue;
      while (above > 0 && row_depth (g_ptr_array_index (rows, above - 1)) != depth - 1)
        above--;
      assert_true (above > 0);
      {
        g_autofree char *above_id = dom_attribute (g_ptr_array_index (rows, above - 1), "data-run-id");

        assert_string_equal (parent_id, above_id);
      }
    }
}

/* Runs the failing model (tests/examples/failing-model.ini: two tokens,
 * then an error) with --trace in a fresh folder @name; the page's path. */
static char *
trace_failing_run (const char *name)
{
  g_autofree char *dir = fresh_dir (name);
  g_autofree char *config = copy_test_config (dir, "failing-model.ini");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", config, "--trace", "run.html", NULL);

  assert_status (result, 1);
  return g_build_filename (dir, "run.html", NULL);
}

/* The failing model's run: four bars (the sequence, then prompt, model and
 * parser under it), the model and the sequence marked failed. */
static void
test_trace_page_marks_the_failed_run (void **state)
{
  g_autofree char *html = NULL;
  g_autofree char *url = NULL;
  g_autoptr (BrowserPage) page = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  static const char *const types[] = { "chain", "prompt", "chat_model", "parser" };
  static const int depths[] = { 0, 1, 1, 1 };

  skip_without_browser ();
  html = trace_failing_run ("trace-failed");
  url = file_url (html, "");
  page = browser_load (url);
  rows = page_rows (page);
  assert_int_equal (rows->len, 4);
  assert_string_contains (page->dom, "data-runs=\"4\"");
  for (guint i = 0; i < rows->len; i++)
    {
      g_autofree char *type = dom_attribute (g_ptr_array_index (rows, i), "data-run-type");

      assert_string_equal (type, types[i]);
      assert_int_equal (row_depth (g_ptr_array_index (rows, i)), depths[i]);
    }
  assert_rows_nested (rows);
  for (guint i = 0; i < rows->len; i++)
    {
      g_autofree char *status = dom_attribute (g_ptr_array_index (rows, i), "data-status");
      g_autofree char *type = dom_attribute (g_ptr_array_index (rows, i), "data-run-type");

      /* The prompt had finished before the model failed. */
      assert_string_equal (status, g_str_equal (type, "prompt") ? "ok" : "error");
    }
  assert_string_contains (page->dom, "failed");
}

/* A batch of three inputs: one page, three roots, each with its children
 * under it. */
static void
test_trace_page_shows_every_root_of_a_batch (void **state)
{
  g_autofree char *dir = fresh_dir ("trace-batch");
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  g_autofree char *inputs = write_in (dir, "topics.jsonl",
                                      "{\"topic\": \"otters\"}\n{\"topic\": \"atoms\"}\n{\"topic\": \"cats\"}\n");
  g_autofree char *html = g_build_filename (dir, "batch.html", NULL);
  g_autofree char *url = NULL;
  g_autoptr (RunResult) result = NULL;
  g_autoptr (BrowserPage) page = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  guint roots = 0;

  skip_without_browser ();
  result = run_chime_in (dir, "run", config, "--inputs", inputs, "--concurrency", "3", "--trace", "batch.html", NULL);
  assert_status (result, 0);
  url = file_url (html, "");
  page = browser_load (url);
  rows = page_rows (page);
  assert_int_equal (rows->len, 12);
  for (guint i = 0; i < rows->len; i++)
    if (row_depth (g_ptr_array_index (rows, i)) == 0)
      roots++;
  assert_int_equal (roots, 3);
  assert_string_contains (page->dom, "data-roots=\"3\"");
  assert_rows_nested (rows);
}

/* The id of the first row of @type in @page. */
static char *
row_id_of_type (BrowserPage *page,
                const char  *type)
{
  g_autoptr (GPtrArray) rows = page_rows (page);

  for (guint i = 0; i < rows->len; i++)
    {
      g_autofree char *row_type = dom_attribute (g_ptr_array_index (rows, i), "data-run-type");

      if (g_strcmp0 (row_type, type) == 0)
        return dom_attribute (g_ptr_array_index (rows, i), "data-run-id");
    }
  fail_msg ("no %s row", type);
  return NULL;
}

/* Selecting the failed model (as a click does; #run=ID links to it) shows
 * its inputs, its partial output and its error, and a sparkline of its
 * two tokens. */
static void
test_trace_page_shows_a_selected_run (void **state)
{
  g_autofree char *html = NULL;
  g_autofree char *url = NULL;
  g_autofree char *selected_url = NULL;
  g_autofree char *model_id = NULL;
  g_autofree char *fragment = NULL;
  g_autofree char *inputs = NULL;
  g_autofree char *error = NULL;
  g_autoptr (BrowserPage) page = NULL;
  g_autoptr (BrowserPage) selected = NULL;

  skip_without_browser ();
  html = trace_failing_run ("trace-detail");
  url = file_url (html, "");
  page = browser_load (url);
  model_id = row_id_of_type (page, "chat_model");
  fragment = g_strconcat ("#run=", model_id, NULL);
  selected_url = file_url (html, fragment);
  selected = browser_load (selected_url);
  assert_string_contains (selected->dom, "aria-selected=\"true\"");
  inputs = dom_section_text (selected->dom, "inputs");
  assert_non_null (inputs);
  assert_string_contains (inputs, "\"content\": \"Tell me a joke\"");
  error = dom_section_text (selected->dom, "error");
  assert_non_null (error);
  assert_string_contains (error, "failed after 2 chunks");
  assert_string_contains (selected->dom, "<polyline");
}

/* @html with @from replaced by @to (once), saved as @name beside it; the
 * copy's URL. */
static char *
altered_page (const char *html,
              const char *name,
              const char *from,
              const char *to)
{
  g_autofree char *dir = g_path_get_dirname (html);
  g_autofree char *text = read_text (html);
  g_autoptr (GString) altered = NULL;
  g_autofree char *path = NULL;

  assert_non_null (text);
  altered = g_string_new (text);
  assert_true (g_string_replace (altered, from, to, 1) == 1);
  path = write_in (dir, name, altered->str);
  return file_url (path, "");
}

/* The test fails on a page that throws: a page whose trace is not JSON
 * is caught, both by the page's own record and in the browser's log; so
 * is a console.error, which the log does not tell from console.log. */
static void
test_trace_page_errors_are_caught (void **state)
{
  g_autofree char *html = NULL;
  g_autofree char *broken_url = NULL;
  g_autofree char *noisy_url = NULL;
  g_autoptr (BrowserPage) broken = NULL;
  g_autoptr (BrowserPage) noisy = NULL;

  skip_without_browser ();
  html = trace_failing_run ("trace-broken");
  broken_url = altered_page (html, "broken.html", "{\"format\":", "{format:");
  broken = browser_load_page (broken_url);
  assert_true (broken->js_errors->len >= 2);
  assert_string_contains (g_ptr_array_index (broken->js_errors, 0), "the page recorded 1 error");
  assert_string_contains (g_ptr_array_index (broken->js_errors, 1), "Uncaught");
  assert_null (strstr (broken->dom, "data-rendered=\"true\""));

  noisy_url = altered_page (html, "noisy.html", "  load(trace);", "  console.error(\"noisy page\");\n  load(trace);");
  noisy = browser_load_page (noisy_url);
  assert_int_equal (noisy->js_errors->len, 1);
  assert_string_contains (g_ptr_array_index (noisy->js_errors, 0), "the last: noisy page");
}

/* A run on a real provider (the mock OpenAI server, with a key in the
 * environment): the key is nowhere in the page. */
static void
test_trace_page_holds_no_api_key (void **state)
{
  g_autofree char *dir = fresh_dir ("trace-secret");
  g_autofree char *config_text = g_strdup_printf (
    "[pipeline]\nprompt = Say hello\nmodel = gpt\n\n"
    "[model gpt]\nprovider = openai\nmodel = gpt-4o-mini\n"
    "base_url = http://127.0.0.1:%u/v1\nheaders = [\"X-Mock-Scenario: ok\"]\ntimeout_s = 5\n", mock_port ());
  g_autofree char *config = write_in (dir, "openai.ini", config_text);
  g_autofree char *html = g_build_filename (dir, "run.html", NULL);
  g_autofree char *text = NULL;
  const char *env[] = { "OPENAI_API_KEY=" MOCK_API_KEY, NULL };
  const char *args[] = { "run", config, "--trace", html, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, args);

  assert_status (result, 0);
  text = read_text (html);
  assert_non_null (text);
  assert_string_contains (text, "gpt-4o-mini");
  assert_no_secret ("the trace page", text);
}

/* --trace - is refused: the page is a file written at the end. */
static void
test_trace_needs_a_file (void **state)
{
  g_autoptr (RunResult) result = run_chime_in (NULL, "run", "--trace", "-", NULL);

  assert_status (result, 2);
  assert_string_contains (result->err, "--trace needs a FILE");
}

/* A folder that is not there is refused before the run, naming it. */
static void
test_trace_into_a_missing_folder_fails_first (void **state)
{
  g_autofree char *dir = fresh_dir ("trace-missing");
  g_autoptr (RunResult) result = run_chime_in (dir, "run", "--trace", "no-such-folder/run.html", NULL);

  assert_status (result, 3);
  assert_string_contains (result->err, "no-such-folder");
  assert_string_contains (result->err, "does not exist");
  assert_null (strstr (result->out, "run_id"));
}

/* Ctrl-C mid-stream: the page is still written, with what was seen —
 * the model's tokens so far, the model and the sequence failed. */
static void
test_trace_page_of_an_interrupted_run (void **state)
{
  g_autofree char *dir = fresh_dir ("trace-sigint");
  g_autofree char *config = copy_test_config (dir, "slow.ini");
  g_autofree char *jsonl = g_build_filename (dir, "trace.jsonl", NULL);
  g_autofree char *html = g_build_filename (dir, "run.html", NULL);
  g_autofree char *url = NULL;
  const char *args[] = { "run", config, "--trace", "run.html", NULL };
  RunOptions options = {
    .cwd = dir,
    .signal_number = SIGINT,
    .signal_after_ms = 500,
    /* The model has started streaming (slow.ini's jsonl handler says). */
    .signal_file = jsonl,
    .signal_needle = "\"chat_model_start\"",
  };
  g_autoptr (RunResult) result = NULL;
  g_autoptr (BrowserPage) page = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  g_autofree char *root_status = NULL;
  g_autofree char *model_id = NULL;

  skip_without_browser ();
  result = run_chime_argv (&options, args);
  assert_status (result, 130);
  url = file_url (html, "");
  page = browser_load (url);
  rows = page_rows (page);
  assert_true (rows->len >= 3);
  assert_rows_nested (rows);
  root_status = dom_attribute (g_ptr_array_index (rows, 0), "data-status");
  assert_string_equal (root_status, "error");
  model_id = row_id_of_type (page, "chat_model");
  assert_non_null (model_id);
  assert_string_contains (page->dom, " tokens");
}

/* A screenshot of the batch page, as docs/images/trace-page.png shows
 * it: a PNG of the requested size. */
static void
test_trace_page_screenshot (void **state)
{
  g_autofree char *dir = fresh_dir ("trace-shot");
  g_autofree char *config = copy_test_config (dir, "batch.ini");
  g_autofree char *inputs = write_in (dir, "topics.jsonl", "{\"topic\": \"otters\"}\n{\"topic\": \"atoms\"}\n");
  g_autofree char *html = g_build_filename (dir, "batch.html", NULL);
  g_autofree char *png = g_build_filename (dir, "trace.png", NULL);
  g_autofree char *url = NULL;
  g_autofree char *bytes = NULL;
  gsize length = 0;
  g_autoptr (RunResult) result = NULL;

  skip_without_browser ();
  result = run_chime_in (dir, "run", config, "--inputs", inputs, "--trace", "batch.html", NULL);
  assert_status (result, 0);
  url = file_url (html, "");
  browser_screenshot (url, png, 1000, 400);
  assert_true (g_file_get_contents (png, &bytes, &length, NULL));
  assert_true (length > 24);
  assert_memory_equal (bytes, "\x89PNG\r\n\x1a\n", 8);
  /* IHDR: the width and height, big-endian, at offsets 16 and 20. */
  assert_int_equal (GUINT32_FROM_BE (*(guint32 *) (bytes + 16)), 1000);
  assert_int_equal (GUINT32_FROM_BE (*(guint32 *) (bytes + 20)), 400);
}

/* The port the live view announced in the stderr at @err_path, waiting
 * for the message at most WAIT_S seconds (0 when chime ended first). */
static guint
wait_for_live_port (GSubprocess *chime,
                    const char  *err_path)
{
  static const char needle[] = "live view on http://127.0.0.1:";
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autofree char *err = read_text (err_path);
      const char *at = err != NULL ? strstr (err, needle) : NULL;

      if (at != NULL)
        return (guint) atoi (at + strlen (needle));
      g_usleep (20 * 1000);
    }
  return 0;
}

/* The live page, opened in the browser while the run goes on: it gets
 * its runs only from /events (GET / has none), so four nested bars, the
 * model's tokens and the stream's end prove the whole way. */
static void
test_live_page_follows_the_run (void **state)
{
  g_autofree char *dir = fresh_dir ("live");
  g_autofree char *config = copy_test_config (dir, "live.ini");
  g_autofree char *err_path = g_build_filename (dir, "stderr", NULL);
  g_autofree char *url = NULL;
  g_autofree char *model_id = NULL;
  const char *args[] = { "run", config, NULL };
  g_autoptr (GSubprocess) chime = NULL;
  g_autoptr (BrowserPage) page = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  g_autoptr (GError) error = NULL;
  guint port;

  skip_without_browser ();
  chime = start_chime (dir, args, err_path);
  port = wait_for_live_port (chime, err_path);
  if (port == 0)
    {
      g_autofree char *err = read_text (err_path);

      g_subprocess_force_exit (chime);
      fail_msg ("chime did not announce the live view:\n%s", err != NULL ? err : "");
    }
  url = g_strdup_printf ("http://127.0.0.1:%u/", port);
  page = browser_load (url);
  assert_true (g_subprocess_wait_check (chime, NULL, &error));
  rows = page_rows (page);
  assert_int_equal (rows->len, 4);
  assert_rows_nested (rows);
  assert_string_contains (page->dom, "data-live=\"ended\"");
  model_id = row_id_of_type (page, "chat_model");
  assert_non_null (model_id);
  assert_string_contains (page->dom, "20 tokens");
}

/* ------------------------------------------------------------------
 * The docs' commands and snippets, as written
 * ---------------------------------------------------------------- */

/* The text of the section of @doc (a path in the source tree) headed
 * @heading ("## Seeing a run"), up to the next heading of its level. */
static char *
doc_section (const char *doc,
             const char *heading)
{
  g_autofree char *text = read_source_file (doc);
  g_autofree char *marker = g_strconcat ("\n", heading, "\n", NULL);
  const char *start = strstr (text, marker);
  const char *end;

  if (start == NULL)
    fail_msg ("%s has no section \"%s\"", doc, heading);
  start += strlen (marker);
  end = strstr (start, "\n## ");
  return end != NULL ? g_strndup (start, end - start) : g_strdup (start);
}

/* The fenced blocks of @language in @text, in order. */
static GPtrArray *
fenced_blocks (const char *text,
               const char *language)
{
  GPtrArray *blocks = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *open = g_strdup_printf ("```%s\n", language);

  for (const char *at = strstr (text, open); at != NULL; at = strstr (at, open))
    {
      const char *end;

      at += strlen (open);
      end = strstr (at, "```");
      assert_non_null (end);
      g_ptr_array_add (blocks, g_strndup (at, end - at));
      at = end + 3;
    }
  return blocks;
}

/* Each `chime run` line of the README's "Seeing a run", run as written in
 * a folder with the examples, makes a page the browser shows without an
 * error: the one --trace names, or the one examples/trace.ini names. */
static void
test_readme_trace_commands_work (void **state)
{
  g_autofree char *section = doc_section ("README.md", "## Seeing a run");
  g_autoptr (GPtrArray) commands = fenced_blocks (section, "sh");
  g_autofree char *dir = fresh_dir ("readme-trace");
  g_autofree char *examples = g_build_filename (dir, "examples", NULL);
  g_auto (GStrv) lines = NULL;
  guint n_run = 0;

  skip_without_browser ();
  assert_int_equal (commands->len, 1);
  assert_int_equal (g_mkdir (examples, 0755), 0);
  for (const char *const *name = (const char *const[]) { "seed.ini", "trace.ini", NULL }; *name != NULL; name++)
    {
      g_autofree char *relative = g_build_filename ("examples", *name, NULL);
      g_autofree char *text = read_source_file (relative);

      g_free (write_in (examples, *name, text));
    }
  lines = split_lines (commands->pdata[0]);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *command = g_strdup (lines[i]);
      char *comment = strstr (command, "  #");
      g_auto (GStrv) argv = NULL;
      g_autoptr (RunResult) result = NULL;
      g_autofree char *page_path = NULL;
      g_autofree char *url = NULL;
      g_autoptr (BrowserPage) page = NULL;
      g_autoptr (GPtrArray) rows = NULL;
      RunOptions options = { .cwd = dir };

      if (comment != NULL)
        *comment = '\0';
      assert_true (g_shell_parse_argv (command, NULL, &argv, NULL));
      assert_string_equal (argv[0], "chime");
      assert_string_equal (argv[1], "run");
      for (guint a = 0; argv[a] != NULL; a++)
        if (g_str_equal (argv[a], "--trace") && argv[a + 1] != NULL)
          page_path = g_build_filename (dir, argv[a + 1], NULL);
      if (page_path == NULL)
        {
          /* The INI's own handler: the path its section names. */
          g_autofree char *ini = g_build_filename (dir, argv[2], NULL);
          g_autofree char *text = read_text (ini);
          g_autoptr (GRegex) regex = g_regex_new ("^path = (\\S+)$", G_REGEX_MULTILINE, 0, NULL);
          g_autoptr (GMatchInfo) match = NULL;

          assert_non_null (text);
          assert_true (g_regex_match (regex, text, 0, &match));
          page_path = g_match_info_fetch (match, 1);
          g_remove (page_path);
        }
      result = run_chime_argv (&options, (const char * const *) argv + 1);
      if (result->status != 0)
        fail_msg ("README: `%s` exited with %d\n%s", lines[i], result->status, result->err);
      url = file_url (page_path, "");
      page = browser_load (url);
      rows = page_rows (page);
      assert_true (rows->len >= 4);
      assert_rows_nested (rows);
      n_run++;
    }
  assert_int_equal (n_run, 2);
}

/* The INI snippets of README's "Seeing a run" and of plugins.md's
 * trace_html and live sections pass `chime check` beside a pipeline:
 * every key exists, every value is accepted, every handler starts. */
static void
test_trace_doc_snippets_pass_check (void **state)
{
  static const char *const sections[][2] = {
    { "README.md", "## Seeing a run" },
    { "docs/plugins.md", "## trace_html" },
    { "docs/plugins.md", "## live" },
  };
  g_autofree char *dir = fresh_dir ("doc-snippets");
  guint n_checked = 0;

  for (gsize s = 0; s < G_N_ELEMENTS (sections); s++)
    {
      g_autofree char *section = doc_section (sections[s][0], sections[s][1]);
      g_autoptr (GPtrArray) blocks = fenced_blocks (section, "ini");

      assert_true (blocks->len >= 1);
      for (guint b = 0; b < blocks->len; b++)
        {
          g_autofree char *text = g_strconcat ("[pipeline]\nprompt = Tell me a joke\nmodel = joker\n\n"
                                               "[model joker]\nprovider = fake\n\n", blocks->pdata[b], NULL);
          g_autofree char *config = write_in (dir, "snippet.ini", text);
          g_autoptr (RunResult) result = run_chime_in (dir, "check", config, NULL);

          if (result->status != 0)
            fail_msg ("%s, %s: the snippet fails `chime check` (%d):\n%s\n%s", sections[s][0], sections[s][1],
                      result->status, (const char *) blocks->pdata[b], result->err);
          n_checked++;
        }
    }
  assert_true (n_checked >= 3);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_trace_page_marks_the_failed_run),
    cmocka_unit_test (test_trace_page_shows_every_root_of_a_batch),
    cmocka_unit_test (test_trace_page_shows_a_selected_run),
    cmocka_unit_test (test_trace_page_errors_are_caught),
    cmocka_unit_test (test_trace_page_holds_no_api_key),
    cmocka_unit_test (test_trace_needs_a_file),
    cmocka_unit_test (test_trace_into_a_missing_folder_fails_first),
    cmocka_unit_test (test_trace_page_of_an_interrupted_run),
    cmocka_unit_test (test_trace_page_screenshot),
    cmocka_unit_test (test_live_page_follows_the_run),
    cmocka_unit_test (test_readme_trace_commands_work),
    cmocka_unit_test (test_trace_doc_snippets_pass_check),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
