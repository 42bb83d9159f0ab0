/* JSON values in INI keys. */
#include "config.h"

#include "config-json.h"

static const char *
type_name (json_type type)
{
  return type == JSON_OBJECT ? "a JSON object" : type == JSON_ARRAY ? "a JSON array" : "JSON";
}

json_t *
chime_config_read_json_value (ChimeConfig *config,
                              const char  *section,
                              const char  *key,
                              json_type    type,
                              const char  *example)
{
  g_autofree char *text = chime_config_read_raw (config, section, key);
  g_autofree char *location = NULL;
  json_error_t error;
  json_t *value;

  if (text == NULL)
    return NULL;
  value = json_loads (text, JSON_DECODE_ANY, &error);
  if (value != NULL && json_typeof (value) == type)
    return value;
  location = chime_config_describe_location (config, section, key);
  if (value == NULL)
    chime_config_add_problem (config, "invalid value for '%s'%s: %s at column %d; expected %s "
                              "like %s", key, location, error.text, error.column,
                              type_name (type), example);
  else
    chime_config_add_problem (config, "invalid value for '%s'%s: expected %s like %s", key,
                              location, type_name (type), example);
  g_clear_pointer (&value, json_decref);
  return NULL;
}
