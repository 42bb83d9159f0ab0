/* Opening pages in a real browser for the tests of the trace page
 * (tests/test-runner-trace.c): headless Chromium, Debian's `chromium`
 * (autogen.sh installs it), run through run_argv() so that it has the
 * runner tests' timeout.
 *
 * A page is loaded with --dump-dom: what comes back is the DOM after the
 * page's script ran, which the tests read through the attributes the
 * page sets (data-runs on <body>, one .row element per run with
 * data-run-id, data-parent-id, data-depth, data-status). A JavaScript
 * error fails the test: the page records uncaught errors, rejections and
 * console.error calls on <html> (data-js-errors), and Chromium logs
 * uncaught exceptions on stderr (--enable-logging=stderr). */
#pragma once

#include "runner-helpers.h"

/* The browser, or NULL when none is installed ($CHIME_TEST_CHROMIUM,
 * else chromium or chromium-browser on PATH). */
const char *browser_path (void);

/* Skips the current test, saying why, when there is no browser. */
#define skip_without_browser()                                                      \
  do {                                                                              \
    if (browser_path () == NULL)                                                    \
      {                                                                             \
        print_message ("no chromium on PATH (autogen.sh installs Debian's "         \
                       "chromium); the browser test is skipped\n");                 \
        skip ();                                                                    \
      }                                                                             \
  } while (0)

typedef struct {
  char *dom;      /* the serialized DOM after the page's script ran */
  char *log;      /* the browser's stderr */
  /* The JavaScript errors seen: the page's own record, then the
   * browser's log lines (uncaught exceptions, console errors). */
  GPtrArray *js_errors;
} BrowserPage;

void browser_page_free (BrowserPage *page);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BrowserPage, browser_page_free)

/* Loads @url and returns its DOM, whatever errors it had. */
BrowserPage *browser_load_page (const char *url);

/* The same, failing the test on any JavaScript error. */
BrowserPage *browser_load (const char *url);

/* Saves a @width x @height screenshot of @url as the PNG @png. */
void browser_screenshot (const char *url,
                         const char *png,
                         guint       width,
                         guint       height);

/* The opening tags of the elements of @dom whose class list starts with
 * @class_name (class="NAME" or class="NAME ..."), in document order. */
GPtrArray *dom_elements (const char *dom,
                         const char *class_name);

/* The value of attribute @name in the opening tag @tag, or NULL. */
char *dom_attribute (const char *tag,
                     const char *name);

/* The text between the opening tag of the first element with
 * data-section="@section" and its closing tag, entities decoded, or NULL. */
char *dom_section_text (const char *dom,
                        const char *section);
