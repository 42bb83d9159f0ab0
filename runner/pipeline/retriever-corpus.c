/* Reading a retriever's corpus (retriever-corpus.h): the whole file at
 * once, within CHIME_CORPUS_MAX_FILE_SIZE, then line by line. Every
 * problem names the file and the line, and says what a line must be. */
#include "config.h"

#include "retriever-corpus.h"
#include "batch-input.h"

#include <chime/chime.h>
#include <string.h>

static const char *const expected_shape =
  "each line must be a JSON object like {\"page_content\": \"...\", \"metadata\": {...}}";

/* One line as a Document; NULL and *@problem when it is not one. */
static json_t *
parse_document (const char *line,
                gsize       length,
                char      **problem)
{
  json_error_t error;
  g_autoptr (json_t) object = json_loadb (line, length, JSON_REJECT_DUPLICATES, &error);
  json_t *content, *metadata, *id;

  if (object == NULL)
    {
      *problem = g_strdup_printf ("not JSON (%s); %s", error.text, expected_shape);
      return NULL;
    }
  content = json_object_get (object, "page_content");
  metadata = json_object_get (object, "metadata");
  id = json_object_get (object, "id");
  if (!json_is_object (object) || !json_is_string (content))
    *problem = g_strdup_printf ("no string \"page_content\"; %s", expected_shape);
  else if (metadata != NULL && !json_is_object (metadata) && !json_is_null (metadata))
    *problem = g_strdup ("\"metadata\" must be a JSON object");
  else if (id != NULL && !json_is_string (id) && !json_is_null (id))
    *problem = g_strdup ("\"id\" must be a string");
  else
    return json_pack ("{s:O, s:o, s:O, s:s}", "id", id != NULL ? id : json_null (),
                      "metadata", json_is_object (metadata) ? json_incref (metadata) : json_object (),
                      "page_content", content, "type", "Document");
  return NULL;
}

json_t *
chime_corpus_load (const char *path,
                   GError    **error)
{
  g_autofree char *text = NULL;
  g_autoptr (json_t) documents = json_array ();
  gsize length;
  const char *p, *end;
  guint line_number = 0;

  if (!chime_file_get_contents (path, CHIME_CORPUS_MAX_FILE_SIZE, &text, &length, error))
    return NULL;
  if (!g_utf8_validate_len (text, length, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s is not UTF-8 text (or has a NUL byte); save it as UTF-8 JSONL", path);
      return NULL;
    }
  for (p = text, end = text + length; p < end;)
    {
      const char *newline = memchr (p, '\n', end - p);
      const char *line_end = newline != NULL ? newline : end;
      g_autofree char *problem = NULL;
      json_t *document;

      line_number++;
      if (!chime_jsonl_line_is_blank (p, line_end - p))
        {
          document = parse_document (p, line_end - p, &problem);
          if (document == NULL)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s line %u: %s", path, line_number,
                           problem);
              return NULL;
            }
          if (json_array_size (documents) >= CHIME_CORPUS_MAX_DOCUMENTS)
            {
              json_decref (document);
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "%s line %u: more than %d documents; split the corpus", path, line_number,
                           CHIME_CORPUS_MAX_DOCUMENTS);
              return NULL;
            }
          json_array_append_new (documents, document);
        }
      p = line_end + (newline != NULL ? 1 : 0);
    }
  if (json_array_size (documents) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s has no documents; %s", path,
                   expected_shape);
      return NULL;
    }
  return g_steal_pointer (&documents);
}
