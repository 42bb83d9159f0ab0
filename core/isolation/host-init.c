/* What a handler's host process needs to start the same handler: its
 * section, key by key as written (so the host reads and checks it with
 * the same code as chime), the plugin as the file chime already loaded
 * (so no search path is needed), and where relative paths start. The
 * keys about the host itself are chime's: the host runs its plugin with
 * isolation = none, under the memory limit given beside the section. */
#include "config.h"

#include "host-init.h"

json_t *
chime_host_init_new (ChimeConfig       *config,
                     const char        *section,
                     const char        *name,
                     const ChimePlugin *plugin)
{
  GKeyFile *key_file = chime_config_get_key_file (config);
  g_auto (GStrv) keys = g_key_file_get_keys (key_file, section, NULL, NULL);
  g_autofree char *plugin_path = g_canonicalize_filename (plugin->path, NULL);
  json_t *values = json_object ();

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *raw = g_key_file_get_value (key_file, section, keys[i], NULL);

      if (raw != NULL)
        json_object_set_new (values, keys[i], json_string (raw));
    }
  json_object_set_new (values, "plugin", json_string (plugin_path));
  json_object_set_new (values, "isolation", json_string ("none"));
  json_object_del (values, "memory_limit_mb");
  json_object_del (values, "max_restarts");
  return json_pack ("{s:s, s:s, s:s?, s:o}",
                    "name", name,
                    "source", chime_config_get_source_name (config),
                    "base_dir", chime_config_get_base_dir (config),
                    "section", values);
}

ChimeConfig *
chime_host_init_to_config (json_t  *init,
                           GError **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  const char *name = json_string_value (json_object_get (init, "name"));
  const char *source = json_string_value (json_object_get (init, "source"));
  json_t *values = json_object_get (init, "section");
  g_autofree char *section = NULL;
  const char *key;
  json_t *value;

  if (name == NULL || source == NULL || !json_is_object (values))
    {
      g_set_error_literal (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID,
                           "chime-plugin-host: the start message is not one chime sends");
      return NULL;
    }
  section = g_strdup_printf ("handler %s", name);
  json_object_foreach (values, key, value)
    if (json_is_string (value))
      g_key_file_set_value (key_file, section, key, json_string_value (value));
  return chime_config_new_from_key_file (key_file, source,
                                         json_string_value (json_object_get (init, "base_dir")));
}
