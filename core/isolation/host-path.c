/* Where chime-plugin-host is: CHIME_PLUGIN_HOST (the build tree's tests
 * set it), else beside the plugins of the libchime that is running,
 * LIBDIR/chime/chime-plugin-host (an internal program, as Debian keeps
 * them in /usr/lib/PACKAGE), else where it was installed: the search of
 * chime_module_find(). */
#include "config.h"

#include "host-path.h"
#include <chime/plugin-loader.h>

#include <gio/gio.h>

char *
chime_plugin_host_path (GError **error)
{
  g_autoptr (GError) not_found = NULL;
  char *path = chime_module_find ("chime-plugin-host", "CHIME_PLUGIN_HOST", &not_found);

  if (path == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "isolation = process needs chime-plugin-host (%s): install chime completely, "
                 "or set CHIME_PLUGIN_HOST to its path", not_found->message);
  return path;
}
