/* chime check: validate a configuration and start its handlers, running
 * nothing. */
#include "config.h"

#include <chime/chime.h>

#include "cli.h"
#include "consume-settings.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline-config.h"

static void
describe_runtime (ChimeRuntime *runtime)
{
  g_print ("  delivery: %s\n", chime_delivery_to_string (chime_runtime_get_delivery (runtime)));
  for (guint i = 0; i < chime_runtime_get_n_handlers (runtime); i++)
    {
      const ChimeHandlerInfo *handler = chime_runtime_get_handler_info (runtime, i);

      g_print ("  handler %s: plugin %s (%s) from %s\n", handler->name, handler->plugin_name,
               handler->mode == CHIME_HANDLER_SYNC ? "sync" : "async", handler->plugin_path);
    }
}

/* A file without [pipeline]: its runtime and handlers only. */
static int
check_runtime (const char  *path,
               ChimeConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeRuntime) runtime = NULL;
  g_autoptr (ConsumeSettings) consume = NULL;

  /* Its [model NAME] sections are still the runner's, not unknown. */
  chime_pipeline_accept_sections (config);
  /* A `chime consume` file: [consume] checked as the command reads it. */
  if (g_key_file_has_group (chime_config_get_key_file (config), "consume"))
    consume = consume_settings_read (config);
  runtime = chime_runtime_new (config, &error);
  if (runtime == NULL)
    {
      cli_print_error (error);
      return CLI_EXIT_CONFIG;
    }
  g_print ("%s: ok (no [pipeline]: runtime and handlers only)\n", path);
  describe_runtime (runtime);
  chime_runtime_shutdown (runtime);
  return CLI_EXIT_OK;
}

int
cli_command_check (int    argc,
                   char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("CONFIG - check a configuration");
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeConfig) config = NULL;
  g_autoptr (ChimePipeline) pipeline = NULL;

  g_option_context_set_description (context,
    "Validates every section and key, loads every plugin and starts every handler,\n"
    "without running anything. Prints every problem at once.\n\n"
    "Exit status: 0 all is well, 2 bad command line, 3 problems found.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return cli_usage_error (context, "%s", error->message);
  if (argc != 2)
    return cli_usage_error (context, "check needs exactly one CONFIG");

  config = chime_config_new_from_file (argv[1], &error);
  if (config == NULL)
    {
      cli_print_error (error);
      return CLI_EXIT_CONFIG;
    }
  if (!g_key_file_has_group (chime_config_get_key_file (config), "pipeline"))
    return check_runtime (argv[1], config);
  pipeline = chime_pipeline_new_from_file (argv[1], NULL, NULL, &error);
  if (pipeline == NULL)
    {
      cli_print_error (error);
      return CLI_EXIT_CONFIG;
    }
  g_print ("%s: ok\n", argv[1]);
  describe_runtime (chime_pipeline_get_runtime (pipeline));
  return CLI_EXIT_OK;
}
