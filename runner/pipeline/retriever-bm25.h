/* BM25 ranking over a fixed set of texts (retriever-bm25.c).
 *
 * Words are the runs of letters and digits (Unicode), lower-cased:
 * "Paris, 2024's" is "paris", "2024", "s". The score of a text for a
 * query is Okapi BM25 summed over the query's words (a word twice in the
 * query counts twice, as rank_bm25 does):
 *   idf(w) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))
 * with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)), which is never
 * negative (rank_bm25's BM25Okapi can give a word in most texts a
 * negative weight, which ranks texts lower for containing it). */
#pragma once

#include <glib.h>

typedef struct _ChimeBm25 ChimeBm25;

/* An index of @texts (@n of them), ranked with @k1 and @b. */
ChimeBm25 *chime_bm25_new    (const char *const *texts,
                              guint              n,
                              gdouble            k1,
                              gdouble            b);
void       chime_bm25_free   (ChimeBm25 *index);
/* The indexes of the @top_k best texts for @query, best first; ties keep
 * the texts' order. Fewer when there are fewer texts. */
GArray    *chime_bm25_search (ChimeBm25  *index,
                              const char *query,
                              guint       top_k);
/* The words of @text, as BM25 sees them (for tests and docs). */
GPtrArray *chime_bm25_words  (const char *text);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeBm25, chime_bm25_free)
