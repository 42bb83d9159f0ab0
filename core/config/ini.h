/* An INI file as chime reads it: a GKeyFile for the values, plus what
 * GKeyFile forgets (line numbers, duplicate sections and keys), and typed
 * readers that report every bad value as a problem naming the file, the
 * section and the key. */
#pragma once

#include <glib.h>
#include "problems.h"

typedef struct _ChimeIni ChimeIni;

/* Reads @path. A file that cannot be read or parsed is an error; duplicate
 * sections and keys are reported to @problems. */
ChimeIni   *chime_ini_new_from_file     (const char    *path,
                                         ChimeProblems *problems,
                                         GError       **error);
/* Parses INI text; @source_name names it in messages. */
ChimeIni   *chime_ini_new_from_data     (const char    *text,
                                         const char    *source_name,
                                         const char    *base_dir,
                                         ChimeProblems *problems,
                                         GError       **error);
/* Wraps an existing key file (no line numbers then). */
ChimeIni   *chime_ini_new_from_key_file (GKeyFile      *key_file,
                                         const char    *source_name,
                                         const char    *base_dir);
ChimeIni   *chime_ini_ref               (ChimeIni      *ini);
void        chime_ini_unref             (ChimeIni      *ini);

GKeyFile   *chime_ini_get_key_file      (ChimeIni *ini);
/* The file name used in messages (basename for files). */
const char *chime_ini_get_source_name   (ChimeIni *ini);
/* The absolute path when read from a file, else NULL. */
const char *chime_ini_get_path          (ChimeIni *ini);
/* The folder relative paths resolve against. */
const char *chime_ini_get_base_dir      (ChimeIni *ini);
/* Resolves @path against the base folder unless it is absolute. */
char       *chime_ini_resolve_path      (ChimeIni   *ini,
                                         const char *path);

/* Adds every key of every group of @extra (sections the caller adds). */
void        chime_ini_merge             (ChimeIni *ini,
                                         GKeyFile *extra);

/* " in [section] of file.ini (line 3)" for messages; @key may be NULL. */
char       *chime_ini_describe_location (ChimeIni   *ini,
                                         const char *section,
                                         const char *key);

/* Reports every key of @section that is not in @valid_keys, with a
 * suggestion. */
void        chime_ini_check_keys   (ChimeIni           *ini,
                                    ChimeProblems      *problems,
                                    const char         *section,
                                    const char * const *valid_keys);

/* Typed readers: when the key is absent, *out gets @default_value and
 * TRUE is returned; when its value is invalid, a problem is reported,
 * *out gets @default_value and FALSE is returned. */
gboolean    chime_ini_read_bool    (ChimeIni *ini, ChimeProblems *problems,
                                    const char *section, const char *key,
                                    gboolean default_value, gboolean *out);
gboolean    chime_ini_read_int     (ChimeIni *ini, ChimeProblems *problems,
                                    const char *section, const char *key,
                                    gint64 default_value, gint64 min, gint64 max,
                                    gint64 *out);
gboolean    chime_ini_read_double  (ChimeIni *ini, ChimeProblems *problems,
                                    const char *section, const char *key,
                                    gdouble default_value, gdouble min, gdouble max,
                                    gdouble *out);
/* @choices is NULL-terminated; *out is the index of the value. */
gboolean    chime_ini_read_choice  (ChimeIni *ini, ChimeProblems *problems,
                                    const char *section, const char *key,
                                    const char * const *choices, guint default_value,
                                    guint *out);
/* NULL when absent (and @default_value is NULL). Newly allocated. */
char       *chime_ini_read_string  (ChimeIni *ini, const char *section,
                                    const char *key, const char *default_value);
/* The value exactly as written (no GKeyFile escapes like "\n"): for JSON
 * values, whose own escapes must reach the JSON parser. Newly allocated. */
char       *chime_ini_read_raw     (ChimeIni *ini, const char *section,
                                    const char *key);
/* A list separated by commas, semicolons or whitespace. Newly allocated,
 * never NULL. */
char      **chime_ini_read_list    (ChimeIni *ini, const char *section,
                                    const char *key, const char *default_value);

/* A JSON array of strings written raw (`chunks = ["Why", " not"]`), for
 * items that may hold separators, spaces or escapes. NULL when absent, or
 * after reporting a problem that quotes @example. Newly allocated. */
char      **chime_ini_read_json_strings (ChimeIni *ini, ChimeProblems *problems,
                                         const char *section, const char *key,
                                         const char *example);

/* Parses a list value as chime_ini_read_list() does. */
char      **chime_ini_split_list   (const char *value);
/* Parses a boolean the way chime accepts them: true/false, yes/no, on/off,
 * 1/0 (case-insensitive). */
gboolean    chime_ini_parse_bool   (const char *value, gboolean *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeIni, chime_ini_unref)
