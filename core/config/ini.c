/* INI files: GKeyFile values plus line numbers and duplicate detection. */
#include "config.h"

#include "ini.h"
#include "suggest.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

struct _ChimeIni {
  gint        ref_count;
  GKeyFile   *key_file;
  char       *source_name;
  char       *path;
  char       *base_dir;
  /* "section" -> line, and "section\nkey" -> line, from the raw text. */
  GHashTable *lines;
};

static char *
line_key (const char *section,
          const char *key)
{
  return key != NULL ? g_strconcat (section, "\n", key, NULL) : g_strdup (section);
}

/* Walks the raw text the way GKeyFile reads it ('#' comments, [group],
 * key=value) to remember line numbers and to find what GKeyFile would
 * silently merge: a section or a key given twice. */
static void
scan_lines (ChimeIni      *ini,
            const char    *text,
            ChimeProblems *problems)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree char *section = NULL;

  for (guint n = 0; lines[n] != NULL; n++)
    {
      g_autofree char *line = g_strstrip (g_strdup (lines[n]));
      char *equals;
      g_autofree char *key = NULL;
      g_autofree char *where = NULL;

      if (line[0] == '\0' || line[0] == '#')
        continue;
      if (line[0] == '[' && line[strlen (line) - 1] == ']')
        {
          g_free (section);
          section = g_strndup (line + 1, strlen (line) - 2);
          if (g_hash_table_contains (ini->lines, section))
            chime_problems_add (problems, "section [%s] appears twice in %s (lines %u and %u); "
                                "each section may appear once",
                                section, ini->source_name,
                                GPOINTER_TO_UINT (g_hash_table_lookup (ini->lines, section)), n + 1);
          else
            g_hash_table_insert (ini->lines, g_strdup (section), GUINT_TO_POINTER (n + 1));
          continue;
        }
      equals = strchr (line, '=');
      if (section == NULL || equals == NULL)
        continue;
      key = g_strstrip (g_strndup (line, equals - line));
      where = line_key (section, key);
      if (g_hash_table_contains (ini->lines, where))
        chime_problems_add (problems, "key '%s' appears twice in [%s] of %s (lines %u and %u)",
                            key, section, ini->source_name,
                            GPOINTER_TO_UINT (g_hash_table_lookup (ini->lines, where)), n + 1);
      else
        g_hash_table_insert (ini->lines, g_steal_pointer (&where), GUINT_TO_POINTER (n + 1));
    }
}

static ChimeIni *
chime_ini_alloc (GKeyFile   *key_file,
                 const char *source_name,
                 const char *base_dir)
{
  ChimeIni *ini = g_new0 (ChimeIni, 1);

  ini->ref_count = 1;
  ini->key_file = g_key_file_ref (key_file);
  ini->source_name = g_strdup (source_name != NULL ? source_name : "<configuration>");
  ini->base_dir = base_dir != NULL ? g_strdup (base_dir) : g_get_current_dir ();
  ini->lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return ini;
}

ChimeIni *
chime_ini_new_from_data (const char    *text,
                         const char    *source_name,
                         const char    *base_dir,
                         ChimeProblems *problems,
                         GError       **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;
  ChimeIni *ini;

  if (!g_key_file_load_from_data (key_file, text, -1, G_KEY_FILE_NONE, &local_error))
    {
      g_set_error (error, G_KEY_FILE_ERROR, local_error->code,
                   "%s is not a valid INI file: %s", source_name, local_error->message);
      return NULL;
    }
  ini = chime_ini_alloc (key_file, source_name, base_dir);
  scan_lines (ini, text, problems);
  return ini;
}

ChimeIni *
chime_ini_new_from_file (const char    *path,
                         ChimeProblems *problems,
                         GError       **error)
{
  g_autofree char *text = NULL;
  g_autofree char *absolute = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *base = g_path_get_basename (path);
  g_autoptr (GError) local_error = NULL;
  ChimeIni *ini;

  if (!g_file_get_contents (path, &text, NULL, &local_error))
    {
      g_set_error (error, G_FILE_ERROR, local_error->code,
                   "cannot read configuration: %s", local_error->message);
      return NULL;
    }
  absolute = g_canonicalize_filename (path, NULL);
  dir = g_path_get_dirname (absolute);
  ini = chime_ini_new_from_data (text, path, dir, problems, error);
  if (ini == NULL)
    return NULL;
  /* Messages name the file as the user wrote it, without its folder. */
  g_free (ini->source_name);
  ini->source_name = g_steal_pointer (&base);
  ini->path = g_steal_pointer (&absolute);
  return ini;
}

ChimeIni *
chime_ini_new_from_key_file (GKeyFile   *key_file,
                             const char *source_name,
                             const char *base_dir)
{
  return chime_ini_alloc (key_file, source_name, base_dir);
}

ChimeIni *
chime_ini_ref (ChimeIni *ini)
{
  g_atomic_int_inc (&ini->ref_count);
  return ini;
}

void
chime_ini_unref (ChimeIni *ini)
{
  if (ini == NULL || !g_atomic_int_dec_and_test (&ini->ref_count))
    return;
  g_key_file_unref (ini->key_file);
  g_hash_table_unref (ini->lines);
  g_free (ini->source_name);
  g_free (ini->path);
  g_free (ini->base_dir);
  g_free (ini);
}

GKeyFile *
chime_ini_get_key_file (ChimeIni *ini)
{
  return ini->key_file;
}

const char *
chime_ini_get_source_name (ChimeIni *ini)
{
  return ini->source_name;
}

const char *
chime_ini_get_path (ChimeIni *ini)
{
  return ini->path;
}

const char *
chime_ini_get_base_dir (ChimeIni *ini)
{
  return ini->base_dir;
}

char *
chime_ini_resolve_path (ChimeIni   *ini,
                        const char *path)
{
  g_autofree char *expanded = NULL;

  if (g_str_has_prefix (path, "~/"))
    expanded = g_build_filename (g_get_home_dir (), path + 2, NULL);
  else
    expanded = g_strdup (path);
  return g_canonicalize_filename (expanded, ini->base_dir);
}

void
chime_ini_merge (ChimeIni *ini,
                 GKeyFile *extra)
{
  g_auto (GStrv) groups = NULL;

  if (extra == NULL)
    return;
  groups = g_key_file_get_groups (extra, NULL);
  for (guint g = 0; groups[g] != NULL; g++)
    {
      g_auto (GStrv) keys = g_key_file_get_keys (extra, groups[g], NULL, NULL);
      for (guint k = 0; keys != NULL && keys[k] != NULL; k++)
        {
          g_autofree char *value = g_key_file_get_value (extra, groups[g], keys[k], NULL);
          g_key_file_set_value (ini->key_file, groups[g], keys[k], value);
        }
    }
}

char *
chime_ini_describe_location (ChimeIni   *ini,
                             const char *section,
                             const char *key)
{
  g_autofree char *where = line_key (section, key);
  guint line = GPOINTER_TO_UINT (g_hash_table_lookup (ini->lines, where));

  if (line == 0 && key != NULL)
    {
      /* A missing key: point at its section instead. */
      line = GPOINTER_TO_UINT (g_hash_table_lookup (ini->lines, section));
    }
  if (line > 0)
    return g_strdup_printf (" in [%s] of %s (line %u)", section, ini->source_name, line);
  return g_strdup_printf (" in [%s] of %s", section, ini->source_name);
}

void
chime_ini_check_keys (ChimeIni           *ini,
                      ChimeProblems      *problems,
                      const char         *section,
                      const char * const *valid_keys)
{
  g_auto (GStrv) keys = g_key_file_get_keys (ini->key_file, section, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *location = NULL;
      g_autofree char *suffix = NULL;

      if (g_strv_contains (valid_keys, keys[i]))
        continue;
      location = chime_ini_describe_location (ini, section, keys[i]);
      suffix = chime_suggestion_suffix (keys[i], valid_keys, "keys");
      chime_problems_add (problems, "unknown key '%s'%s%s", keys[i], location, suffix);
    }
}

static void
report_invalid (ChimeIni      *ini,
                ChimeProblems *problems,
                const char    *section,
                const char    *key,
                const char    *value,
                const char    *expected)
{
  g_autofree char *location = chime_ini_describe_location (ini, section, key);

  chime_problems_add (problems, "invalid value '%s' for '%s'%s: expected %s",
                      value, key, location, expected);
}

/* The raw value, or NULL when the key is absent. */
static char *
raw_value (ChimeIni   *ini,
           const char *section,
           const char *key)
{
  char *value = g_key_file_get_value (ini->key_file, section, key, NULL);

  return value != NULL ? g_strstrip (value) : NULL;
}

gboolean
chime_ini_parse_bool (const char *value,
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

gboolean
chime_ini_read_bool (ChimeIni      *ini,
                     ChimeProblems *problems,
                     const char    *section,
                     const char    *key,
                     gboolean       default_value,
                     gboolean      *out)
{
  g_autofree char *value = raw_value (ini, section, key);

  *out = default_value;
  if (value == NULL)
    return TRUE;
  if (chime_ini_parse_bool (value, out))
    return TRUE;
  report_invalid (ini, problems, section, key, value, "true or false");
  return FALSE;
}

gboolean
chime_ini_read_int (ChimeIni      *ini,
                    ChimeProblems *problems,
                    const char    *section,
                    const char    *key,
                    gint64         default_value,
                    gint64         min,
                    gint64         max,
                    gint64        *out)
{
  g_autofree char *value = raw_value (ini, section, key);
  g_autofree char *expected = NULL;
  gint64 parsed;

  *out = default_value;
  if (value == NULL)
    return TRUE;
  if (g_ascii_string_to_signed (value, 10, min, max, &parsed, NULL))
    {
      *out = parsed;
      return TRUE;
    }
  expected = g_strdup_printf ("a whole number from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                              min, max);
  report_invalid (ini, problems, section, key, value, expected);
  return FALSE;
}

gboolean
chime_ini_read_double (ChimeIni      *ini,
                       ChimeProblems *problems,
                       const char    *section,
                       const char    *key,
                       gdouble        default_value,
                       gdouble        min,
                       gdouble        max,
                       gdouble       *out)
{
  g_autofree char *value = raw_value (ini, section, key);
  g_autofree char *expected = NULL;
  char *end = NULL;
  gdouble parsed;

  *out = default_value;
  if (value == NULL)
    return TRUE;
  parsed = g_ascii_strtod (value, &end);
  if (end != value && *end == '\0' && parsed >= min && parsed <= max)
    {
      *out = parsed;
      return TRUE;
    }
  expected = g_strdup_printf ("a number from %g to %g", min, max);
  report_invalid (ini, problems, section, key, value, expected);
  return FALSE;
}

gboolean
chime_ini_read_choice (ChimeIni           *ini,
                       ChimeProblems      *problems,
                       const char         *section,
                       const char         *key,
                       const char * const *choices,
                       guint               default_value,
                       guint              *out)
{
  g_autofree char *value = raw_value (ini, section, key);
  g_autofree char *location = NULL;
  g_autofree char *list = NULL;
  const char *match;

  *out = default_value;
  if (value == NULL)
    return TRUE;
  for (guint i = 0; choices[i] != NULL; i++)
    if (g_str_equal (value, choices[i]))
      {
        *out = i;
        return TRUE;
      }
  location = chime_ini_describe_location (ini, section, key);
  list = g_strjoinv (", ", (char **) choices);
  match = chime_suggest (value, choices);
  if (match != NULL)
    chime_problems_add (problems, "invalid value '%s' for '%s'%s; did you mean '%s'? (one of %s)",
                        value, key, location, match, list);
  else
    chime_problems_add (problems, "invalid value '%s' for '%s'%s: expected one of %s",
                        value, key, location, list);
  return FALSE;
}

char *
chime_ini_read_string (ChimeIni   *ini,
                       const char *section,
                       const char *key,
                       const char *default_value)
{
  char *value = g_key_file_get_string (ini->key_file, section, key, NULL);

  if (value == NULL)
    return g_strdup (default_value);
  return g_strstrip (value);
}

char *
chime_ini_read_raw (ChimeIni   *ini,
                    const char *section,
                    const char *key)
{
  char *value = g_key_file_get_value (ini->key_file, section, key, NULL);

  return value != NULL ? g_strstrip (value) : NULL;
}

char **
chime_ini_split_list (const char *value)
{
  g_auto (GStrv) parts = g_regex_split_simple ("[,;\\s]+", value != NULL ? value : "", 0, 0);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      g_strv_builder_add (builder, parts[i]);
  return g_strv_builder_end (builder);
}

char **
chime_ini_read_list (ChimeIni   *ini,
                     const char *section,
                     const char *key,
                     const char *default_value)
{
  g_autofree char *value = chime_ini_read_string (ini, section, key, default_value);

  return chime_ini_split_list (value);
}

char **
chime_ini_read_json_strings (ChimeIni      *ini,
                             ChimeProblems *problems,
                             const char    *section,
                             const char    *key,
                             const char    *example)
{
  g_autofree char *text = chime_ini_read_raw (ini, section, key);
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
      g_autofree char *location = chime_ini_describe_location (ini, section, key);

      chime_problems_add (problems, "invalid value for '%s'%s: expected a JSON array of strings like %s%s%s",
                          key, location, example, array == NULL ? ": " : "", array == NULL ? error.text : "");
      if (array != NULL)
        json_decref (array);
      return NULL;
    }
  json_array_foreach (array, i, item)
    {
      if (!json_is_string (item))
        {
          g_autofree char *location = chime_ini_describe_location (ini, section, key);

          chime_problems_add (problems, "invalid value for '%s'%s: element %zu is not a string",
                              key, location, i);
          json_decref (array);
          return NULL;
        }
      g_strv_builder_add (builder, json_string_value (item));
    }
  json_decref (array);
  return g_strv_builder_end (builder);
}
