/* `[retriever NAME]` (retriever.h): its keys, its corpus read and
 * indexed once when the configuration is read (so `chime check` finds a
 * bad corpus), and searches. */
#include "config.h"

#include "retriever.h"
#include "retriever-bm25.h"
#include "retriever-corpus.h"

static const char *const retriever_keys[] = { "corpus", "top_k", "k1", "b", NULL };

struct _ChimeRetriever {
  json_t    *documents;
  ChimeBm25 *index;
  gint64     top_k;
};

void
chime_retriever_free (ChimeRetriever *retriever)
{
  if (retriever == NULL)
    return;
  g_clear_pointer (&retriever->documents, json_decref);
  chime_bm25_free (retriever->index);
  g_free (retriever);
}

static json_t *
read_corpus (ChimeConfig *config,
             const char  *section)
{
  g_autofree char *file = chime_config_read_string (config, section, "corpus", NULL);
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  json_t *documents;

  if (file == NULL || file[0] == '\0')
    {
      g_autofree char *location = chime_config_describe_location (config, section, NULL);

      chime_config_add_problem (config, "missing required key 'corpus'%s: the JSONL file of documents "
                                "to search, e.g. corpus = docs.jsonl", location);
      return NULL;
    }
  path = chime_config_resolve_path (config, file);
  documents = chime_corpus_load (path, &error);
  if (documents == NULL)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "corpus");

      chime_config_add_problem (config, "cannot read corpus%s: %s", location, error->message);
    }
  return documents;
}

ChimeRetriever *
chime_retriever_new (ChimeConfig *config,
                     const char  *name)
{
  g_autofree char *section = g_strdup_printf ("retriever %s", name);
  g_autoptr (ChimeRetriever) retriever = NULL;
  g_autoptr (GPtrArray) texts = g_ptr_array_new ();
  guint problems = chime_config_get_n_problems (config);
  gdouble k1, b;
  json_t *document;
  gsize i;

  if (!g_key_file_has_group (chime_config_get_key_file (config), section))
    {
      g_autofree char *location = chime_config_describe_location (config, "pipeline", "retriever");

      chime_config_add_problem (config, "no [%s] section for 'retriever = %s'%s: add one with a 'corpus'",
                                section, name, location);
      return NULL;
    }
  retriever = g_new0 (ChimeRetriever, 1);
  chime_config_check_keys (config, section, retriever_keys);
  chime_config_read_int (config, section, "top_k", 4, 1, 100, &retriever->top_k);
  chime_config_read_double (config, section, "k1", 1.2, 0.0, 10.0, &k1);
  chime_config_read_double (config, section, "b", 0.75, 0.0, 1.0, &b);
  retriever->documents = read_corpus (config, section);
  if (chime_config_get_n_problems (config) != problems)
    return NULL;
  json_array_foreach (retriever->documents, i, document)
    g_ptr_array_add (texts, (gpointer) json_string_value (json_object_get (document, "page_content")));
  retriever->index = chime_bm25_new ((const char *const *) texts->pdata, texts->len, k1, b);
  return g_steal_pointer (&retriever);
}

json_t *
chime_retriever_search (ChimeRetriever *retriever,
                        const char     *query)
{
  g_autoptr (GArray) best = chime_bm25_search (retriever->index, query, (guint) retriever->top_k);
  json_t *documents = json_array ();

  for (guint i = 0; i < best->len; i++)
    json_array_append (documents, json_array_get (retriever->documents, g_array_index (best, guint, i)));
  return documents;
}

char *
chime_retriever_format (json_t *documents)
{
  GString *text = g_string_new (NULL);
  json_t *document;
  gsize i;

  json_array_foreach (documents, i, document)
    {
      if (i > 0)
        g_string_append (text, "\n\n");
      g_string_append (text, json_string_value (json_object_get (document, "page_content")));
    }
  return g_string_free (text, FALSE);
}
