/* Helpers shared by the cmocka tests. */
#pragma once

#include <chime/chime.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A fresh temporary folder for this test (removed at exit). */
const char *test_tmpdir (void);
/* Writes @text to @name in test_tmpdir() and returns the full path. */
char       *test_write_file (const char *name,
                             const char *text);
/* Writes an INI file from a printf format (in test_tmpdir()) and builds a
 * runtime from it. */
ChimeRuntime *test_runtime_new (GError    **error,
                                const char *format,
                                ...) G_GNUC_PRINTF (2, 3);
/* A path in test_tmpdir(). */
char       *test_path (const char *name);
/* Reads a JSON file (fails the test when it cannot). */
json_t     *test_read_json (const char *path);
/* The lines of a file, without the final empty one. */
char      **test_read_lines (const char *path);
/* Index of the first line containing @needle at or after @from, or -1. */
int         test_find_line (char * const *lines,
                            const char   *needle,
                            int           from);
/* Index of the last line containing @needle, or -1. */
int         test_find_last_line (char * const *lines,
                                 const char   *needle);

/* Captures warnings logged in the "chime" domain. */
void        test_log_capture_start (void);
/* TRUE when a captured message contains @needle. */
gboolean    test_log_contains (const char *needle);
/* A copy of the first captured message holding @needle, or NULL. */
char       *test_log_find (const char *needle);
void        test_log_capture_stop (void);

/* A JSON array of chat messages: [{"type": t1, "content": c1}, ...],
 * from (type, content) pairs ending with NULL. */
json_t     *test_messages (const char *type, ...) G_GNUC_NULL_TERMINATED;

/* Starts the mock LLM server at @server_path (tests/mock-llm-server) with
 * @args (NULL-terminated, may be NULL) and returns it once it has said
 * its port. The server never outlives the test. Fails the test when it
 * cannot start. */
GSubprocess *test_mock_server_start (const char         *server_path,
                                     const char * const *args,
                                     guint              *port);
/* Stops a server from test_mock_server_start() and clears *@server. */
void         test_mock_server_stop  (GSubprocess **server);

/* Runs @tests, or only those whose name contains $CHIME_TEST_FILTER. */
int         test_run_group (const struct CMUnitTest *tests,
                            gsize                    n_tests);
/* The same as the group @group_name, with @group_setup run before the
 * first test and @group_teardown after the last (either may be NULL). */
int         test_run_group_with_fixtures (const char              *group_name,
                                          const struct CMUnitTest *tests,
                                          gsize                    n_tests,
                                          CMFixtureFunction        group_setup,
                                          CMFixtureFunction        group_teardown);

/* Sets CHIME_PLUGIN_PATH to the test plugins (TEST_PLUGIN_DIR), then every
 * folder of @shipped_plugin_dir: the uninstalled shipped plugins live in
 * plugins/NAME/ of the build tree. */
void        test_set_plugin_path (const char *shipped_plugin_dir);

#define assert_string_contains(haystack, needle)                                  \
  do {                                                                             \
    const char *h_ = (haystack), *n_ = (needle);                                   \
    if (h_ == NULL || strstr (h_, n_) == NULL)                                     \
      fail_msg ("expected to find \"%s\" in:\n%s", n_, h_ ? h_ : "(null)");       \
  } while (0)

#define assert_string_not_contains(haystack, needle)                              \
  do {                                                                             \
    const char *h_ = (haystack), *n_ = (needle);                                   \
    if (h_ == NULL || strstr (h_, n_) != NULL)                                     \
      fail_msg ("did not expect \"%s\" in:\n%s", n_, h_ ? h_ : "(null)");        \
  } while (0)
