/* Reading what the installed chime wrote, and what the seed example must
 * print, for the runner tests: see runner-helpers.h. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * Reading what chime wrote
 * ---------------------------------------------------------------- */

char **
split_lines (const char *text)
{
  char **lines = g_strsplit (text, "\n", -1);
  guint n = g_strv_length (lines);

  if (n > 0 && lines[n - 1][0] == '\0')
    {
      g_free (lines[n - 1]);
      lines[n - 1] = NULL;
    }
  return lines;
}

json_t *
find_result (const char *out)
{
  for (const char *p = strchr (out, '{'); p != NULL; p = strchr (p + 1, '{'))
    {
      json_t *json = json_loads (p, 0, NULL);

      if (json_is_object (json))
        return json;
      if (json != NULL)
        json_decref (json);
    }
  return NULL;
}

json_t *
parse_json_lines (const char *text,
                  const char *what)
{
  g_auto (GStrv) lines = split_lines (text != NULL ? text : "");
  json_t *array = json_array ();

  for (guint i = 0; lines[i] != NULL; i++)
    {
      json_error_t error;
      json_t *json = json_loads (lines[i], 0, &error);

      if (json == NULL)
        fail_msg ("line %u of %s is not JSON (%s): %s", i + 1, what, error.text, lines[i]);
      json_array_append_new (array, json);
    }
  return array;
}

json_t *
read_json_lines (const char *path)
{
  g_autofree char *text = read_text (path);

  if (text == NULL)
    fail_msg ("%s was not written", path);
  return parse_json_lines (text, path);
}

char *
event_names (json_t *events)
{
  g_autoptr (GString) names = g_string_new (NULL);
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    {
      if (names->len > 0)
        g_string_append_c (names, ' ');
      g_string_append (names, json_string_value (json_object_get (event, "event")));
    }
  return g_string_free (g_steal_pointer (&names), FALSE);
}

guint
count_events (json_t     *events,
              const char *name)
{
  guint n = 0;
  gsize i;
  json_t *event;

  json_array_foreach (events, i, event)
    if (g_strcmp0 (json_string_value (json_object_get (event, "event")), name) == 0)
      n++;
  return n;
}

gboolean
strv_json_contains (json_t     *array,
                    const char *value)
{
  gsize i;
  json_t *item;

  json_array_foreach (array, i, item)
    if (g_strcmp0 (json_string_value (item), value) == 0)
      return TRUE;
  return FALSE;
}

json_t *
result_message (json_t *result)
{
  return json_object_get (json_array_get (json_array_get (json_object_get (
           json_object_get (result, "llm_result"), "generations"), 0), 0), "message");
}

/* ------------------------------------------------------------------
 * The seed example
 * ---------------------------------------------------------------- */

const char *const seed_chunks[] = {
  "", "Why", " don't scientists trust atoms?\n\nBecause they make up", " everything!", "", NULL
};

char **
seed_expected_lines (void)
{
  g_autoptr (GString) text = g_string_new ("zzzz....\nHi! I just woke up. Your llm is starting\n");

  for (guint i = 0; seed_chunks[i] != NULL; i++)
    g_string_append_printf (text, TOKEN_PREFIX "%s\n", seed_chunks[i]);
  g_string_append (text, "zzzz....\nHi! I just woke up. Your llm is ending\n");
  return split_lines (text->str);
}

void
assert_seed_result (json_t *result)
{
  json_t *llm_result = json_object_get (result, "llm_result");
  json_t *message = json_object_get (json_array_get (json_array_get (
                      json_object_get (llm_result, "generations"), 0), 0), "message");

  assert_non_null (result);
  assert_true (json_is_string (json_object_get (result, "run_id")));
  assert_int_equal (strlen (json_string_value (json_object_get (result, "run_id"))), 36);
  assert_string_equal (json_string_value (json_object_get (result, "output")), SEED_OUTPUT);
  assert_string_equal (json_string_value (json_object_get (llm_result, "type")), "LLMResult");
  assert_true (json_is_object (json_object_get (message, "usage_metadata")));
  assert_true (json_integer_value (json_object_get (json_object_get (message, "usage_metadata"),
                                                    "output_tokens")) > 0);
  assert_string_equal (json_string_value (json_object_get (json_object_get (message, "response_metadata"),
                                                           "model_name")), SEED_MODEL);
}

int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* ------------------------------------------------------------------
 * The docs
 * ---------------------------------------------------------------- */

/* The lines of the first ```@lang block of @text after @after that
 * holds @needle (fails the test when there is none). */
char **
doc_block (const char *text,
           const char *after,
           const char *lang,
           const char *needle)
{
  g_autofree char *fence = g_strdup_printf ("```%s\n", lang);
  const char *at = strstr (text, after);

  assert_non_null (at);
  while ((at = strstr (at, fence)) != NULL)
    {
      const char *start = at + strlen (fence);
      const char *end = strstr (start, "```");
      g_autofree char *block = NULL;

      assert_non_null (end);
      block = g_strndup (start, end - start);
      if (strstr (block, needle) != NULL)
        return split_lines (block);
      at = end + 3;
    }
  fail_msg ("no ```%s block with \"%s\" after \"%s\"", lang, needle, after);
  return NULL;
}
