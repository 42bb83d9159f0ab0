/* libFuzzer harness for configuration files, checked as `chime check`
 * checks one (runner/command-check.c): the INI text parsed, [runtime] and
 * every [handler NAME] read, and with a [pipeline] its [model NAME] read
 * by the provider's configure — then the runtime started when the file
 * is sound. A bad file must give one error that lists its problems,
 * never a crash, a hang or an unbounded read.
 *
 * No plugin is ever loaded. Loading a real shared object each run would
 * make the fuzzer a hundred times slower, and the shipped plugins act
 * when they start (the jsonl plugin truncates the file it is given). So
 * the harness rewrites every `plugin =` to a name no folder of the
 * search path holds, and empties [runtime] plugin_path: a handler
 * section is read and checked up to finding its plugin, which fails with
 * the usual problem and its suggestions. What a plugin does with its own
 * keys is the plugin tests' business (tests/test-plugin-abi.c). */
#include "config.h"

#include <string.h>

#include <chime/chime.h>
#include "pipeline/pipeline-config.h"
#include "plugins/plugin-loader.h"
#include "fuzz-common.h"

/* Relative paths in the files resolve here: a folder with nothing in it. */
static char *base_dir;
static char **search_path;

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_make_warnings_fatal ();
  g_unsetenv ("CHIME_PLUGIN_PATH");
  base_dir = g_dir_make_tmp ("chime-fuzz-XXXXXX", NULL);
  g_assert (base_dir != NULL);
  search_path = chime_plugin_get_search_path (NULL);
  return 0;
}

/* A plugin name that no folder of the search path holds, close to @spec
 * so that the suggestions still have something to work on. */
static char *
unloadable_name (const char *spec)
{
  g_autofree char *name = g_strdelimit (g_strdup (spec), "/", '_');
  char *path;

  while ((path = chime_plugin_locate (name, (const char * const *) search_path, NULL)) != NULL)
    {
      char *longer = g_strconcat (name, "-unloaded", NULL);

      g_free (path);
      g_free (name);
      name = longer;
    }
  return g_steal_pointer (&name);
}

static void
keep_plugins_unloaded (ChimeConfig *config)
{
  GKeyFile *key_file = chime_config_get_key_file (config);
  g_auto (GStrv) groups = g_key_file_get_groups (key_file, NULL);

  if (g_key_file_has_key (key_file, "runtime", "plugin_path", NULL))
    g_key_file_set_value (key_file, "runtime", "plugin_path", "");
  for (guint i = 0; groups[i] != NULL; i++)
    {
      /* The raw value, as chime reads it: GLib 2.74's g_key_file_get_string()
       * sets its GError twice (a warning) on a value ending in a backslash. */
      g_autofree char *spec = g_key_file_get_value (key_file, groups[i], "plugin", NULL);
      g_autofree char *name = NULL;

      if (spec == NULL)
        continue;
      name = unloadable_name (g_strstrip (spec));
      if (!g_str_equal (name, spec))
        g_key_file_set_string (key_file, groups[i], "plugin", name);
    }
}

/* A failure must say what is wrong, in UTF-8 (it is printed as is). */
static void
check_error (const GError *error)
{
  if (error == NULL || error->message == NULL || error->message[0] == '\0')
    fuzz_fail ("a configuration that fails must say why", "an error", NULL);
  if (!g_utf8_validate (error->message, -1, NULL))
    fuzz_fail ("configuration errors must be valid UTF-8", "UTF-8", error->message);
}

/* What cli_command_check() does once the file is parsed: a pipeline, or
 * the runtime and handlers alone. */
static void
check_config (ChimeConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimePipelineConfig) pipeline = NULL;
  ChimeRuntime *runtime;

  if (g_key_file_has_group (chime_config_get_key_file (config), "pipeline"))
    pipeline = chime_pipeline_config_read (config);
  else
    chime_pipeline_accept_sections (config);
  runtime = chime_runtime_new (config, &error);
  if (runtime == NULL)
    {
      check_error (error);
      return;
    }
  g_assert_no_error (error);
  g_assert (chime_config_get_n_problems (config) == 0);
  chime_runtime_shutdown (runtime);
  chime_runtime_unref (runtime);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  /* Read up to its first NUL, as chime_config_new_from_file() reads. */
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeConfig) config = NULL;

  config = chime_config_new_from_data (text, "fuzz.ini", base_dir, &error);
  if (config == NULL)
    {
      check_error (error);
      return 0;
    }
  g_assert_no_error (error);
  keep_plugins_unloaded (config);
  check_config (config);
  return 0;
}
