/* The syntax of values, shared by the typed readers (config-readers.c)
 * and the typed keys of plugins (plugins/handler-context.c), so that a
 * value means the same wherever it is read: booleans, decimal numbers,
 * GKeyFile's escapes. */
#include "config.h"

#include "config-private.h"

#include <math.h>
#include <string.h>

gboolean
chime_config_parse_bool (const char *value,
                         gboolean   *out)
{
  static const char *const truthy[] = { "true", "yes", "on", "1", NULL };
  static const char *const falsy[] = { "false", "no", "off", "0", NULL };

  for (guint i = 0; truthy[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (value, truthy[i]) == 0)
        {
          *out = TRUE;
          return TRUE;
        }
      if (g_ascii_strcasecmp (value, falsy[i]) == 0)
        {
          *out = FALSE;
          return TRUE;
        }
    }
  return FALSE;
}

static const char *
skip_digits (const char *p)
{
  while (g_ascii_isdigit (*p))
    p++;
  return p;
}

/* TRUE when @value is [+-]DIGITS[.DIGITS][(e|E)[+-]DIGITS], with a digit
 * before or after the point. */
static gboolean
is_decimal (const char *value)
{
  const char *p = value;
  const char *start;
  gboolean digits;

  if (*p == '+' || *p == '-')
    p++;
  start = p;
  p = skip_digits (p);
  digits = p > start;
  if (*p == '.')
    {
      start = ++p;
      p = skip_digits (p);
      digits = digits || p > start;
    }
  if (!digits)
    return FALSE;
  if (*p == 'e' || *p == 'E')
    {
      p++;
      if (*p == '+' || *p == '-')
        p++;
      start = p;
      p = skip_digits (p);
      if (p == start)
        return FALSE;
    }
  return *p == '\0';
}

gboolean
chime_config_parse_double (const char *value,
                           gdouble    *out)
{
  gdouble parsed;

  if (!is_decimal (value))
    return FALSE;
  parsed = g_ascii_strtod (value, NULL);
  /* 1e999 overflows to infinity: no range of chime's includes it. */
  if (!isfinite (parsed))
    return FALSE;
  *out = parsed;
  return TRUE;
}

char *
chime_config_unescape (const char  *raw,
                       char       **bad_escape)
{
  g_autoptr (GString) out = g_string_sized_new (strlen (raw));

  for (const char *p = raw; *p != '\0'; p++)
    {
      if (*p != '\\')
        {
          g_string_append_c (out, *p);
          continue;
        }
      switch (*++p)
        {
        case 's': g_string_append_c (out, ' '); break;
        case 'n': g_string_append_c (out, '\n'); break;
        case 't': g_string_append_c (out, '\t'); break;
        case 'r': g_string_append_c (out, '\r'); break;
        case '\\': g_string_append_c (out, '\\'); break;
        case '\0':
          *bad_escape = g_strdup ("\\");
          return NULL;
        default:
          /* The whole character, which may be more than one byte. */
          *bad_escape = g_strdup_printf ("\\%.*s", (int) (g_utf8_next_char (p) - p), p);
          return NULL;
        }
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}
