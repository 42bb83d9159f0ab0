/* Opening pages in headless Chromium; see browser-helpers.h. */
#include "browser-helpers.h"

#include <string.h>

const char *
browser_path (void)
{
  static char *path;
  static gboolean looked;

  if (!looked)
    {
      const char *chosen = g_getenv ("CHIME_TEST_CHROMIUM");

      looked = TRUE;
      if (chosen != NULL && chosen[0] != '\0')
        path = g_find_program_in_path (chosen);
      if (path == NULL)
        path = g_find_program_in_path ("chromium");
      if (path == NULL)
        path = g_find_program_in_path ("chromium-browser");
    }
  return path;
}

void
browser_page_free (BrowserPage *page)
{
  g_free (page->dom);
  g_free (page->log);
  g_ptr_array_unref (page->js_errors);
  g_free (page);
}

/* Runs the browser headless on @url with @action ("--dump-dom", ...), in
 * a profile of its own (no state between tests, nothing in $HOME). Root
 * (CI's containers) cannot use Chromium's sandbox: --no-sandbox. */
static RunResult *
run_browser (const char *url,
             const char *action,
             const char *window_size)
{
  g_autofree char *profile = fresh_dir ("browser-profile");
  g_autofree char *profile_arg = g_strdup_printf ("--user-data-dir=%s", profile);
  const char *argv[] = {
    browser_path (), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-extensions", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
    "--virtual-time-budget=3000", profile_arg, window_size, action, url, NULL,
  };
  RunOptions options = { 0 };

  assert_non_null (browser_path ());
  return run_argv (&options, argv);
}

/* The log lines of @log that report a JavaScript error: Chromium logs
 * console messages as `...:INFO:CONSOLE:LINE] "text", source: URL (LINE)`
 * whatever their level, so an uncaught exception is told by its text
 * ("Uncaught ..."); console.error calls the page records itself. */
static void
collect_log_errors (GPtrArray  *errors,
                    const char *log)
{
  g_auto (GStrv) lines = g_strsplit (log, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], "CONSOLE") != NULL && strstr (lines[i], "Uncaught") != NULL)
      g_ptr_array_add (errors, g_strdup (lines[i]));
}

BrowserPage *
browser_load_page (const char *url)
{
  g_autoptr (RunResult) result = run_browser (url, "--dump-dom", "--window-size=1280,800");
  BrowserPage *page = g_new0 (BrowserPage, 1);

  if (result->status != 0)
    fail_msg ("chromium --dump-dom %s: exit status %d\n%s", url, result->status, result->err);
  page->dom = g_steal_pointer (&result->out);
  page->log = g_steal_pointer (&result->err);
  page->js_errors = g_ptr_array_new_with_free_func (g_free);
  {
    const char *tag_start = strstr (page->dom, "<html");
    const char *tag_end = tag_start != NULL ? strchr (tag_start, '>') : NULL;
    g_autofree char *tag = tag_end != NULL ? g_strndup (tag_start, tag_end - tag_start + 1) : NULL;
    g_autofree char *count = tag != NULL ? dom_attribute (tag, "data-js-errors") : NULL;
    g_autofree char *message = tag != NULL ? dom_attribute (tag, "data-js-error") : NULL;

    if (count != NULL)
      g_ptr_array_add (page->js_errors, g_strdup_printf ("the page recorded %s error(s), the last: %s",
                                                         count, message != NULL ? message : "?"));
  }
  collect_log_errors (page->js_errors, page->log);
  return page;
}

BrowserPage *
browser_load (const char *url)
{
  BrowserPage *page = browser_load_page (url);

  if (page->js_errors->len > 0)
    fail_msg ("%s: JavaScript error: %s", url, (const char *) g_ptr_array_index (page->js_errors, 0));
  if (strstr (page->dom, "data-rendered=\"true\"") == NULL)
    fail_msg ("%s: the page's script did not finish rendering:\n%s", url, page->dom);
  return page;
}

void
browser_screenshot (const char *url,
                    const char *png,
                    guint       width,
                    guint       height)
{
  g_autofree char *action = g_strdup_printf ("--screenshot=%s", png);
  g_autofree char *size = g_strdup_printf ("--window-size=%u,%u", width, height);
  g_autoptr (RunResult) result = run_browser (url, action, size);

  if (result->status != 0 || !g_file_test (png, G_FILE_TEST_IS_REGULAR))
    fail_msg ("chromium --screenshot %s: exit status %d\n%s", url, result->status, result->err);
}

GPtrArray *
dom_elements (const char *dom,
              const char *class_name)
{
  GPtrArray *tags = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *pattern = g_strdup_printf ("<[a-z]+ class=\"%s[ \"][^>]*>", class_name);
  g_autoptr (GRegex) regex = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;

  g_regex_match (regex, dom, 0, &match);
  while (g_match_info_matches (match))
    {
      g_ptr_array_add (tags, g_match_info_fetch (match, 0));
      g_match_info_next (match, NULL);
    }
  return tags;
}

/* @text with the entities the DOM serializer writes decoded. */
static char *
decode_entities (const char *text)
{
  g_autoptr (GString) decoded = g_string_new (text);

  g_string_replace (decoded, "&lt;", "<", 0);
  g_string_replace (decoded, "&gt;", ">", 0);
  g_string_replace (decoded, "&quot;", "\"", 0);
  g_string_replace (decoded, "&nbsp;", " ", 0);
  g_string_replace (decoded, "&amp;", "&", 0);
  return g_string_free (g_steal_pointer (&decoded), FALSE);
}

/* The first group of @pattern's first match in @text, entities decoded,
 * or NULL. */
static char *
first_capture (const char *pattern,
               const char *text)
{
  g_autoptr (GRegex) regex = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *value = NULL;

  if (!g_regex_match (regex, text, 0, &match))
    return NULL;
  value = g_match_info_fetch (match, 1);
  return decode_entities (value);
}

char *
dom_attribute (const char *tag,
               const char *name)
{
  g_autofree char *pattern = g_strdup_printf (" %s=\"([^\"]*)\"", name);

  return first_capture (pattern, tag);
}

char *
dom_section_text (const char *dom,
                  const char *section)
{
  g_autofree char *pattern = g_strdup_printf ("data-section=\"%s\">([^<]*)</", section);

  return first_capture (pattern, dom);
}
