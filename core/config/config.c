/* Configurations: GKeyFile values plus line numbers, duplicate detection,
 * the problems found so far and the section kinds a program declared. The
 * typed readers are in config-readers.c. */
#include "config.h"

#include "config-private.h"
#include "suggest.h"

#include <string.h>

#define UTF8_BOM "\xEF\xBB\xBF"

struct _ChimeConfig {
  gint           ref_count;
  GKeyFile      *key_file;
  char          *source_name;
  char          *path;
  char          *base_dir;
  /* "section" -> line, and "section\nkey" -> line, from the raw text. */
  GHashTable    *lines;
  /* "section\nkey" of the values whose problem is already recorded. */
  GHashTable    *reported;
  ChimeProblems *problems;
  /* Section kinds, in the order declared: [runtime] and [handler NAME]
   * first, then the program's. */
  GArray        *kinds;   /* SectionKind */
};

typedef struct {
  char    *kind;
  gboolean named;
} SectionKind;

static void
section_kind_clear (gpointer data)
{
  g_free (((SectionKind *) data)->kind);
}

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
scan_lines (ChimeConfig *config,
            const char  *text)
{
  ChimeProblems *problems = config->problems;
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
          if (!g_utf8_validate (section, -1, NULL))
            chime_problems_add (problems, "the section name on line %u of %s is not UTF-8 text; "
                                "save the file as UTF-8", n + 1, config->source_name);
          if (g_hash_table_contains (config->lines, section))
            chime_problems_add (problems, "section [%s] appears twice in %s (lines %u and %u); "
                                "each section may appear once",
                                section, config->source_name,
                                GPOINTER_TO_UINT (g_hash_table_lookup (config->lines, section)), n + 1);
          else
            g_hash_table_insert (config->lines, g_strdup (section), GUINT_TO_POINTER (n + 1));
          continue;
        }
      equals = strchr (line, '=');
      if (section == NULL || equals == NULL)
        continue;
      key = g_strstrip (g_strndup (line, equals - line));
      if (!g_utf8_validate (key, -1, NULL))
        chime_problems_add (problems, "the key name on line %u of %s is not UTF-8 text; "
                            "save the file as UTF-8", n + 1, config->source_name);
      where = line_key (section, key);
      if (g_hash_table_contains (config->lines, where))
        chime_problems_add (problems, "key '%s' appears twice in [%s] of %s (lines %u and %u)",
                            key, section, config->source_name,
                            GPOINTER_TO_UINT (g_hash_table_lookup (config->lines, where)), n + 1);
      else
        g_hash_table_insert (config->lines, g_steal_pointer (&where), GUINT_TO_POINTER (n + 1));
    }
}

static ChimeConfig *
chime_config_alloc (GKeyFile   *key_file,
                    const char *source_name,
                    const char *base_dir)
{
  ChimeConfig *config = g_new0 (ChimeConfig, 1);

  config->ref_count = 1;
  config->key_file = g_key_file_ref (key_file);
  config->source_name = g_strdup (source_name != NULL ? source_name : "<configuration>");
  config->base_dir = base_dir != NULL ? g_strdup (base_dir) : g_get_current_dir ();
  config->lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config->reported = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  config->problems = chime_problems_new ();
  config->kinds = g_array_new (FALSE, FALSE, sizeof (SectionKind));
  g_array_set_clear_func (config->kinds, section_kind_clear);
  chime_config_accept_section (config, "runtime", FALSE);
  chime_config_accept_section (config, "handler", TRUE);
  return config;
}

/* GKeyFile reads text up to its first NUL and drops the rest unseen. */
static gboolean
check_no_nul (const char *text,
              gsize       length,
              const char *name,
              GError    **error)
{
  const char *nul = memchr (text, '\0', length);
  guint line = 1;

  if (nul == NULL)
    return TRUE;
  for (const char *p = text; p < nul; p++)
    line += *p == '\n';
  g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
               "%s is not a valid INI file: line %u has a NUL byte; a configuration is text",
               name, line);
  return FALSE;
}

/* GKeyFile takes comments only on lines starting with '#'; many INI
 * dialects (PHP's, Python's configparser) take ';' too, and GLib's own
 * message ("contains line ... which is not a key-value pair") does not
 * say so. The first such line, with the fix, or NULL. */
static char *
semicolon_comment_hint (const char *text,
                        const char *reason)
{
  guint number = 1;

  for (const char *line = text; *line != '\0'; number++)
    {
      const char *end = strchr (line, '\n');
      const char *p = line;

      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == ';')
        {
          gsize length = (end != NULL ? (gsize) (end - p) : strlen (p));
          g_autofree char *quoted = g_utf8_make_valid (p, length);

          /* Only when it is the line GKeyFile stopped at. */
          if (strstr (reason, g_strchomp (quoted)) == NULL)
            return NULL;
          return g_strdup_printf ("line %u (\"%s\") is a ';' comment, and comments start with '#' "
                                  "here: write \"#%s\"", number, quoted, quoted + 1);
        }
      if (end == NULL)
        break;
      line = end + 1;
    }
  return NULL;
}

ChimeConfig *
chime_config_new_from_data (const char *text,
                            const char *source_name,
                            const char *base_dir,
                            GError    **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;
  ChimeConfig *config;

  /* A byte order mark, as some Windows editors write at the start of a
   * UTF-8 file; GKeyFile would take it as part of the first line. */
  if (g_str_has_prefix (text, UTF8_BOM))
    text += strlen (UTF8_BOM);
  /* Translations are kept so that `key[fr] =` is always an unknown key,
   * not one that GKeyFile drops silently in every other locale. */
  if (!g_key_file_load_from_data (key_file, text, -1, G_KEY_FILE_KEEP_TRANSLATIONS, &local_error))
    {
      /* GKeyFile quotes the offending line as it is, UTF-8 or not. */
      g_autofree char *reason = g_utf8_make_valid (local_error->message, -1);

      g_autofree char *hint = semicolon_comment_hint (text, reason);

      if (hint != NULL)
        g_set_error (error, G_KEY_FILE_ERROR, local_error->code, "%s is not a valid INI file: %s",
                     source_name, hint);
      else
        g_set_error (error, G_KEY_FILE_ERROR, local_error->code,
                     "%s is not a valid INI file: %s", source_name, reason);
      return NULL;
    }
  config = chime_config_alloc (key_file, source_name, base_dir);
  scan_lines (config, text);
  return config;
}

ChimeConfig *
chime_config_new_from_file (const char *path,
                            GError    **error)
{
  g_autofree char *text = NULL;
  g_autofree char *absolute = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *base = g_path_get_basename (path);
  g_autoptr (GError) local_error = NULL;
  gsize length = 0;
  ChimeConfig *config;

  if (!chime_file_get_contents (path, CHIME_CONFIG_MAX_FILE_SIZE, &text, &length, &local_error))
    {
      g_set_error (error, G_FILE_ERROR, local_error->code,
                   "cannot read configuration: %s", local_error->message);
      return NULL;
    }
  if (!check_no_nul (text, length, path, error))
    return NULL;
  absolute = g_canonicalize_filename (path, NULL);
  dir = g_path_get_dirname (absolute);
  config = chime_config_new_from_data (text, path, dir, error);
  if (config == NULL)
    return NULL;
  /* Messages name the file as the user wrote it, without its folder. */
  g_free (config->source_name);
  config->source_name = g_steal_pointer (&base);
  config->path = g_steal_pointer (&absolute);
  return config;
}

ChimeConfig *
chime_config_new_from_key_file (GKeyFile   *key_file,
                                const char *source_name,
                                const char *base_dir)
{
  g_return_val_if_fail (key_file != NULL, NULL);
  return chime_config_alloc (key_file, source_name, base_dir);
}

ChimeConfig *
chime_config_ref (ChimeConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);
  g_atomic_int_inc (&config->ref_count);
  return config;
}

void
chime_config_unref (ChimeConfig *config)
{
  if (config == NULL || !g_atomic_int_dec_and_test (&config->ref_count))
    return;
  g_key_file_unref (config->key_file);
  g_hash_table_unref (config->lines);
  g_hash_table_unref (config->reported);
  chime_problems_free (config->problems);
  g_array_unref (config->kinds);
  g_free (config->source_name);
  g_free (config->path);
  g_free (config->base_dir);
  g_free (config);
}

GKeyFile *
chime_config_get_key_file (ChimeConfig *config)
{
  return config->key_file;
}

const char *
chime_config_get_source_name (ChimeConfig *config)
{
  return config->source_name;
}

const char *
chime_config_get_path (ChimeConfig *config)
{
  return config->path;
}

const char *
chime_config_get_base_dir (ChimeConfig *config)
{
  return config->base_dir;
}

char *
chime_config_resolve_path (ChimeConfig *config,
                           const char  *path)
{
  g_autofree char *expanded = NULL;

  if (g_str_has_prefix (path, "~/"))
    expanded = g_build_filename (g_get_home_dir (), path + 2, NULL);
  else
    expanded = g_strdup (path);
  return g_canonicalize_filename (expanded, config->base_dir);
}

gboolean
chime_config_first_report (ChimeConfig *config,
                           const char  *section,
                           const char  *key)
{
  return g_hash_table_add (config->reported, line_key (section, key));
}

void
chime_config_merge (ChimeConfig *config,
                    GKeyFile    *extra)
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
          g_key_file_set_value (config->key_file, groups[g], keys[k], value);
        }
    }
}

char *
chime_config_describe_location (ChimeConfig *config,
                                const char  *section,
                                const char  *key)
{
  g_autofree char *where = line_key (section, key);
  guint line = GPOINTER_TO_UINT (g_hash_table_lookup (config->lines, where));

  if (line == 0 && key != NULL)
    {
      /* A missing key: point at its section instead. */
      line = GPOINTER_TO_UINT (g_hash_table_lookup (config->lines, section));
    }
  if (line > 0)
    return g_strdup_printf (" in [%s] of %s (line %u)", section, config->source_name, line);
  return g_strdup_printf (" in [%s] of %s", section, config->source_name);
}


/* ------------------------------------------------------------------
 * Problems and section kinds
 * ---------------------------------------------------------------- */

void
chime_config_add_problem (ChimeConfig *config,
                          const char  *format,
                          ...)
{
  va_list args;

  g_return_if_fail (config != NULL && format != NULL);
  va_start (args, format);
  chime_problems_add_valist (config->problems, format, args);
  va_end (args);
}

guint
chime_config_get_n_problems (ChimeConfig *config)
{
  return chime_problems_count (config->problems);
}

ChimeProblems *
chime_config_get_problems (ChimeConfig *config)
{
  return config->problems;
}

gboolean
chime_config_check (ChimeConfig *config,
                    GError     **error)
{
  return chime_problems_to_error (config->problems, CHIME_CONFIG_ERROR,
                                  CHIME_CONFIG_ERROR_INVALID, error);
}

static SectionKind *
find_kind (ChimeConfig *config,
           const char  *kind)
{
  for (guint i = 0; i < config->kinds->len; i++)
    {
      SectionKind *known = &g_array_index (config->kinds, SectionKind, i);
      if (g_str_equal (known->kind, kind))
        return known;
    }
  return NULL;
}

void
chime_config_accept_section (ChimeConfig *config,
                             const char  *kind,
                             gboolean     named)
{
  SectionKind *known;
  SectionKind added;

  g_return_if_fail (config != NULL && kind != NULL && kind[0] != '\0');
  known = find_kind (config, kind);
  if (known != NULL)
    {
      known->named = named;
      return;
    }
  added.kind = g_strdup (kind);
  added.named = named;
  g_array_append_val (config->kinds, added);
}

/* The first word of a section name: "handler" for "handler foo". */
static char *
section_kind (const char *section)
{
  const char *space = section;

  while (*space != '\0' && !g_ascii_isspace (*space))
    space++;
  return g_strndup (section, space - section);
}

/* [model NAME] needs its name, [pipeline] takes none: else the section
 * would be read under another name, or not at all. */
static void
check_section_name_part (ChimeConfig       *config,
                         const char        *section,
                         const SectionKind *known)
{
  const char *name = section + strlen (known->kind);

  while (g_ascii_isspace (*name))
    name++;
  if (known->named && *name == '\0')
    chime_config_add_problem (config, "section [%s] in %s needs a name: write [%s NAME]",
                              section, config->source_name, known->kind);
  else if (!known->named && *name != '\0')
    chime_config_add_problem (config, "section [%s] in %s takes no name: write [%s]",
                              section, config->source_name, known->kind);
}

void
chime_config_check_section_name (ChimeConfig *config,
                                 const char  *section)
{
  g_autofree char *kind = section_kind (section);
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  g_autoptr (GString) valid = g_string_new (NULL);
  g_auto (GStrv) kinds = NULL;
  const SectionKind *found = find_kind (config, kind);
  const char *match;

  if (found != NULL)
    {
      check_section_name_part (config, section, found);
      return;
    }
  for (guint i = 0; i < config->kinds->len; i++)
    {
      SectionKind *known = &g_array_index (config->kinds, SectionKind, i);

      g_strv_builder_add (names, known->kind);
      g_string_append_printf (valid, "%s[%s%s]", i > 0 ? ", " : "", known->kind,
                              known->named ? " NAME" : "");
    }
  kinds = g_strv_builder_end (names);
  match = chime_suggest (kind, (const char * const *) kinds);
  if (match != NULL)
    chime_config_add_problem (config, "unknown section [%s] in %s; did you mean [%s%s]?",
                              section, config->source_name, match,
                              find_kind (config, match)->named ? " NAME" : "");
  else
    chime_config_add_problem (config, "unknown section [%s] in %s; valid sections: %s",
                              section, config->source_name, valid->str);
}
