/* Prompt templates with {var} placeholders. */
#include "config.h"

#include "prompt.h"
#include <chime/chime.h>

#include <string.h>

/* Walks @template_text, appending literal text to @out (when non-NULL) and
 * calling @on_variable for each placeholder. */
static gboolean
scan (const char  *template_text,
      GString     *out,
      gboolean   (*on_variable) (const char *name, gpointer data, GString *out, GError **error),
      gpointer     data,
      GError     **error)
{
  const char *p = template_text;

  while (*p != '\0')
    {
      const char *close;
      g_autofree char *name = NULL;

      if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}'))
        {
          if (out != NULL)
            g_string_append_c (out, p[0]);
          p += 2;
          continue;
        }
      if (*p == '}')
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                       "the prompt has a single '}' at \"%.20s\" (write '}}' for a literal brace)", p);
          return FALSE;
        }
      if (*p != '{')
        {
          if (out != NULL)
            g_string_append_c (out, *p);
          p++;
          continue;
        }
      close = strchr (p, '}');
      if (close == NULL)
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                       "the prompt has an unclosed '{' at \"%.20s\" (write '{{' for a literal brace)", p);
          return FALSE;
        }
      name = g_strstrip (g_strndup (p + 1, close - p - 1));
      if (name[0] == '\0')
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                       "the prompt has an empty placeholder '{}' (write '{{}}' for literal braces)");
          return FALSE;
        }
      if (!on_variable (name, data, out, error))
        return FALSE;
      p = close + 1;
    }
  return TRUE;
}

static gboolean
collect_name (const char *name,
              gpointer    data,
              GString    *out,
              GError    **error)
{
  GPtrArray *names = data;

  if (!g_ptr_array_find_with_equal_func (names, name, g_str_equal, NULL))
    g_ptr_array_add (names, g_strdup (name));
  return TRUE;
}

gboolean
chime_prompt_variables (const char *template_text,
                        GPtrArray **out_names,
                        GError    **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  if (!scan (template_text, NULL, collect_name, names, error))
    return FALSE;
  *out_names = g_steal_pointer (&names);
  return TRUE;
}

static gboolean
substitute (const char *name,
            gpointer    data,
            GString    *out,
            GError    **error)
{
  GHashTable *variables = data;
  const char *value = g_hash_table_lookup (variables, name);

  if (value == NULL)
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                   "the prompt uses {%s}, but no value was given for it (pass --var %s=VALUE%s)",
                   name, name, g_str_equal (name, "input") ? " or --input TEXT" : "");
      return FALSE;
    }
  g_string_append (out, value);
  return TRUE;
}

char *
chime_prompt_render (const char *template_text,
                     GHashTable *variables,
                     GError    **error)
{
  g_autoptr (GString) out = g_string_new (NULL);

  if (!scan (template_text, out, substitute, variables, error))
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}
