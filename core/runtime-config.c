/* `[runtime]` and `[handler NAME]`: settings, validation and plugin
 * loading. Every problem is collected; nothing is instantiated here. */
#include "config.h"

#include "runtime-config.h"
#include "config/suggest.h"
#include "isolation/host-init.h"
#include "shared-outputs.h"

#include <string.h>

static const char *const runtime_keys[] = {
  "plugin_path", "threads", "delivery", "queue_limit", "on_full", "loop_watchdog_ms", "isolation", NULL
};

const char *const chime_common_handler_keys[] = {
  "plugin", "raise_error", "run_inline", "ignore", "inheritable", "timeout_ms", "isolation",
  "max_restarts", "memory_limit_mb", NULL
};

/* none: the plugin runs in chime's process; process: in a host of its own. */
static const char *const isolation_names[] = { "none", "process", NULL };

static const char *const delivery_names[] = { "awaited", "fenced", "background", NULL };
static const char *const on_full_names[] = { "block", "drop_newest", "drop_oldest", NULL };
static const char *const ignore_names[] = {
  "llm", "chat_model", "chain", "agent", "retriever", "retry", "custom_event", NULL
};

#define DEFAULT_QUEUE_LIMIT 4096
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_MAX_RESTARTS 3
/* An async call that holds the main loop this long is reported. */
#define DEFAULT_LOOP_WATCHDOG_MS 5000

static gboolean
valid_handler_name (const char *name)
{
  if (name[0] == '\0')
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

gboolean
chime_config_is_handler_section (const char  *section,
                                 const char **out_name)
{
  if (!g_str_has_prefix (section, "handler") || !g_ascii_isspace (section[7]))
    return FALSE;
  if (out_name != NULL)
    {
      const char *name = section + 7;
      while (g_ascii_isspace (*name))
        name++;
      *out_name = name;
    }
  return TRUE;
}

static char **
resolve_plugin_path (ChimeConfig *config)
{
  g_autofree char *value = chime_config_read_string (config, "runtime", "plugin_path", NULL);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) configured = NULL;

  if (value != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (value, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; parts[i] != NULL; i++)
        {
          g_autofree char *trimmed = g_strstrip (g_strdup (parts[i]));
          g_autofree char *resolved = NULL;
          if (trimmed[0] == '\0')
            continue;
          /* Relative entries resolve against the INI file's folder. */
          resolved = chime_config_resolve_path (config, trimmed);
          g_strv_builder_add (builder, resolved);
        }
    }
  configured = g_strv_builder_end (builder);
  return chime_plugin_get_search_path ((const char * const *) configured);
}

void
chime_runtime_settings_read (ChimeConfig          *config,
                             ChimeRuntimeSettings *out)
{
  gint64 threads, queue_limit, loop_watchdog_ms;
  guint delivery, on_full, isolation;

  memset (out, 0, sizeof *out);
  chime_config_check_keys (config, "runtime", runtime_keys);
  out->plugin_path = resolve_plugin_path (config);

  chime_config_read_int (config, "runtime", "threads",
                      MAX (2, g_get_num_processors ()), 1, 256, &threads);
  chime_config_read_choice (config, "runtime", "delivery", delivery_names,
                         CHIME_DELIVERY_FENCED, &delivery);
  chime_config_read_int (config, "runtime", "queue_limit",
                      DEFAULT_QUEUE_LIMIT, 16, 1 << 24, &queue_limit);
  chime_config_read_choice (config, "runtime", "on_full", on_full_names,
                         CHIME_ON_FULL_BLOCK, &on_full);
  chime_config_read_int (config, "runtime", "loop_watchdog_ms",
                         DEFAULT_LOOP_WATCHDOG_MS, 0, 3600000, &loop_watchdog_ms);
  chime_config_read_choice (config, "runtime", "isolation", isolation_names, 0, &isolation);
  out->threads = threads;
  out->loop_watchdog_ms = loop_watchdog_ms;
  out->isolate = isolation == 1;
  out->delivery = delivery;
  out->queue_limit = queue_limit;
  out->on_full = on_full;
}

void
chime_runtime_settings_clear (ChimeRuntimeSettings *settings)
{
  g_clear_pointer (&settings->plugin_path, g_strfreev);
}

static guint
read_ignore (ChimeConfig *config,
             const char  *section)
{
  g_auto (GStrv) names = chime_config_read_list (config, section, "ignore", NULL);
  guint flags = 0;

  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autofree char *location = NULL;
      g_autofree char *suffix = NULL;
      guint j;

      for (j = 0; ignore_names[j] != NULL; j++)
        if (g_str_equal (names[i], ignore_names[j]))
          break;
      if (ignore_names[j] != NULL)
        {
          flags |= 1u << j;
          continue;
        }
      location = chime_config_describe_location (config, section, "ignore");
      if (g_str_equal (names[i], "text"))
        {
          chime_config_add_problem (config, "'text' cannot be ignored%s: text events always reach "
                              "every handler, as in LangChain", location);
          continue;
        }
      suffix = chime_suggestion_suffix (names[i], ignore_names, "values");
      chime_config_add_problem (config, "unknown event group '%s' in 'ignore'%s%s",
                          names[i], location, suffix);
    }
  return flags;
}

/* Reads the keys every handler has. FALSE when the section is unusable
 * (no plugin). */
static gboolean
read_handler_settings (ChimeConfig                *config,
                       const ChimeRuntimeSettings *runtime,
                       const char                 *section,
                       const char                 *name,
                       ChimeHandlerSettings       *out,
                       gboolean                   *isolate)
{
  guint isolation;

  memset (out, 0, sizeof *out);
  out->name = g_strdup (name);
  out->plugin_spec = chime_config_read_string (config, section, "plugin", NULL);
  chime_config_read_bool (config, section, "raise_error", FALSE, &out->raise_error);
  chime_config_read_bool (config, section, "run_inline", FALSE, &out->run_inline);
  chime_config_read_bool (config, section, "inheritable", TRUE, &out->inheritable);
  chime_config_read_int (config, section, "timeout_ms", DEFAULT_TIMEOUT_MS,
                      0, G_MAXINT32, &out->timeout_ms);
  out->ignore = read_ignore (config, section);
  chime_config_read_choice (config, section, "isolation", isolation_names,
                            runtime->isolate ? 1 : 0, &isolation);
  *isolate = isolation == 1;
  chime_config_read_int (config, section, "max_restarts", DEFAULT_MAX_RESTARTS, 0, 1000,
                         &out->max_restarts);
  chime_config_read_int (config, section, "memory_limit_mb", 0, 0, 1024 * 1024, &out->memory_limit_mb);

  if (out->plugin_spec == NULL || out->plugin_spec[0] == '\0')
    {
      g_autofree char *location = chime_config_describe_location (config, section, NULL);
      chime_config_add_problem (config, "missing required key 'plugin'%s: name the plugin "
                          "this handler runs (see `chime plugins`)", location);
      return FALSE;
    }
  return TRUE;
}

/* Checks the section's keys against the common ones plus the plugin's. */
static void
check_handler_keys (ChimeConfig       *config,
                    const char        *section,
                    const ChimePlugin *plugin)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) valid = NULL;

  g_strv_builder_addv (builder, (const char **) chime_common_handler_keys);
  if (plugin != NULL)
    {
      g_autofree const char **declared = chime_plugin_declared_keys (plugin);
      g_strv_builder_addv (builder, declared);
    }
  valid = g_strv_builder_end (builder);
  chime_config_check_keys (config, section, (const char * const *) valid);
}

/* isolation = process: a sync plugin, called from one thread at a time,
 * and what its host needs to start the same handler. */
static void
check_isolation (ChimeConfig      *config,
                 const char       *section,
                 ChimeHandlerSpec *spec)
{
  g_autofree char *location = chime_config_describe_location (config, section, "isolation");

  if (spec->plugin->descriptor->mode == CHIME_HANDLER_ASYNC)
    chime_config_add_problem (config, "isolation = process is for sync plugins, and '%s' is async%s: "
                              "set isolation = none", spec->plugin->descriptor->name, location);
  else if (spec->settings.run_inline)
    chime_config_add_problem (config, "isolation = process cannot be run_inline%s: an isolated "
                              "handler is called from the queue, one event at a time", location);
  else
    spec->settings.host_init = chime_host_init_new (config, section, spec->settings.name, spec->plugin);
}

/* memory_limit_mb limits a host process: without one there is nothing to
 * limit but chime itself. */
static void
check_memory_limit (ChimeConfig      *config,
                    const char       *section,
                    ChimeHandlerSpec *spec,
                    gboolean          isolate)
{
  g_autofree char *location = NULL;

  if (isolate || spec->settings.memory_limit_mb == 0)
    return;
  location = chime_config_describe_location (config, section, "memory_limit_mb");
  chime_config_add_problem (config, "memory_limit_mb needs isolation = process%s: only a handler in a "
                            "process of its own can be limited; add isolation = process, or remove "
                            "memory_limit_mb", location);
}

static ChimeHandlerSpec *
read_handler_spec (ChimeConfig                *config,
                   const ChimeRuntimeSettings *runtime,
                   const char                 *section,
                   const char                 *name)
{
  ChimeHandlerSpec *spec = g_new0 (ChimeHandlerSpec, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *plugin_spec = NULL;
  gboolean isolate = FALSE;

  if (!read_handler_settings (config, runtime, section, name, &spec->settings, &isolate))
    {
      check_handler_keys (config, section, NULL);
      return spec;
    }

  /* A path (with '/') resolves against the INI file's folder. */
  plugin_spec = strchr (spec->settings.plugin_spec, '/') != NULL
                  ? chime_config_resolve_path (config, spec->settings.plugin_spec)
                  : g_strdup (spec->settings.plugin_spec);
  spec->plugin = chime_plugin_load (plugin_spec,
                                    (const char * const *) runtime->plugin_path, &error);
  if (spec->plugin == NULL)
    {
      /* The location first: the loader's reason can be long. The section's
       * other keys are not checked, since only the plugin knows them. */
      g_autofree char *location = chime_config_describe_location (config, section, "plugin");
      chime_config_add_problem (config, "%s: %s", location + strlen (" in "), error->message);
      return spec;
    }

  check_handler_keys (config, section, spec->plugin);
  spec->context = chime_handler_context_new (name, spec->plugin, config, section);
  if (spec->settings.run_inline && spec->plugin->descriptor->mode == CHIME_HANDLER_ASYNC)
    {
      g_autofree char *location = chime_config_describe_location (config, section, "run_inline");
      chime_config_add_problem (config, "run_inline needs a sync plugin, but '%s' is async%s: "
                          "async handlers already run on the main loop", 
                          spec->plugin->descriptor->name, location);
    }
  if (isolate)
    check_isolation (config, section, spec);
  check_memory_limit (config, section, spec, isolate);
  return spec;
}

void
chime_handler_spec_free (ChimeHandlerSpec *spec)
{
  if (spec == NULL)
    return;
  chime_handler_settings_clear (&spec->settings);
  chime_handler_context_free (spec->context);
  g_free (spec);
}

GPtrArray *
chime_handler_specs_read (ChimeConfig                *config,
                          const ChimeRuntimeSettings *runtime)
{
  g_auto (GStrv) sections = g_key_file_get_groups (chime_config_get_key_file (config), NULL);
  GPtrArray *specs = g_ptr_array_new_with_free_func ((GDestroyNotify) chime_handler_spec_free);
  g_autoptr (GHashTable) outputs = chime_shared_outputs_new ();

  for (guint i = 0; sections[i] != NULL; i++)
    {
      const char *name = NULL;

      if (!g_str_equal (sections[i], "handler") &&
          !chime_config_is_handler_section (sections[i], &name))
        {
          chime_config_check_section_name (config, sections[i]);
          continue;
        }
      if (name == NULL || name[0] == '\0')
        {
          chime_config_add_problem (config, "section [%s] in %s needs a name: "
                              "write [handler NAME]", sections[i], chime_config_get_source_name (config));
          continue;
        }
      if (!valid_handler_name (name))
        {
          chime_config_add_problem (config, "handler name '%s' in %s may only contain letters, "
                              "digits, '_', '-' and '.'", name, chime_config_get_source_name (config));
          continue;
        }
      if (specs->len == CHIME_MAX_HANDLERS)
        {
          chime_config_add_problem (config, "%s configures more than %d handlers",
                              chime_config_get_source_name (config), CHIME_MAX_HANDLERS);
          break;
        }
      g_ptr_array_add (specs, read_handler_spec (config, runtime, sections[i], name));
      chime_shared_outputs_check (outputs, config, sections[i], g_ptr_array_index (specs, specs->len - 1));
    }
  return specs;
}
