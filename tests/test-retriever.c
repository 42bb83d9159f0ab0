/* The retriever's parts, in-process: BM25's words and ranking (checked
 * against scores worked out by hand from the formula in
 * retriever-bm25.h), and reading a corpus, whose every problem names
 * the file and the line. The retriever in a pipeline run is
 * tests/test-runner-retriever.c. */
#include "test-helpers.h"

#include "pipeline/retriever-bm25.h"
#include "pipeline/retriever-corpus.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static void
test_words (void **state)
{
  g_autoptr (GPtrArray) words = chime_bm25_words ("Paris, 2024's CAFÉ-au-lait!  ");
  const char *expected[] = { "paris", "2024", "s", "café", "au", "lait" };

  assert_int_equal (words->len, G_N_ELEMENTS (expected));
  for (guint i = 0; i < words->len; i++)
    assert_string_equal (words->pdata[i], expected[i]);
}

static guint
search_first (ChimeBm25  *index,
              const char *query)
{
  g_autoptr (GArray) best = chime_bm25_search (index, query, 1);

  assert_int_equal (best->len, 1);
  return g_array_index (best, guint, 0);
}

/* A rare word outweighs a common one; a repeated word saturates (k1)
 * and a long text is discounted (b). */
static void
test_ranking (void **state)
{
  const char *texts[] = {
    "the cat sat on the mat",                                  /* 0 */
    "the dog sat on the log",                                  /* 1 */
    "the cat and the dog",                                     /* 2 */
    "owls owls owls owls owls owls owls owls",                 /* 3 */
    "owls hunt at night",                                      /* 4 */
  };
  g_autoptr (ChimeBm25) index = chime_bm25_new (texts, G_N_ELEMENTS (texts), 1.2, 0.75);
  g_autoptr (GArray) all = chime_bm25_search (index, "the mat", 10);
  g_autoptr (GArray) none = chime_bm25_search (index, "zebra", 2);
  g_autoptr (ChimeBm25) flat = chime_bm25_new (texts, G_N_ELEMENTS (texts), 1.2, 0.0);

  /* "mat" is in one text only. */
  assert_int_equal (search_first (index, "the mat"), 0);
  assert_int_equal (search_first (index, "dog log"), 1);
  /* Eight "owls" in a text twice as long as text 4 count not eight times
   * one: with k1 = 1.2, b = 0.75 and an average length of 5.8 words,
   * 8 * 2.2 / (8 + 1.2 * (0.25 + 0.75 * 8 / 5.8)) = 1.84 against
   * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 4 / 5.8)) = 1.15, each times the
   * word's idf, log (1 + 3.5 / 2.5). */
  assert_int_equal (search_first (index, "owls"), 3);
  /* Without length normalisation the same. */
  assert_int_equal (search_first (flat, "owls"), 3);
  /* Every text ranked; those without a query word last, in corpus order. */
  assert_int_equal (all->len, 5);
  assert_int_equal (g_array_index (all, guint, 0), 0);
  assert_int_equal (g_array_index (all, guint, 3), 3);
  assert_int_equal (g_array_index (all, guint, 4), 4);
  /* No word matches: the first texts, as LangChain's BM25Retriever. */
  assert_int_equal (none->len, 2);
  assert_int_equal (g_array_index (none, guint, 0), 0);
  assert_int_equal (g_array_index (none, guint, 1), 1);
}

static void
test_corpus_read (void **state)
{
  g_autofree char *path = test_write_file ("good.jsonl",
                                           "{\"page_content\": \"a\", \"metadata\": {\"s\": 1}, \"id\": \"x\"}\n"
                                           "\n   \n"
                                           "{\"page_content\": \"b\"}");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) documents = chime_corpus_load (path, &error);
  g_autoptr (json_t) expected = json_loads (
      "[{\"id\": \"x\", \"metadata\": {\"s\": 1}, \"page_content\": \"a\", \"type\": \"Document\"},"
      " {\"id\": null, \"metadata\": {}, \"page_content\": \"b\", \"type\": \"Document\"}]", 0, NULL);

  assert_null (error);
  assert_true (json_equal (documents, expected));
}

static void
test_corpus_problems (void **state)
{
  struct {
    const char *text;
    const char *message;   /* after "PATH " */
  } cases[] = {
    { "{\"page_content\": \"a\"}\n{\"page_content\": 3}\n",
      "line 2: no string \"page_content\"; each line must be a JSON object like "
      "{\"page_content\": \"...\", \"metadata\": {...}}" },
    { "\n\n{\"page_content\": \"a\"\n", "line 3: not JSON (" },
    { "[1]\n", "line 1: no string \"page_content\"" },
    { "{\"page_content\": \"a\", \"metadata\": []}\n", "line 1: \"metadata\" must be a JSON object" },
    { "{\"page_content\": \"a\", \"id\": 7}\n", "line 1: \"id\" must be a string" },
    { "\n  \n", "has no documents" },
    { "{\"page_content\": \"caf\xe9\"}\n", "is not UTF-8 text" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("bad-%u.jsonl", i);
      g_autofree char *path = test_write_file (name, cases[i].text);
      g_autofree char *expected = g_strdup_printf ("%s %s", path, cases[i].message);
      g_autoptr (GError) error = NULL;
      g_autoptr (json_t) documents = chime_corpus_load (path, &error);

      assert_null (documents);
      assert_non_null (error);
      if (!g_str_has_prefix (error->message, expected))
        fail_msg ("case %u: \"%s\" does not start with \"%s\"", i, error->message, expected);
    }
}

/* A corpus larger than the bound is refused before it is read: the file
 * is sparse, reading it would take 65 MiB. */
static void
test_corpus_bounded (void **state)
{
  g_autofree char *path = test_write_file ("huge.jsonl", "");
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) documents = NULL;

  assert_int_equal (truncate (path, CHIME_CORPUS_MAX_FILE_SIZE + 1), 0);
  documents = chime_corpus_load (path, &error);
  assert_null (documents);
  assert_non_null (error);
  assert_string_contains (error->message, path);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_words),
    cmocka_unit_test (test_ranking),
    cmocka_unit_test (test_corpus_read),
    cmocka_unit_test (test_corpus_problems),
    cmocka_unit_test (test_corpus_bounded),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
