/* Finding chime's own modules and programs (the HTTP module, `chime
 * consume`'s module, chime-plugin-host): one search, so that libchime and
 * the runner cannot disagree on where an installation keeps them. */
#include "config.h"

#include "plugin-loader.h"
#include <chime/plugin-loader.h>

#include <gio/gio.h>

char *
chime_module_find (const char *name,
                   const char *env_var,
                   GError    **error)
{
  const char *env;
  g_autofree char *beside_dir = NULL;
  g_autofree char *path = NULL;

  g_return_val_if_fail (name != NULL && env_var != NULL, NULL);

  env = g_getenv (env_var);
  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  /* Beside the running libchime first: an installation moved elsewhere, or
   * installed under DESTDIR, must not load another copy's module. */
  if (chime_library_dir () != NULL)
    {
      beside_dir = g_build_filename (chime_library_dir (), "chime", NULL);
      path = g_build_filename (beside_dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&path);
      g_clear_pointer (&path, g_free);
    }
  path = g_build_filename (CHIME_MODULE_DIR, name, NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&path);
  if (beside_dir != NULL && g_strcmp0 (beside_dir, CHIME_MODULE_DIR) != 0)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "%s is in neither %s nor %s, and %s is not set", name, beside_dir,
                 CHIME_MODULE_DIR, env_var);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s is not in %s, and %s is not set",
                 name, CHIME_MODULE_DIR, env_var);
  return NULL;
}
