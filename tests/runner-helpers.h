/* Helpers shared by the integration tests of the `chime` runner
 * (tests/test-runner-*.c): runner-helpers.c runs the installed binary
 * (and the mock LLM server), runner-output.c reads what it wrote.
 *
 * `make check` first installs the tree into a test-local DESTDIR
 * (tests/runner.inc); the tests run that installed binary, which finds
 * its plugins in ../lib/chime/plugins next to itself, with
 * LD_LIBRARY_PATH pointing at the installed library and without
 * CHIME_PLUGIN_PATH. They assert what a user sees: output, exit codes,
 * the result JSON, the files handlers write.
 *
 * Every subprocess runs with a timeout (RUN_TIMEOUT_S): a hang kills it
 * and fails the test instead of blocking CI. Set CHIME_TEST_KEEP=1 to
 * keep the temporary folder, CHIME_TEST_FILTER to run some tests only. */
#pragma once

#include "test-helpers.h"

#include <gio/gio.h>

#ifndef INSTALL_ROOT
#error "INSTALL_ROOT, BINDIR, LIBDIR, PKGCONFIGDIR, INCLUDEDIR, PREFIX and SRCDIR come from tests/runner.inc"
#endif
#ifndef MOCK_SERVER_PATH
#error "MOCK_SERVER_PATH and FIXTURE_DIR come from tests/runner.inc"
#endif

/* The seed example's chunks (examples/seed.ini). */
extern const char *const seed_chunks[];
#define SEED_OUTPUT "Why don't scientists trust atoms?\n\nBecause they make up everything!"
#define SEED_MODEL "fake-claude-3-sonnet"
#define TOKEN_PREFIX "Sync handler being called in a `thread_pool_executor`: token: "
/* The astream_events v2 order of a pipeline run on the seed's five
 * chunks: the parser starts before the first chunk, each chunk goes
 * model, parser, sequence (as LangChain's). */
#define V2_SEED_CHUNK "on_chat_model_stream on_parser_stream on_chain_stream "
#define V2_SEED_ORDER                                                                      \
  "on_chain_start on_prompt_start on_prompt_end on_chat_model_start on_parser_start "     \
  V2_SEED_CHUNK V2_SEED_CHUNK V2_SEED_CHUNK V2_SEED_CHUNK V2_SEED_CHUNK                    \
  "on_chat_model_end on_parser_end on_chain_end"

/* ------------------------------------------------------------------
 * Paths and folders
 * ---------------------------------------------------------------- */

/* @dir (BINDIR, LIBDIR, ...) and @rest in the install tree. */
char *installed (const char *dir,
                 const char *rest);

/* The installed chime. */
char *chime_binary (void);

/* A fresh folder in the test's temporary folder. */
char *fresh_dir (const char *name);

/* The contents of @path, or NULL. */
char *read_text (const char *path);

/* The contents of @relative in the source tree (fails the test when
 * it cannot). */
char *read_source_file (const char *relative);

/* Writes @text to @dir/@name and returns that path. */
char *write_in (const char *dir,
                const char *name,
                const char *text);

/* Copies the test configuration tests/examples/NAME into @dir, so that
 * the relative paths it names land in @dir. */
char *copy_test_config (const char *dir,
                        const char *name);

/* A pipeline of the fake model answering "Why not?" in three tokens
 * ("Why", " not", "?"), then @handlers (INI text), written as @dir/@name;
 * returns its path. */
char *write_why_not_config (const char *dir,
                            const char *name,
                            const char *handlers);

/* ------------------------------------------------------------------
 * Running the installed chime
 * ---------------------------------------------------------------- */

typedef struct {
  int    status;   /* the exit status, or 128+N when killed by signal N */
  char  *out;
  char  *err;
  /* With signals: how long the process took to end after the last one. */
  gint64 exit_after_signal_us;
} RunResult;

void run_result_free (RunResult *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RunResult, run_result_free)

typedef struct {
  const char         *cwd;          /* NULL: a fresh folder */
  /* Extra "KEY=VALUE" settings; a bare "KEY" unsets KEY. */
  const char * const *env;
  int                 signal_number;
  guint               signal_after_ms;
  /* With a signal: wait also until this file (NULL: the process's
   * stdout) contains this text (the run is under way), checking every
   * 20 ms. */
  const char         *signal_file;
  const char         *signal_needle;
  /* Send the signal a second time, this long after the first (0: don't).
   * The process must still be running then. */
  guint               second_signal_after_ms;
  /* With a signal: wait first until the process catches it (its handler
   * is installed, as /proc/PID/status says), and count signal_after_ms
   * from then, checking every millisecond. */
  gboolean            signal_once_caught;
  /* Limit the process's address space to this many MiB (RLIMIT_AS), so
   * that a read without a bound fails the test instead of filling the
   * machine's memory (0: no limit; ignored under AddressSanitizer, which
   * reserves far more address space than it uses). */
  guint               memory_limit_mb;
} RunOptions;

/* Whether this build runs under AddressSanitizer or ThreadSanitizer, which
 * reserve far more address space than they use: no address-space limit
 * (memory_limit_mb, RunOptions.memory_limit_mb) holds there. */
gboolean runner_under_sanitizer (void);

/* A limit well above what chime needs, far below an unbounded read. */
#define RUN_MEMORY_LIMIT_MB 512

/* Runs @argv (the program first), stdout and stderr each into its own
 * file, and waits at most RUN_TIMEOUT_S. */
RunResult *run_argv (const RunOptions   *options,
                     const char * const *argv);

/* Runs the installed chime with @args (after the program name). */
RunResult *run_chime_argv (const RunOptions   *options,
                           const char * const *args);

/* Starts the installed chime with @args in @cwd, its stdout discarded
 * and its stderr into @err_path, and returns at once: for a test that
 * talks to chime while it runs. The caller waits for it (and kills it
 * when the test fails first). */
GSubprocess *start_chime (const char         *cwd,
                          const char * const *args,
                          const char         *err_path);

/* Runs the installed chime with @args (a shell command line's words after
 * "chime", quoted as needed) on a pseudo-terminal (util-linux's script),
 * stdout and stderr both on it, with @env (as RunOptions.env): what the
 * terminal got, in out. */
RunResult *run_chime_on_terminal (const char         *cwd,
                                  const char         *args,
                                  const char * const *env);

RunResult *run_chime_in (const char *cwd,
                         const char *first,
                         ...) G_GNUC_NULL_TERMINATED;

/* Whether the dynamic linker opened the shared object @name (a prefix of
 * its file name) in a run with LD_DEBUG=files in its environment, which
 * lists each as "file=NAME [0];  needed by" or "...dynamically loaded by". */
gboolean run_opened (const RunResult *result,
                     const char      *name);

#define assert_status(result, expected)                                              \
  do {                                                                                \
    if ((result)->status != (expected))                                               \
      fail_msg ("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s",              \
                (result)->status, (expected), (result)->out, (result)->err);          \
  } while (0)

/* ------------------------------------------------------------------
 * Reading what chime wrote
 * ---------------------------------------------------------------- */

/* The lines of @text, without the empty string after a final newline. */
char **split_lines (const char *text);

/* The result JSON at the end of stdout: the longest tail that is one JSON
 * object (handlers may have printed anything before it, even without a
 * final newline). NULL when there is none. */
json_t *find_result (const char *out);

/* The lines of a JSON Lines file (or text), each parsed; fails the test
 * on a line that is not JSON. */
json_t *parse_json_lines (const char *text,
                          const char *what);

/* The same from the file @path (fails the test when it is missing). */
json_t *read_json_lines (const char *path);

/* The "event" members of @events joined by spaces. */
char *event_names (json_t *events);

/* How many of @events are @name events. */
guint count_events (json_t     *events,
                    const char *name);

/* TRUE when the JSON array of strings @array holds @value. */
gboolean strv_json_contains (json_t     *array,
                             const char *value);

/* The message of the result's first generation. */
json_t *result_message (json_t *result);

/* The lines of the first ```@lang block of @text after the text @after
 * that holds @needle (fails the test when there is none): a doc's
 * snippet, to run as written. */
char **doc_block (const char *text,
                  const char *after,
                  const char *lang,
                  const char *needle);

/* @text with every @from replaced by @to; fails the test when @text has
 * no @from, so that a changed template cannot go unnoticed. */
char *replace_all (const char *text,
                   const char *from,
                   const char *to);

/* ------------------------------------------------------------------
 * Real providers, on the mock LLM server (tests/mock-llm-server.c)
 *
 * The server is started on first use and serves every test; each run
 * names its own scenario (X-Mock-Scenario) and a key (X-Mock-Key) by
 * which its requests are counted in the server's log.
 * ---------------------------------------------------------------- */

/* The API key the runs get: it must reach the server and nothing else. */
#define MOCK_API_KEY "sk-test-SECRET-5e1f0c"

/* The port of the mock server, started on the first call. */
guint mock_port (void);

/* How many requests the server logged with X-Mock-Key @key. */
guint mock_count_requests (const char *key);

/* The requests the server logged with X-Mock-Key @key, in arrival order:
 * objects with "seq", "method", "path", "headers" and "body" (text). */
json_t *mock_requests (const char *key);

/* @text, the example examples/@file_name, with its base_url's scheme,
 * host and port replaced by the mock server's (the path stays), so that
 * it runs with no network; @headers ("Name: value; ...", or NULL) are
 * added to its model's request headers. */
char *example_on_mock (const char *text,
                       const char *file_name,
                       const char *headers);

/* Fails the test when @text (@what) holds the API key. */
void assert_no_secret (const char *what,
                       const char *text);

/* ------------------------------------------------------------------
 * The seed example
 * ---------------------------------------------------------------- */

/* What the seed example prints, line by line, before its result. */
char **seed_expected_lines (void);

/* @result is the seed example's result JSON. */
void assert_seed_result (json_t *result);

/* A GCompareFunc and qsort() order of strings by strcmp(). */
int compare_strings (gconstpointer a,
                     gconstpointer b);

/* ------------------------------------------------------------------ */

/* Runs @tests (those selected by $CHIME_TEST_FILTER), once the installed
 * chime is found, and stops the mock server after the last. */
int runner_run_tests (const struct CMUnitTest *tests,
                      gsize                    n_tests);
