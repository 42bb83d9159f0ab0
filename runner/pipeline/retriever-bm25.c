/* BM25 (retriever-bm25.h): each text's word counts, and each word's
 * number of texts, kept once; a search scores every text. A corpus is
 * bounded (retriever-corpus.h), so a scan per query is enough. */
#include "config.h"

#include "retriever-bm25.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
  GHashTable *counts;   /* word -> count, as GUINT_TO_POINTER */
  guint       length;   /* in words */
} Text;

struct _ChimeBm25 {
  Text       *texts;
  guint       n;
  gdouble     average_length;
  GHashTable *frequencies;   /* word -> number of texts with it */
  gdouble     k1, b;
};

GPtrArray *
chime_bm25_words (const char *text)
{
  GPtrArray *words = g_ptr_array_new_with_free_func (g_free);
  GString *word = g_string_new (NULL);

  for (const char *p = text; ; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c != 0 && g_unichar_isalnum (c))
        {
          g_string_append_unichar (word, g_unichar_tolower (c));
          continue;
        }
      if (word->len > 0)
        g_ptr_array_add (words, g_strndup (word->str, word->len));
      g_string_truncate (word, 0);
      if (c == 0)
        break;
    }
  g_string_free (word, TRUE);
  return words;
}

static void
count_words (ChimeBm25  *index,
             Text       *text,
             const char *content)
{
  g_autoptr (GPtrArray) words = chime_bm25_words (content);

  text->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  text->length = words->len;
  for (guint i = 0; i < words->len; i++)
    {
      const char *word = words->pdata[i];
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (text->counts, word));

      if (count == 0)
        {
          guint texts = GPOINTER_TO_UINT (g_hash_table_lookup (index->frequencies, word));

          g_hash_table_replace (index->frequencies, g_strdup (word), GUINT_TO_POINTER (texts + 1));
        }
      g_hash_table_replace (text->counts, g_strdup (word), GUINT_TO_POINTER (count + 1));
    }
}

ChimeBm25 *
chime_bm25_new (const char *const *texts,
                guint              n,
                gdouble            k1,
                gdouble            b)
{
  ChimeBm25 *index = g_new0 (ChimeBm25, 1);
  guint64 total = 0;

  index->texts = g_new0 (Text, n);
  index->n = n;
  index->k1 = k1;
  index->b = b;
  index->frequencies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      count_words (index, &index->texts[i], texts[i]);
      total += index->texts[i].length;
    }
  index->average_length = n > 0 && total > 0 ? (gdouble) total / n : 1.0;
  return index;
}

void
chime_bm25_free (ChimeBm25 *index)
{
  if (index == NULL)
    return;
  for (guint i = 0; i < index->n; i++)
    g_hash_table_unref (index->texts[i].counts);
  g_free (index->texts);
  g_hash_table_unref (index->frequencies);
  g_free (index);
}

static gdouble
score (ChimeBm25 *index,
       Text      *text,
       GPtrArray *query,
       gdouble   *idfs)
{
  gdouble total = 0;
  gdouble norm = index->k1 * (1 - index->b + index->b * text->length / index->average_length);

  for (guint i = 0; i < query->len; i++)
    {
      gdouble tf = GPOINTER_TO_UINT (g_hash_table_lookup (text->counts, query->pdata[i]));

      if (tf > 0)
        total += idfs[i] * tf * (index->k1 + 1) / (tf + norm);
    }
  return total;
}

typedef struct {
  guint   index;
  gdouble score;
} Ranked;

static int
by_score (const void *a,
          const void *b)
{
  const Ranked *x = a, *y = b;

  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

GArray *
chime_bm25_search (ChimeBm25  *index,
                   const char *query,
                   guint       top_k)
{
  g_autoptr (GPtrArray) words = chime_bm25_words (query);
  g_autofree gdouble *idfs = g_new0 (gdouble, MAX (words->len, 1));
  g_autofree Ranked *ranked = g_new0 (Ranked, MAX (index->n, 1));
  GArray *best = g_array_new (FALSE, FALSE, sizeof (guint));

  for (guint i = 0; i < words->len; i++)
    {
      gdouble n = GPOINTER_TO_UINT (g_hash_table_lookup (index->frequencies, words->pdata[i]));

      idfs[i] = log (1 + (index->n - n + 0.5) / (n + 0.5));
    }
  for (guint i = 0; i < index->n; i++)
    {
      ranked[i].index = i;
      ranked[i].score = score (index, &index->texts[i], words, idfs);
    }
  /* qsort is not stable; by_score breaks ties by index. */
  qsort (ranked, index->n, sizeof (Ranked), by_score);
  for (guint i = 0; i < MIN (top_k, index->n); i++)
    g_array_append_val (best, ranked[i].index);
  return best;
}
