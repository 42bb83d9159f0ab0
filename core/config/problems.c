/* Collected configuration problems. */
#include "config.h"

#include "problems.h"

#include <stdlib.h>
#include <string.h>

struct _ChimeProblems {
  GPtrArray *messages;
};

ChimeProblems *
chime_problems_new (void)
{
  ChimeProblems *problems = g_new0 (ChimeProblems, 1);

  problems->messages = g_ptr_array_new_with_free_func (g_free);
  return problems;
}

void
chime_problems_free (ChimeProblems *problems)
{
  if (problems == NULL)
    return;
  g_ptr_array_unref (problems->messages);
  g_free (problems);
}

void
chime_problems_add (ChimeProblems *problems,
                    const char    *format,
                    ...)
{
  va_list args;

  va_start (args, format);
  chime_problems_add_valist (problems, format, args);
  va_end (args);
}

void
chime_problems_add_valist (ChimeProblems *problems,
                           const char    *format,
                           va_list        args)
{
  g_autofree char *message = g_strdup_vprintf (format, args);

  /* Messages quote the file (a section name, a value), which GKeyFile
   * does not always hold to UTF-8; what is printed or put in an event
   * must be. */
  g_ptr_array_add (problems->messages, g_utf8_make_valid (message, -1));
}

guint
chime_problems_count (ChimeProblems *problems)
{
  return problems->messages->len;
}

/* The N of the first "(line N)" in @message, or G_MAXUINT: a problem
 * without a line goes after those with one. */
static guint
problem_line (const char *message)
{
  for (const char *at = strstr (message, "(line "); at != NULL; at = strstr (at + 1, "(line "))
    {
      char *end = NULL;
      guint64 line = g_ascii_strtoull (at + strlen ("(line "), &end, 10);

      if (end != at + strlen ("(line ") && *end == ')')
        return (guint) MIN (line, G_MAXUINT - 1);
    }
  return G_MAXUINT;
}

static gint
compare_lines (gconstpointer a,
               gconstpointer b)
{
  guint line_a = problem_line (*(const char * const *) a);
  guint line_b = problem_line (*(const char * const *) b);

  return line_a < line_b ? -1 : line_a > line_b;
}

gboolean
chime_problems_to_error (ChimeProblems *problems,
                         GQuark         domain,
                         gint           code,
                         GError       **error)
{
  g_autoptr (GString) text = NULL;

  if (problems->messages->len == 0)
    return TRUE;
  if (problems->messages->len == 1)
    {
      g_set_error_literal (error, domain, code, g_ptr_array_index (problems->messages, 0));
      return FALSE;
    }
  /* In the file's order, as an editor shows it, not in the order the
   * sections were checked (g_ptr_array_sort is stable: problems of one
   * line keep theirs). */
  g_ptr_array_sort (problems->messages, compare_lines);
  text = g_string_new (NULL);
  for (guint i = 0; i < problems->messages->len; i++)
    {
      if (i > 0)
        g_string_append_c (text, '\n');
      g_string_append (text, g_ptr_array_index (problems->messages, i));
    }
  g_set_error_literal (error, domain, code, text->str);
  return FALSE;
}
