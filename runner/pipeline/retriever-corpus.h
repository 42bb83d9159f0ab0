/* A retriever's corpus (retriever-corpus.c): a JSONL file of LangChain
 * Documents, one JSON object a line: {"page_content": TEXT, "metadata":
 * OBJECT (optional), "id": TEXT (optional)}. Blank lines are skipped. */
#pragma once

#include <glib.h>
#include <jansson.h>

/* The bounds of a corpus: a larger file, or more documents, is refused
 * with a message saying so, rather than read without bound. */
#define CHIME_CORPUS_MAX_FILE_SIZE  (64 * 1024 * 1024)
#define CHIME_CORPUS_MAX_DOCUMENTS  100000

/* The documents of @path as a JSON array of LangChain Document objects
 * {"id": TEXT or null, "metadata": OBJECT, "page_content": TEXT, "type":
 * "Document"}, in file order. NULL with @error (G_FILE_ERROR or
 * G_IO_ERROR_INVALID_DATA) naming the file and, for a bad document, its
 * line. */
json_t *chime_corpus_load (const char *path,
                           GError    **error);
