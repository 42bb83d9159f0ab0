/* The typed readers of a configuration: each reports a bad value as a
 * problem naming the file, the section and the key, so that every mistake
 * in a file is reported at once. */
#include "config.h"

#include "config-private.h"
#include "suggest.h"

#include <jansson.h>
#include <string.h>

char *
chime_config_suggestion (const char         *word,
                         const char * const *candidates,
                         const char         *noun)
{
  g_return_val_if_fail (word != NULL && candidates != NULL && noun != NULL, NULL);
  return chime_suggestion_suffix (word, candidates, noun);
}

void
chime_config_check_keys (ChimeConfig        *config,
                         const char         *section,
                         const char * const *valid_keys)
{
  g_auto (GStrv) keys = g_key_file_get_keys (chime_config_get_key_file (config), section, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *location = NULL;
      g_autofree char *suffix = NULL;
      const char *bracket = strchr (keys[i], '[');

      if (g_strv_contains (valid_keys, keys[i]))
        continue;
      location = chime_config_describe_location (config, section, keys[i]);
      if (bracket != NULL)
        {
          /* GKeyFile's translations (`key[fr] =`), which no chime key has. */
          g_autofree char *plain = g_strndup (keys[i], bracket - keys[i]);

          chime_config_add_problem (config, "unknown key '%s'%s: chime has no translated values "
                                    "(KEY[LOCALE]); write '%s =' without '%s'",
                                    keys[i], location, plain, bracket);
          continue;
        }
      suffix = chime_suggestion_suffix (keys[i], valid_keys, "keys");
      chime_config_add_problem (config, "unknown key '%s'%s%s", keys[i], location, suffix);
    }
}

static void
report_invalid (ChimeConfig *config,
                const char  *section,
                const char  *key,
                const char  *value,
                const char  *expected)
{
  g_autofree char *location = chime_config_describe_location (config, section, key);

  chime_config_add_problem (config, "invalid value '%s' for '%s'%s: expected %s%s",
                      value, key, location, expected, chime_suggest_inline_comment (value));
}

/* "invalid value for 'KEY' in [SECTION] of FILE (line N): WHY", once per
 * key: some values are read more than once. */
static void
report_once (ChimeConfig *config,
             const char  *section,
             const char  *key,
             const char  *why)
{
  g_autofree char *location = NULL;

  if (!chime_config_first_report (config, section, key))
    return;
  location = chime_config_describe_location (config, section, key);
  chime_config_add_problem (config, "invalid value for '%s'%s: %s", key, location, why);
}

char *
chime_config_lookup (ChimeConfig *config,
                     const char  *section,
                     const char  *key,
                     gboolean    *valid)
{
  g_autofree char *value = g_key_file_get_value (chime_config_get_key_file (config), section, key, NULL);
  const char *end = NULL;
  g_autofree char *why = NULL;

  *valid = TRUE;
  if (value == NULL)
    return NULL;
  g_strstrip (value);
  if (g_utf8_validate (value, -1, &end))
    return g_steal_pointer (&value);
  *valid = FALSE;
  why = g_strdup_printf ("it is not UTF-8 text (byte %" G_GSIZE_FORMAT " of the value is 0x%02X); "
                         "save the file as UTF-8", (gsize) (end - value) + 1, (guint) (guchar) *end);
  report_once (config, section, key, why);
  return g_utf8_make_valid (value, -1);
}

/* The value when it is UTF-8; else NULL, as when the key is absent, with
 * the problem recorded. *@present tells the two apart. */
static char *
raw_value (ChimeConfig *config,
           const char  *section,
           const char  *key,
           gboolean    *present)
{
  gboolean valid;
  g_autofree char *value = chime_config_lookup (config, section, key, &valid);

  *present = value != NULL;
  return valid ? g_steal_pointer (&value) : NULL;
}

gboolean
chime_config_read_bool (ChimeConfig *config,
                        const char  *section,
                        const char  *key,
                        gboolean     default_value,
                        gboolean    *out)
{
  gboolean present;
  g_autofree char *value = raw_value (config, section, key, &present);

  *out = default_value;
  if (value == NULL)
    return !present;
  if (chime_config_parse_bool (value, out))
    return TRUE;
  report_invalid (config, section, key, value, "true or false");
  return FALSE;
}

gboolean
chime_config_read_int (ChimeConfig *config,
                       const char  *section,
                       const char  *key,
                       gint64       default_value,
                       gint64       min,
                       gint64       max,
                       gint64      *out)
{
  gboolean present;
  g_autofree char *value = raw_value (config, section, key, &present);
  g_autofree char *expected = NULL;
  gint64 parsed;

  *out = default_value;
  if (value == NULL)
    return !present;
  if (g_ascii_string_to_signed (value, 10, min, max, &parsed, NULL))
    {
      *out = parsed;
      return TRUE;
    }
  expected = g_strdup_printf ("a whole number from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                              min, max);
  report_invalid (config, section, key, value, expected);
  return FALSE;
}

gboolean
chime_config_read_double (ChimeConfig *config,
                          const char  *section,
                          const char  *key,
                          gdouble      default_value,
                          gdouble      min,
                          gdouble      max,
                          gdouble     *out)
{
  gboolean present;
  g_autofree char *value = raw_value (config, section, key, &present);
  g_autofree char *expected = NULL;
  gdouble parsed;

  *out = default_value;
  if (value == NULL)
    return !present;
  if (chime_config_parse_double (value, &parsed) && parsed >= min && parsed <= max)
    {
      *out = parsed;
      return TRUE;
    }
  expected = g_strdup_printf ("a number from %g to %g", min, max);
  report_invalid (config, section, key, value, expected);
  return FALSE;
}

gboolean
chime_config_read_choice (ChimeConfig        *config,
                          const char         *section,
                          const char         *key,
                          const char * const *choices,
                          guint               default_value,
                          guint              *out)
{
  gboolean present;
  g_autofree char *value = raw_value (config, section, key, &present);
  g_autofree char *location = NULL;
  g_autofree char *list = NULL;
  const char *match;

  *out = default_value;
  if (value == NULL)
    return !present;
  for (guint i = 0; choices[i] != NULL; i++)
    if (g_str_equal (value, choices[i]))
      {
        *out = i;
        return TRUE;
      }
  location = chime_config_describe_location (config, section, key);
  list = g_strjoinv (", ", (char **) choices);
  match = chime_suggest (value, choices);
  if (match != NULL)
    chime_config_add_problem (config, "invalid value '%s' for '%s'%s; did you mean '%s'? (one of %s)",
                        value, key, location, match, list);
  else
    chime_config_add_problem (config, "invalid value '%s' for '%s'%s: expected one of %s%s",
                        value, key, location, list, chime_suggest_inline_comment (value));
  return FALSE;
}

gboolean
chime_config_read_valid_string (ChimeConfig *config,
                                const char  *section,
                                const char  *key,
                                char       **out)
{
  gboolean present;
  g_autofree char *raw = raw_value (config, section, key, &present);
  g_autofree char *bad_escape = NULL;
  g_autofree char *why = NULL;

  *out = NULL;
  if (raw == NULL)
    return !present;
  *out = chime_config_unescape (raw, &bad_escape);
  if (*out != NULL)
    {
      g_strstrip (*out);
      return TRUE;
    }
  why = g_strdup_printf ("'%s' is not an escape (the escapes are \\s \\n \\t \\r, "
                         "and \\\\ for a backslash)", bad_escape);
  report_once (config, section, key, why);
  return FALSE;
}

char *
chime_config_read_string (ChimeConfig *config,
                          const char  *section,
                          const char  *key,
                          const char  *default_value)
{
  char *value = NULL;
  gboolean valid;

  if (chime_config_read_valid_string (config, section, key, &value))
    return value != NULL ? value : g_strdup (default_value);
  /* The problem is recorded; the key is still set, as written, so that
   * the caller does not also report it missing. */
  return chime_config_lookup (config, section, key, &valid);
}

char *
chime_config_read_raw (ChimeConfig *config,
                       const char  *section,
                       const char  *key)
{
  gboolean valid;

  return chime_config_lookup (config, section, key, &valid);
}

char **
chime_config_split_list (const char *value)
{
  g_auto (GStrv) parts = g_regex_split_simple ("[,;\\s]+", value != NULL ? value : "", 0, 0);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      g_strv_builder_add (builder, parts[i]);
  return g_strv_builder_end (builder);
}

char **
chime_config_read_list (ChimeConfig *config,
                        const char  *section,
                        const char  *key,
                        const char  *default_value)
{
  g_autofree char *value = chime_config_read_string (config, section, key, default_value);

  return chime_config_split_list (value);
}

char **
chime_config_read_json_strings (ChimeConfig *config,
                                const char  *section,
                                const char  *key,
                                const char  *example)
{
  g_autofree char *text = chime_config_read_raw (config, section, key);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  json_t *array;
  json_t *item;
  json_error_t error;
  gsize i;

  if (text == NULL)
    return NULL;
  array = json_loads (text, JSON_DECODE_ANY, &error);
  if (!json_is_array (array))
    {
      g_autofree char *location = chime_config_describe_location (config, section, key);

      chime_config_add_problem (config, "invalid value for '%s'%s: expected a JSON array of strings like %s%s%s",
                          key, location, example, array == NULL ? ": " : "", array == NULL ? error.text : "");
      if (array != NULL)
        json_decref (array);
      return NULL;
    }
  json_array_foreach (array, i, item)
    {
      if (!json_is_string (item))
        {
          g_autofree char *location = chime_config_describe_location (config, section, key);

          chime_config_add_problem (config, "invalid value for '%s'%s: element %zu is not a string",
                              key, location, i);
          json_decref (array);
          return NULL;
        }
      g_strv_builder_add (builder, json_string_value (item));
    }
  json_decref (array);
  return g_strv_builder_end (builder);
}
