/* API keys and the [model] section: the key reaches the server and
 * nothing else, a missing key or a key file, no key at all for local
 * servers, every configuration mistake reported at once, and a check
 * that needs no key.
 * Whole pipelines from INI text against the mock LLM server, over real
 * sockets, for each provider (OpenAI and Anthropic). */
#include "provider-helpers.h"

#include "providers/model.h"

#include <glib/gstdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Keys and configuration                                             */
/* ------------------------------------------------------------------ */

static gboolean
file_contains (const char *path,
               const char *needle)
{
  g_autofree char *text = NULL;

  return g_file_get_contents (path, &text, NULL, NULL) && strstr (text, needle) != NULL;
}

static void
test_secrets_stay_out (void **state)
{
  static const CaseSpec specs[] = {
    { NULL },
    { .scenario = "status", .arg = "401" },
    { .scenario = "flaky", .arg = "1,429" },
    { .scenario = "error-event", .arg = "3" },
  };
  Case *cases[G_N_ELEMENTS (specs) * 2];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    cases[i] = case_new (providers[i % 2], &specs[i / 2]);
  run_cases (cases, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (json_t) requests = server_requests (cases[i]->mock_key);
      g_autoptr (json_t) starts = trace_events (cases[i], "chat_model_start");
      json_t *params = json_object_get (json_object_get (json_array_get (starts, 0), "kwargs"),
                                        "invocation_params");
      g_autofree char *params_text = json_dumps (params, 0);
      g_autofree char *result_text = cases[i]->result ? json_dumps (cases[i]->result, 0) : g_strdup ("");
      const char *sent = json_string_value (json_object_get (json_object_get (json_array_get (requests, 0),
                                                                              "headers"),
                                                             cases[i]->provider->key_header));

      /* The key did go to the server... */
      assert_non_null (sent);
      assert_non_null (strstr (sent, API_KEY));
      /* ...and nowhere else. */
      assert_false (file_contains (cases[i]->recorder_log, API_KEY));
      assert_false (file_contains (cases[i]->trace, API_KEY));
      assert_false (file_contains (cases[i]->trace, "SECRET"));
      assert_null (strstr (params_text, API_KEY));
      assert_null (json_object_get (params, "api_key"));
      assert_string_equal (json_string_value (json_object_get (params, "model")), cases[i]->provider->model);
      assert_null (strstr (result_text, API_KEY));
      if (cases[i]->error != NULL)
        assert_null (strstr (cases[i]->error->message, API_KEY));
      case_free (cases[i]);
    }
}

static void
test_missing_key_and_key_file (void **state)
{
  g_autofree char *key_file = test_write_file ("api.key", "sk-from-file-1234\n");
  Case *cases[4];

  for (guint i = 0; i < 2; i++)
    {
      /* A key that is not set: found out when the stream starts. */
      cases[i] = case_new (providers[i], &(CaseSpec) { NULL });
      case_replace (cases[i], "api_key_env = " API_KEY_ENV, "api_key_env = CHIME_TEST_UNSET_KEY");
      /* A key file, relative to the INI file's folder (test_tmpdir()). */
      cases[2 + i] = case_new (providers[i], &(CaseSpec) { NULL });
      case_replace (cases[2 + i], "api_key_env = " API_KEY_ENV, "api_key_file = api.key");
    }
  g_unsetenv ("CHIME_TEST_UNSET_KEY");
  run_cases (cases, 4);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *message = g_strdup_printf ("%s: no API key: set CHIME_TEST_UNSET_KEY (api_key_env) or "
                                                  "api_key_file in [model m]", providers[i]->name);
      g_autoptr (json_t) requests = server_requests (cases[2 + i]->mock_key);

      assert_failed_with (cases[i], message);
      assert_int_equal (count_requests (cases[i]->mock_key), 0);
      assert_succeeded (cases[2 + i]);
      assert_string_contains (json_string_value (json_object_get (json_object_get (json_array_get (requests, 0),
                                                                                   "headers"),
                                                                  providers[i]->key_header)),
                              "sk-from-file-1234");
      case_free (cases[i]);
      case_free (cases[2 + i]);
    }
}

/* `api_key_env =` (empty) sends no key, for local servers that want none:
 * the mock server, which does, then says that none came. */
static void
test_empty_api_key_env_sends_none (void **state)
{
  Case *cases[2];

  for (guint i = 0; i < 2; i++)
    {
      cases[i] = case_new (providers[i], &(CaseSpec) { .model_extra = "max_retries = 0\n" });
      case_replace (cases[i], "api_key_env = " API_KEY_ENV, "api_key_env =");
    }
  run_cases (cases, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (json_t) requests = server_requests (cases[i]->mock_key);
      json_t *headers = json_object_get (json_array_get (requests, 0), "headers");

      assert_int_equal (json_array_size (requests), 1);
      assert_null (json_object_get (headers, providers[i]->key_header));
      assert_failed_with (cases[i], "HTTP 401");
      case_free (cases[i]);
    }
}

static void
test_configuration_problems (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimePipeline) pipeline = chime_pipeline_new_from_data (
    "[pipeline]\nprompt = hi\nmodel = m\n\n"
    "[model m]\nprovider = openai\nbase_url = ftp://example.com\n"
    "api_key_env = A\napi_key_file = key.txt\n"
    "headers = [\"Authorization: Bearer sk-in-the-file\", \"X-Fine: yes\", \"no colon\"]\n"
    "extra_body = {\"stream\": false}\nstop = [1]\ntemperature = 3\ntimeout_s = 0\nmax_retries = -1\n"
    "colour = blue\n",
    "bad.ini", test_tmpdir (), NULL, NULL, &error);
  static const char *const expected[] = {
    "missing required key 'model' in [model m] of bad.ini",
    "invalid value 'ftp://example.com' for 'base_url' in [model m] of bad.ini (line 7): expected an http://",
    "set either 'api_key_env' or 'api_key_file'",
    "'headers' in [model m] of bad.ini (line 10) must not set Authorization",
    "invalid header 'no colon' in 'headers'",
    "'extra_body' in [model m] of bad.ini (line 11) must not set 'stream'",
    "invalid value for 'stop' in [model m] of bad.ini (line 12): element 0 is not a string",
    "'temperature'",
    "'timeout_s'",
    "'max_retries'",
    "colour",
  };

  assert_null (pipeline);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    assert_string_contains (error->message, expected[i]);
  /* The key in a header is refused without being quoted back. */
  assert_null (strstr (error->message, "sk-in-the-file"));
}

/* A headers value GKeyFile cannot read as a string (not UTF-8) is a
 * problem of the file, not a crash. Found by tests/fuzz/fuzz-config-check. */
static void
test_headers_not_utf8 (void **state)
{
  g_autoptr (ChimeConfig) ini = chime_config_new_from_data ("[model m]\nprovider = openai\nmodel = gpt-x\n"
                                                            "headers = X-Title: caf\xe9\n",
                                                            "bad.ini", test_tmpdir (), NULL);
  g_autoptr (ChimeModel) model = chime_model_new (ini, "m");
  g_autoptr (GError) error = NULL;

  assert_null (model);
  assert_false (chime_config_check (ini, &error));
  assert_string_contains (error->message, "invalid value for 'headers' in [model m] of bad.ini (line 4)");
}

/* An API key file is read with a bound (16 KiB) and must be text: a
 * larger file, a folder or bytes that are not UTF-8 fail the stream
 * before any request is sent. (/dev/zero and FIFOs, which could fill the
 * memory or block, are tested on the installed chime under limits:
 * tests/test-runner-input.c.) */
static void
test_key_file_refused (void **state)
{
  g_autofree char *large_text = g_strnfill (16 * 1024 + 1, 'k');
  g_autofree char *large = test_write_file ("large.key", large_text);
  g_autofree char *latin1 = test_write_file ("latin1.key", "sk-caf\xe9\n");
  g_autofree char *folder = test_path ("key-folder");
  const char *const files[] = { "large.key", "key-folder", "latin1.key" };
  /* What comes before and after the path in each message. */
  const char *const before[] = {
    "cannot read the API key (api_key_file in [model m]): ",
    "cannot read the API key (api_key_file in [model m]): ",
    "the API key file ",
  };
  const char *const after[] = {
    " is larger than 16 KiB, the most chime reads from it",
    " is a directory, not a regular file",
    " (api_key_file in [model m]) is not UTF-8 text",
  };
  const char *const paths[] = { large, folder, latin1 };
  Case *cases[G_N_ELEMENTS (files) * 2];

  assert_int_equal (g_mkdir (folder, 0700), 0);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *line = g_strdup_printf ("api_key_file = %s", files[i / 2]);

      cases[i] = case_new (providers[i % 2], &(CaseSpec) { NULL });
      case_replace (cases[i], "api_key_env = " API_KEY_ENV, line);
    }
  run_cases (cases, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *message = g_strdup_printf ("%s: %s%s%s", providers[i % 2]->name, before[i / 2],
                                                  paths[i / 2], after[i / 2]);

      assert_failed_with (cases[i], message);
      assert_int_equal (count_requests (cases[i]->mock_key), 0);
      case_free (cases[i]);
    }
}

static void
test_check_needs_no_key (void **state)
{
  g_autoptr (ChimeConfig) ini = chime_config_new_from_data ("[model a]\nprovider = anthropic\nmodel = claude-x\n"
                                                            "api_key_env = CHIME_TEST_UNSET_KEY\nmax_tokens = 50\n"
                                                            "system = Be terse.\n",
                                                            "a.ini", test_tmpdir (), NULL);
  g_autoptr (ChimeModel) model = chime_model_new (ini, "a");
  g_autoptr (json_t) params = NULL;

  assert_int_equal (chime_config_get_n_problems (ini), 0);
  assert_non_null (model);
  assert_string_equal (model->model_name, "claude-x");
  params = model->provider->invocation_params (model);
  assert_string_equal (json_string_value (json_object_get (params, "_type")), "anthropic-chat");
  assert_int_equal (json_integer_value (json_object_get (params, "max_tokens")), 50);
  assert_int_equal (json_integer_value (json_object_get (params, "max_retries")), 2);
  assert_true (json_real_value (json_object_get (params, "timeout")) == 600.0);
  assert_string_equal (model->provider->class_name, "ChatAnthropic");
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_secrets_stay_out),
    cmocka_unit_test (test_missing_key_and_key_file),
    cmocka_unit_test (test_empty_api_key_env_sends_none),
    cmocka_unit_test (test_configuration_problems),
    cmocka_unit_test (test_headers_not_utf8),
    cmocka_unit_test (test_key_file_refused),
    cmocka_unit_test (test_check_needs_no_key),
  };

  return provider_tests_run (tests, G_N_ELEMENTS (tests));
}
