/* JSON values written raw in an INI key (`parameters = {"type": ...}`),
 * for the runner's sections. */
#pragma once

#include <chime/chime.h>
#include <jansson.h>

/* The value of @key in [@section], parsed as JSON of @type (JSON_OBJECT,
 * JSON_ARRAY). NULL when absent, or after recording a problem naming the
 * file, section and key, what the parser said, and @example. New
 * reference. */
json_t *chime_config_read_json_value (ChimeConfig *config,
                                      const char  *section,
                                      const char  *key,
                                      json_type    type,
                                      const char  *example);
