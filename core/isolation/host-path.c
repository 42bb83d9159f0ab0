/* Where chime-plugin-host is: CHIME_PLUGIN_HOST (the build tree's tests
 * set it), else beside the plugins of the libchime that is running,
 * LIBDIR/chime/chime-plugin-host (an internal program, as Debian keeps
 * them in /usr/lib/PACKAGE). */
#include "config.h"

#include "host-path.h"
#include "plugins/plugin-loader.h"

#include <gio/gio.h>

char *
chime_plugin_host_path (GError **error)
{
  const char *env = g_getenv ("CHIME_PLUGIN_HOST");
  g_autofree char *beside = NULL;

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  if (chime_library_dir () != NULL)
    {
      beside = g_build_filename (chime_library_dir (), "chime", "chime-plugin-host", NULL);
      if (g_file_test (beside, G_FILE_TEST_IS_EXECUTABLE))
        return g_steal_pointer (&beside);
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
               "isolation = process needs chime-plugin-host, which is not at %s: install chime "
               "completely, or set CHIME_PLUGIN_HOST to its path",
               beside != NULL ? beside : "LIBDIR/chime/chime-plugin-host");
  return NULL;
}
