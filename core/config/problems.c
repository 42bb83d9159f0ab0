/* Collected configuration problems. */
#include "config.h"

#include "problems.h"

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
