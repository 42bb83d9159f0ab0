/* What libchime knows of a ChimeConfig beyond its public API
 * (<chime/config.h>). */
#pragma once

#include <chime/config.h>
#include "problems.h"

/* The config's problem list, for code that collects into it. */
ChimeProblems *chime_config_get_problems       (ChimeConfig *config);
/* Records a problem for @section unless its kind (the first word) is
 * known, suggesting the closest known kind. */
void           chime_config_check_section_name (ChimeConfig *config,
                                                const char  *section);

/* TRUE the first time it is called for @key of @section: a value read
 * twice (or by two readers) is reported once. */
gboolean       chime_config_first_report       (ChimeConfig *config,
                                                const char  *section,
                                                const char  *key);

/* The value of @key as written, surrounding blanks removed; NULL when
 * absent. A value that is not UTF-8 is a problem (recorded once) and is
 * returned with its bad bytes replaced by U+FFFD, *@valid FALSE. */
char          *chime_config_lookup             (ChimeConfig *config,
                                                const char  *section,
                                                const char  *key,
                                                gboolean    *valid);
/* As chime_config_read_string(), but FALSE, *@out NULL, when the value is
 * not UTF-8 or has an invalid escape (a problem is recorded); TRUE, *@out
 * NULL when the key is absent. */
gboolean       chime_config_read_valid_string  (ChimeConfig *config,
                                                const char  *section,
                                                const char  *key,
                                                char       **out);

/* What @path is when it exists and is not a regular file ("a directory",
 * "a FIFO (named pipe)", "a character device", ...), for a message; NULL
 * for a regular file or none. */
const char    *chime_file_describe_type        (const char *path);

/* Parses a boolean as the readers do: true/false, yes/no, on/off, 1/0
 * (case-insensitive). */
gboolean       chime_config_parse_bool         (const char *value,
                                                gboolean   *out);
/* Parses a decimal number as the readers do: an optional sign, digits
 * with an optional fraction and exponent; not hexadecimal, "inf" or
 * "nan", which g_ascii_strtod() would take. */
gboolean       chime_config_parse_double       (const char *value,
                                                gdouble    *out);
/* Applies GKeyFile's escapes (\s \n \t \r \\) to @raw; NULL, with
 * @bad_escape the escape that is none ("\q", or "\" at the end), when
 * there is another. Newly allocated. */
char          *chime_config_unescape           (const char  *raw,
                                                char       **bad_escape);
/* Splits a list value as chime_config_read_list() does. Newly allocated,
 * never NULL. */
char         **chime_config_split_list         (const char *value);
