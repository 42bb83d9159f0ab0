/* Typo suggestions by Levenshtein distance. */
#include "config.h"

#include "suggest.h"

#include <string.h>

static guint
edit_distance (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *row = g_new (guint, lb + 1);

  for (gsize j = 0; j <= lb; j++)
    row[j] = j;
  for (gsize i = 1; i <= la; i++)
    {
      guint diagonal = row[0];
      row[0] = i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint above = row[j];
          guint cost = g_ascii_tolower (a[i - 1]) == g_ascii_tolower (b[j - 1]) ? 0 : 1;
          row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), diagonal + cost);
          diagonal = above;
        }
    }
  return row[lb];
}

const char *
chime_suggest (const char         *word,
               const char * const *candidates)
{
  const char *best = NULL;
  guint best_distance = G_MAXUINT;
  /* A third of the word, at least one edit and at most three: "thread"
   * finds "threads", "xyz" finds nothing. */
  guint limit = CLAMP (strlen (word) / 3, 1, 3);

  for (; candidates != NULL && *candidates != NULL; candidates++)
    {
      guint distance = edit_distance (word, *candidates);
      if (distance < best_distance)
        {
          best = *candidates;
          best_distance = distance;
        }
    }
  return best_distance <= limit ? best : NULL;
}

char *
chime_suggestion_suffix (const char         *word,
                         const char * const *candidates,
                         const char         *noun)
{
  const char *match = chime_suggest (word, candidates);
  g_autofree char *list = NULL;

  if (match != NULL)
    return g_strdup_printf ("; did you mean '%s'?", match);
  if (candidates == NULL || candidates[0] == NULL)
    return g_strdup ("");
  list = g_strjoinv (", ", (char **) candidates);
  return g_strdup_printf ("; valid %s: %s", noun, list);
}

const char *
chime_suggest_inline_comment (const char *value)
{
  /* GKeyFile keeps everything after '=' on the line: `5 # wait` is the
   * value "5 # wait", which reads as "invalid value" and nothing more. */
  if (value != NULL && (strstr (value, " #") != NULL || strstr (value, "\t#") != NULL ||
                        strstr (value, " ;") != NULL || strstr (value, "\t;") != NULL))
    return " (a '#' or ';' comment after a value is part of the value in chime's INI files: "
           "put the comment on a line of its own)";
  return "";
}
