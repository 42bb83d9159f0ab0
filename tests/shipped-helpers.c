/* Helpers shared by the tests of the shipped plugins: see
 * shipped-helpers.h. */
#include "shipped-helpers.h"

#include <fcntl.h>
#include <unistd.h>

/* ------------------------------------------------------------------
 * Capturing stdout or stderr into a file
 * ---------------------------------------------------------------- */

typedef struct {
  int   fd;      /* the descriptor being captured, -1 when none */
  int   saved;   /* a duplicate of the original, restored at the end */
  char *path;
} Capture;

static Capture capture = { -1, -1, NULL };

void
capture_start (int         fd,
               const char *name)
{
  int file;

  assert_int_equal (capture.fd, -1);
  /* Whatever stdio holds belongs to the real descriptor. */
  fflush (stdout);
  fflush (stderr);
  capture.path = test_path (name);
  file = open (capture.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true (file >= 0);
  capture.saved = dup (fd);
  assert_true (capture.saved >= 0);
  assert_true (dup2 (file, fd) >= 0);
  close (file);
  capture.fd = fd;
}

char *
capture_stop (void)
{
  char *text = NULL;

  if (capture.fd < 0)
    return NULL;
  fflush (stdout);
  fflush (stderr);
  dup2 (capture.saved, capture.fd);
  close (capture.saved);
  capture.fd = capture.saved = -1;
  g_file_get_contents (capture.path, &text, NULL, NULL);
  g_clear_pointer (&capture.path, g_free);
  return text != NULL ? text : g_strdup ("");
}

int
teardown_capture (void **state)
{
  g_free (capture_stop ());
  return 0;
}

/* ------------------------------------------------------------------
 * Emitting
 * ---------------------------------------------------------------- */

const char *const hello_tokens[] = { "Hello", " ", "world", NULL };

json_t *
usage_metadata (int input,
                int output,
                int cache_read,
                int reasoning)
{
  return json_pack ("{s:i, s:i, s:i, s:{s:i}, s:{s:i}}",
                    "input_tokens", input,
                    "output_tokens", output,
                    "total_tokens", input + output,
                    "input_token_details", "cache_read", cache_read,
                    "output_token_details", "reasoning", reasoning);
}

json_t *
llm_result (const char *text,
            const char *model,
            json_t     *usage)
{
  json_t *message = json_pack ("{s:s, s:s, s:{}}", "type", "ai", "content", text,
                               "response_metadata");

  if (usage != NULL)
    json_object_set (message, "usage_metadata", usage);
  if (model != NULL)
    json_object_set_new (json_object_get (message, "response_metadata"), "model_name",
                         json_string (model));
  return json_pack ("{s:[[{s:s, s:o, s:s}]], s:n, s:s}",
                    "generations", "text", text, "message", message, "type", "ChatGeneration",
                    "llm_output", "type", "LLMResult");
}

void
run_conversation (ChimeRuntime       *runtime,
                  const char * const *tokens,
                  json_t             *result)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) manager = chime_runtime_new_callback_manager (runtime);
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "input", "hi");
  g_autoptr (json_t) messages = test_messages ("system", "be brief", "human", "hi", NULL);
  g_autoptr (json_t) outputs = json_pack ("{s:s}", "output", "done");
  g_autoptr (ChimeRun) chain = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (ChimeRun) llm = NULL;

  chain = chime_callback_manager_on_chain_start (manager, NULL, inputs, "Root", NULL, &error);
  assert_null (error);
  child = chime_run_get_child (chain, NULL);
  llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "FakeChat", NULL, &error);
  assert_null (error);
  for (; tokens != NULL && *tokens != NULL; tokens++)
    assert_true (chime_run_on_llm_new_token (llm, *tokens, NULL, &error));
  assert_true (chime_run_on_llm_end (llm, result, &error));
  assert_true (chime_run_on_chain_end (chain, outputs, &error));
}

void
run_with_usage (ChimeRuntime *runtime,
                const char   *model,
                json_t       *usage)
{
  g_autoptr (json_t) result = llm_result ("Hello world", model, usage);

  run_conversation (runtime, hello_tokens, result);
}

/* ------------------------------------------------------------------
 * Comparing
 * ---------------------------------------------------------------- */

void
assert_text_equal (const char *actual,
                   const char *expected)
{
  if (g_strcmp0 (actual, expected) != 0)
    {
      g_autofree char *escaped_actual = g_strescape (actual != NULL ? actual : "(null)", NULL);
      g_autofree char *escaped_expected = g_strescape (expected, NULL);

      fail_msg ("expected:\n%s\ngot:\n%s", escaped_expected, escaped_actual);
    }
}

void
assert_matches (const char *text,
                const char *pattern)
{
  if (!g_regex_match_simple (pattern, text, G_REGEX_MULTILINE, 0))
    {
      g_autofree char *escaped = g_strescape (text, NULL);

      fail_msg ("expected a match for /%s/ in:\n%s", pattern, escaped);
    }
}

json_t *
parse_line (const char *line)
{
  json_error_t json_error;
  json_t *json = json_loads (line, 0, &json_error);

  if (json == NULL)
    fail_msg ("not JSON (%s): %s", json_error.text, line);
  return json;
}

/* ------------------------------------------------------------------ */

int
shipped_run_tests (const struct CMUnitTest *tests,
                   gsize                    n_tests)
{
  test_set_plugin_path (SHIPPED_PLUGIN_DIR);
  return test_run_group (tests, n_tests);
}
