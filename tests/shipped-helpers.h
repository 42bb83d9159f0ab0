/* Helpers shared by the tests of the shipped plugins
 * (tests/test-shipped-*.c): capturing stdout or stderr, emitting runs
 * through the run managers, and comparing what the plugins wrote. */
#pragma once

#include "test-helpers.h"

/* Capturing stdout or stderr into the file @name of the test's folder. */
void capture_start (int         fd,
                    const char *name);

/* Restores the descriptor and returns what was written to it. */
char *capture_stop (void);

/* A failed assertion jumps out of the test: give the terminal back. */
int teardown_capture (void **state);

/* "Hello", " ", "world". */
extern const char *const hello_tokens[];

/* A UsageMetadata as LangChain's chat models report it. */
json_t *usage_metadata (int input,
                        int output,
                        int cache_read,
                        int reasoning);

/* An LLMResult with one ChatGeneration whose AI message carries @usage
 * (borrowed; NULL for none) and the model name @model (NULL for none). */
json_t *llm_result (const char *text,
                    const char *model,
                    json_t     *usage);

/* chain "Root" > chat model "FakeChat": chain_start, chat_model_start,
 * the tokens, llm_end with @result, chain_end. */
void run_conversation (ChimeRuntime       *runtime,
                       const char * const *tokens,
                       json_t             *result);

/* A run_conversation whose LLMResult reports @usage for @model. */
void run_with_usage (ChimeRuntime *runtime,
                     const char   *model,
                     json_t       *usage);

/* @actual is @expected (both shown escaped when not). */
void assert_text_equal (const char *actual,
                        const char *expected);

/* @text matches the multi-line regular expression @pattern. */
void assert_matches (const char *text,
                     const char *pattern);

/* One line of JSON (fails the test when it is not). */
json_t *parse_line (const char *line);

/* Runs @tests with the uninstalled shipped plugins (SHIPPED_PLUGIN_DIR)
 * and the test plugins on CHIME_PLUGIN_PATH. */
int shipped_run_tests (const struct CMUnitTest *tests,
                       gsize                    n_tests);
