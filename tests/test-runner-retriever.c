/* The retriever step through the installed chime: examples/rag.ini as
 * its header says, with the astream_events stream (--events) and the
 * console handler it configures: the order of the events, the run tree
 * (the retriever as the sequence's first step, the others after it),
 * the Documents and the {context} they make; and a corpus that is
 * missing or wrong stops `chime check` and `chime run` alike, naming the
 * file and the line. */
#include "runner-helpers.h"

#include <string.h>

#define QUESTION "How do sea otters sleep?"
#define CONTEXT                                                                                        \
  "Sea otters hold hands while they sleep so that they do not drift apart. A group of resting "        \
  "otters is called a raft.\n\nSea otters have the densest fur of any animal: up to a million hairs "  \
  "per square inch keep them warm without blubber."

/* The events named @name (the first of them). */
static json_t *
find_event (json_t     *events,
            const char *name)
{
  json_t *event;
  gsize i;

  json_array_foreach (events, i, event)
    if (g_strcmp0 (json_string_value (json_object_get (event, "event")), name) == 0)
      return event;
  fail_msg ("no %s event", name);
  return NULL;
}

static const char *
member_string (json_t     *object,
               const char *key)
{
  return json_string_value (json_object_get (object, key));
}

static void
assert_tags (json_t     *event,
             const char *tag)
{
  json_t *tags = json_object_get (event, "tags");

  assert_int_equal (json_array_size (tags), 1);
  assert_string_equal (json_string_value (json_array_get (tags, 0)), tag);
}

static void
assert_child_of (json_t *event,
                 json_t *root)
{
  json_t *parents = json_object_get (event, "parent_ids");

  assert_int_equal (json_array_size (parents), 1);
  assert_string_equal (json_string_value (json_array_get (parents, 0)), member_string (root, "run_id"));
}

static void
test_rag_example (void **state)
{
  g_autofree char *dir = fresh_dir ("rag");
  g_autofree char *events_path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *ini = g_build_filename (SRCDIR, "examples", "rag.ini", NULL);
  g_autofree char *header = read_source_file ("examples/rag.ini");
  g_autoptr (RunResult) result = NULL;
  g_autoptr (json_t) events = NULL;
  g_autoptr (json_t) expected_docs = NULL;
  g_autoptr (json_t) json = NULL;
  g_autofree char *names = NULL;
  json_t *root, *start, *end, *prompt, *model, *parser;

  /* The command of its header, with the stream into a file. */
  assert_string_contains (header, "#   chime run examples/rag.ini --var question=\"" QUESTION "\"");
  result = run_chime_in (dir, "run", ini, "--var", "question=" QUESTION, "--events", events_path, NULL);
  assert_status (result, 0);
  events = read_json_lines (events_path);
  names = event_names (events);
  if (!g_str_has_prefix (names, "on_chain_start on_retriever_start on_retriever_end on_prompt_start "
                                "on_prompt_end on_chat_model_start on_parser_start on_chat_model_stream ") ||
      !g_str_has_suffix (names, "on_chat_model_end on_parser_end on_chain_end"))
    fail_msg ("events in the wrong order: %s", names);

  root = find_event (events, "on_chain_start");
  start = find_event (events, "on_retriever_start");
  end = find_event (events, "on_retriever_end");
  prompt = find_event (events, "on_prompt_start");
  model = find_event (events, "on_chat_model_start");
  parser = find_event (events, "on_parser_start");

  /* The tree: every step a child of the sequence, the retriever first. */
  assert_int_equal (json_array_size (json_object_get (root, "parent_ids")), 0);
  for (json_t **child = (json_t *[]) { start, end, prompt, model, parser, NULL }; *child != NULL; child++)
    assert_child_of (*child, root);
  assert_string_equal (member_string (start, "run_id"), member_string (end, "run_id"));
  assert_string_equal (member_string (start, "name"), "BM25Retriever");
  assert_tags (start, "seq:step:1");
  assert_tags (prompt, "seq:step:2");
  assert_tags (model, "seq:step:3");
  assert_tags (parser, "seq:step:4");
  assert_string_equal (member_string (json_object_get (start, "metadata"), "ls_retriever_name"), "bm25");

  /* The payloads: the query in, the two best Documents out. */
  assert_string_equal (member_string (json_object_get (json_object_get (start, "data"), "input"), "query"),
                       QUESTION);
  expected_docs = json_loads (
      "[{\"id\": \"otters-1\", \"metadata\": {\"source\": \"otters.md\", \"topic\": \"otters\"},"
      "  \"page_content\": \"Sea otters hold hands while they sleep so that they do not drift apart. A group "
      "of resting otters is called a raft.\", \"type\": \"Document\"},"
      " {\"id\": \"otters-2\", \"metadata\": {\"source\": \"otters.md\", \"topic\": \"otters\"},"
      "  \"page_content\": \"Sea otters have the densest fur of any animal: up to a million hairs per square "
      "inch keep them warm without blubber.\", \"type\": \"Document\"}]", 0, NULL);
  assert_non_null (expected_docs);
  assert_true (json_equal (json_object_get (json_object_get (end, "data"), "output"), expected_docs));
  assert_string_equal (member_string (json_object_get (json_object_get (end, "data"), "input"), "query"),
                       QUESTION);
  /* {context}: the documents joined by a blank line, in the prompt's
   * input and in the system message the model got. */
  assert_string_equal (member_string (json_object_get (json_object_get (prompt, "data"), "input"), "context"),
                       CONTEXT);
  {
    char *data = json_dumps (json_object_get (model, "data"), 0);

    assert_string_contains (data, "Answer from this context only:");
    free (data);
  }

  /* console: the prompt's input with the context; no retriever lines, as
   * LangChain's ConsoleCallbackHandler has no retriever hooks. */
  assert_string_contains (result->out, "[chain/start] [chain:RunnableSequence > prompt:ChatPromptTemplate] "
                                       "Entering Prompt run with input:\n{\n  \"question\": \"" QUESTION "\",\n"
                                       "  \"context\": ");
  assert_null (strstr (result->out, "[retriever/"));
  json = find_result (result->out);
  assert_non_null (json);
  assert_string_equal (member_string (json, "output"), "They hold hands, so that they do not drift apart.");
}

/* A retriever pipeline in @dir with the corpus @corpus_text (NULL: no
 * corpus file) and the prompt @prompt; returns its path. */
static char *
write_rag (const char *dir,
           const char *corpus_text,
           const char *prompt)
{
  g_autofree char *ini = g_strdup_printf ("[pipeline]\nprompt = %s\nretriever = notes\nmodel = m\n\n"
                                          "[retriever notes]\ncorpus = notes.jsonl\n\n"
                                          "[model m]\nprovider = fake\nmodel = fake-claude-3-sonnet\n",
                                          prompt);

  if (corpus_text != NULL)
    g_free (write_in (dir, "notes.jsonl", corpus_text));
  return write_in (dir, "rag.ini", ini);
}

static void
test_corpus_problems_stop_check (void **state)
{
  struct {
    const char *corpus;
    const char *prompt;
    const char *message;
    const char *after_path;   /* the message goes on after the corpus's path; NULL: no path */
  } cases[] = {
    { NULL, "{context} {question}",
      "cannot read corpus in [retriever notes] of rag.ini (line 7): ", ": " },
    { "{\"page_content\": \"a\"}\n\n{\"text\": \"b\"}\n", "{context} {question}",
      "cannot read corpus in [retriever notes] of rag.ini (line 7): ",
      " line 3: no string \"page_content\"; each line must be a JSON object like "
      "{\"page_content\": \"...\", \"metadata\": {...}}" },
    { "{\"page_content\": \"a\"}\n", "{question}",
      "'retriever = notes' in [pipeline] of rag.ini (line 3), but the prompt has no {context}, where the "
      "documents it finds go: add {context} to 'prompt' or 'system'", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *label = g_strdup_printf ("corpus-%u", i);
      g_autofree char *dir = fresh_dir (label);
      g_autofree char *config = write_rag (dir, cases[i].corpus, cases[i].prompt);
      g_autofree char *corpus = g_build_filename (dir, "notes.jsonl", NULL);
      g_autofree char *expected = g_strconcat (cases[i].message, cases[i].after_path != NULL ? corpus : "",
                                               cases[i].after_path, NULL);
      const char *commands[] = { "check", "run" };

      for (guint c = 0; c < G_N_ELEMENTS (commands); c++)
        {
          g_autoptr (RunResult) result = c == 0 ? run_chime_in (dir, "check", config, NULL)
                                                : run_chime_in (dir, "run", config, "--var", "question=q", NULL);

          assert_status (result, 3);
          assert_string_contains (result->err, expected);
        }
    }
}

/* The input must give the query: the retriever's variable is required
 * like the prompt's, and {context} is not asked for. */
static void
test_query_variable_required (void **state)
{
  g_autofree char *dir = fresh_dir ("query-variable");
  g_autofree char *config = write_rag (dir, "{\"page_content\": \"a\"}\n", "{context} Tell me");
  g_autoptr (RunResult) missing = run_chime_in (dir, "run", config, NULL);
  g_autoptr (RunResult) given = run_chime_in (dir, "run", config, "--var", "question=q", NULL);

  assert_status (missing, 2);
  assert_string_contains (missing->err, "needs variable question; pass --var NAME=VALUE for each");
  assert_status (given, 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_rag_example),
    cmocka_unit_test (test_corpus_problems_stop_check),
    cmocka_unit_test (test_query_variable_required),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
