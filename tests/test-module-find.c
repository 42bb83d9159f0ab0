/* chime_module_find(), the one search for chime's own modules and
 * programs (the HTTP module, `chime consume`'s module, chime-plugin-host):
 * the environment variable wins, then LIBDIR/chime beside the libchime
 * that is running (here a copy of it in a "moved installation"), then the
 * installed folder; a module in none of them is a clear error. */
#define _GNU_SOURCE
#include "test-helpers.h"

#include <dlfcn.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define VARIABLE "CHIME_TEST_MODULE_FIND"

typedef char *(*ModuleFindFunc) (const char *name,
                                 const char *env_var,
                                 GError    **error);

/* LIBDIR/chime beside the libchime this process loaded. */
static char *
beside_libchime (void)
{
  Dl_info info;
  g_autofree char *library = NULL;
  g_autofree char *dir = NULL;

  assert_true (dladdr ((void *) chime_module_find, &info) != 0 && info.dli_fname != NULL);
  library = g_canonicalize_filename (info.dli_fname, NULL);
  dir = g_path_get_dirname (library);
  return g_build_filename (dir, "chime", NULL);
}

/* An installation moved to @root: a copy of this process's libchime in
 * @root/lib, opened beside the first (another file, so another copy),
 * whose chime_module_find() is returned. */
static ModuleFindFunc
moved_libchime (const char *root)
{
  Dl_info info;
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_autofree char *lib = g_build_filename (root, "lib", NULL);
  g_autofree char *copy = g_build_filename (lib, "libchime.so.1", NULL);
  void *handle;
  ModuleFindFunc find;

  assert_true (dladdr ((void *) chime_module_find, &info) != 0 && info.dli_fname != NULL);
  assert_true (g_file_get_contents (info.dli_fname, &contents, &length, NULL));
  assert_int_equal (g_mkdir_with_parents (lib, 0755), 0);
  assert_true (g_file_set_contents (copy, contents, (gssize) length, NULL));
  handle = dlopen (copy, RTLD_NOW | RTLD_LOCAL);
  assert_non_null (handle);
  find = (ModuleFindFunc) dlsym (handle, "chime_module_find");
  assert_non_null (find);
  assert_true ((void *) find != (void *) chime_module_find);
  return find;
}

/* A module named for this process, so that parallel runs do not meet. */
static char *
module_name (void)
{
  return g_strdup_printf ("chime-test-module-%d.so", (int) getpid ());
}

static void
test_the_variable_wins (void **state)
{
  g_autofree char *named = g_build_filename (test_tmpdir (), "elsewhere", "module.so", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  (void) state;
  /* Taken as it is, not checked: opening it reports a wrong path. */
  g_setenv (VARIABLE, named, TRUE);
  path = chime_module_find ("chime-http-curl.so", VARIABLE, &error);
  g_unsetenv (VARIABLE);

  assert_null (error);
  assert_string_equal (path, named);
}

static void
test_beside_libchime_before_the_installed_folder (void **state)
{
  g_autofree char *root = g_build_filename (test_tmpdir (), "moved", NULL);
  ModuleFindFunc find = moved_libchime (root);
  g_autofree char *name = module_name ();
  g_autofree char *dir = g_build_filename (root, "lib", "chime", NULL);
  g_autofree char *module = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *empty = NULL;

  (void) state;
  assert_int_equal (g_mkdir_with_parents (dir, 0755), 0);
  assert_true (g_file_set_contents (module, "", 0, NULL));
  g_unsetenv (VARIABLE);
  path = find (name, VARIABLE, &error);
  /* An empty variable is as good as none. */
  g_setenv (VARIABLE, "", TRUE);
  empty = find (name, VARIABLE, NULL);
  g_unsetenv (VARIABLE);

  assert_null (error);
  assert_string_equal (path, module);
  assert_string_equal (empty, module);
}

static void
test_a_missing_module_names_itself_and_the_variable (void **state)
{
  g_autofree char *dir = beside_libchime ();
  g_autofree char *name = module_name ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  (void) state;
  g_unsetenv (VARIABLE);
  path = chime_module_find (name, VARIABLE, &error);

  assert_null (path);
  assert_non_null (error);
  assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
  assert_true (g_str_has_prefix (error->message, name));
  assert_non_null (strstr (error->message, dir));
  assert_true (g_str_has_suffix (error->message, ", and " VARIABLE " is not set"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_the_variable_wins),
    cmocka_unit_test (test_beside_libchime_before_the_installed_folder),
    cmocka_unit_test (test_a_missing_module_names_itself_and_the_variable),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
