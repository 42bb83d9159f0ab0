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

/* Parses a boolean as the readers do: true/false, yes/no, on/off, 1/0
 * (case-insensitive). */
gboolean       chime_config_parse_bool         (const char *value,
                                                gboolean   *out);
/* Splits a list value as chime_config_read_list() does. Newly allocated,
 * never NULL. */
char         **chime_config_split_list         (const char *value);
