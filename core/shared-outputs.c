/* Two handlers writing one file tear each other's lines: each opens it,
 * writes at its own offset, and the file ends up with lines cut in two
 * (the README's pipeline with `jsonl` and `--events` on events.jsonl did
 * that, with exit status 0). Refused when the configuration is read, so
 * `chime check` says it before anything runs.
 *
 * The writers are the handlers whose plugin has a `path` key, the
 * shipped plugins' name for the file they write (jsonl, astream_events,
 * usage). Paths are compared after following symlinks; "-" (stdout) and
 * files that are not regular (/dev/null, a FIFO) may be shared. */
#include "config.h"

#include "runtime-config.h"
#include "shared-outputs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static gboolean
declares_path_key (const ChimePlugin *plugin)
{
  for (const ChimeConfigKey *key = chime_plugin_get_config_keys (plugin); key->key != NULL; key++)
    if (g_str_equal (key->key, "path"))
      return TRUE;
  return FALSE;
}

/* The file @path names, symlinks followed (its folder's, when the file is
 * not there yet); NULL when it may be shared (not a regular file). */
static char *
identify_file (const char *path)
{
  struct stat info;
  g_autofree char *folder = NULL;
  g_autofree char *base = NULL;
  char *real;

  if (stat (path, &info) == 0)
    return S_ISREG (info.st_mode) ? realpath (path, NULL) : NULL;
  folder = g_path_get_dirname (path);
  base = g_path_get_basename (path);
  real = realpath (folder, NULL);
  if (real == NULL)
    return g_strdup (path);
  {
    char *joined = g_build_filename (real, base, NULL);

    free (real);
    return joined;
  }
}

ChimeSharedOutputs *
chime_shared_outputs_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

void
chime_shared_outputs_check (ChimeSharedOutputs *outputs,
                            ChimeConfig        *config,
                            const char         *section,
                            const ChimeHandlerSpec *spec)
{
  g_autofree char *value = NULL;
  g_autofree char *resolved = NULL;
  g_autofree char *file = NULL;
  const char *first;

  if (spec->plugin == NULL || !declares_path_key (spec->plugin))
    return;
  value = g_key_file_get_string (chime_config_get_key_file (config), section, "path", NULL);
  if (value == NULL || g_str_equal (value, "-"))
    return;
  resolved = chime_config_resolve_path (config, value);
  file = identify_file (resolved);
  if (file == NULL)
    return;
  first = g_hash_table_lookup (outputs, file);
  if (first == NULL)
    {
      g_hash_table_insert (outputs, g_steal_pointer (&file), g_strdup (section));
      return;
    }
  {
    g_autofree char *first_location = chime_config_describe_location (config, first, "path");
    g_autofree char *location = chime_config_describe_location (config, section, "path");

    chime_config_add_problem (config, "[%s] and [%s] both write %s (path%s; path%s): two writers tear "
                              "each other's lines; give each its own file", first, section, resolved,
                              first_location, location);
  }
}
