/* `[retriever NAME]`: a BM25 retriever over a local corpus, as
 * langchain-community's BM25Retriever (retriever.c).
 *
 *   [retriever docs]
 *   corpus = docs.jsonl    # JSONL Documents, relative to the INI file
 *   top_k = 4              # documents returned, 1 to 100
 *   k1 = 1.2               # BM25's term frequency saturation, 0 to 10
 *   b = 0.75               # BM25's length normalisation, 0 to 1 */
#pragma once

#include <glib.h>
#include <jansson.h>

#include <chime/chime.h>

typedef struct _ChimeRetriever ChimeRetriever;

/* The run name: the LangChain class that does the same. */
#define CHIME_RETRIEVER_CLASS_NAME "BM25Retriever"

/* Reads `[retriever NAME]` and its corpus; NULL when the section is
 * missing or unusable (each problem recorded in @config, a corpus's with
 * its file and line). */
ChimeRetriever *chime_retriever_new    (ChimeConfig *config,
                                        const char  *name);
void            chime_retriever_free   (ChimeRetriever *retriever);
/* The best documents for @query (Documents, as the corpus holds them),
 * best first. New reference. */
json_t         *chime_retriever_search (ChimeRetriever *retriever,
                                        const char     *query);
/* The documents' page_content joined by blank lines, as the RAG
 * tutorials' format_docs. */
char           *chime_retriever_format (json_t *documents);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeRetriever, chime_retriever_free)
