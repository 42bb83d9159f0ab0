/* Handler contexts: a plugin instance's typed configuration and logging. */
#include "config.h"

#include "handler-context.h"
#include "config/suggest.h"

typedef struct {
  ChimeConfigType type;
  gboolean        set_in_file;
  char           *string;     /* STRING, PATH and CHOICE */
  guint           choice;
  gint64          integer;
  gboolean        boolean;
  gdouble         number;
  char          **list;
} ChimeConfigValue;

static void
config_value_free (gpointer data)
{
  ChimeConfigValue *value = data;

  g_free (value->string);
  g_strfreev (value->list);
  g_free (value);
}

const char *
chime_config_type_to_string (ChimeConfigType type)
{
  switch (type)
    {
    case CHIME_CONFIG_STRING: return "string";
    case CHIME_CONFIG_INT: return "integer";
    case CHIME_CONFIG_BOOL: return "boolean";
    case CHIME_CONFIG_DOUBLE: return "number";
    case CHIME_CONFIG_STRING_LIST: return "list";
    case CHIME_CONFIG_PATH: return "path";
    case CHIME_CONFIG_CHOICE: return "choice";
    default: return "unknown";
    }
}

const char **
chime_plugin_declared_keys (const ChimePlugin *plugin)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();

  for (const ChimeConfigKey *key = plugin->keys; key->key != NULL; key++)
    g_ptr_array_add (keys, (gpointer) key->key);
  g_ptr_array_add (keys, NULL);
  return (const char **) g_ptr_array_steal (keys, NULL);
}

/* Parses @text as @key's type into @value. FALSE when it does not parse;
 * @expected then says what was expected. */
static gboolean
parse_value (const ChimeConfigKey *key,
             const char           *text,
             ChimeConfig          *config,
             ChimeConfigValue     *value,
             const char          **expected)
{
  switch (key->type)
    {
    case CHIME_CONFIG_STRING:
      value->string = g_strdup (text);
      return TRUE;
    case CHIME_CONFIG_PATH:
      value->string = config != NULL ? chime_config_resolve_path (config, text) : g_strdup (text);
      return TRUE;
    case CHIME_CONFIG_INT:
      *expected = "a whole number";
      return g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &value->integer, NULL);
    case CHIME_CONFIG_BOOL:
      *expected = "true or false";
      return chime_config_parse_bool (text, &value->boolean);
    case CHIME_CONFIG_DOUBLE:
      *expected = "a number";
      return chime_config_parse_double (text, &value->number);
    case CHIME_CONFIG_STRING_LIST:
      value->list = chime_config_split_list (text);
      return TRUE;
    case CHIME_CONFIG_CHOICE:
      *expected = "one of the key's choices";
      for (guint i = 0; key->choices != NULL && key->choices[i] != NULL; i++)
        if (g_str_equal (text, key->choices[i]))
          {
            value->string = g_strdup (text);
            value->choice = i;
            return TRUE;
          }
      return FALSE;
    default:
      *expected = "a known type";
      return FALSE;
    }
}

static void
read_key (ChimeHandlerContext  *context,
          const ChimeConfigKey *key,
          ChimeConfig          *config,
          const char           *section)
{
  ChimeConfigValue *value = g_new0 (ChimeConfigValue, 1);
  g_autofree char *text = NULL;
  const char *expected = NULL;

  value->type = key->type;
  g_hash_table_insert (context->values, (gpointer) key->key, value);

  /* A value that is not UTF-8 or has a bad escape is reported by the
   * reader; the key then keeps its default, as for any invalid value. */
  if (config != NULL && !chime_config_read_valid_string (config, section, key->key, &text))
    value->set_in_file = FALSE;
  else if (text != NULL)
    {
      value->set_in_file = TRUE;
      if (parse_value (key, text, config, value, &expected))
        return;
      {
        g_autofree char *location = chime_config_describe_location (config, section, key->key);
        g_autofree char *choices = key->type == CHIME_CONFIG_CHOICE
                                     ? g_strjoinv (", ", (char **) key->choices) : NULL;
        const char *match = key->type == CHIME_CONFIG_CHOICE ? chime_suggest (text, key->choices) : NULL;

        if (match != NULL)
          chime_config_add_problem (config, "invalid value '%s' for '%s'%s; did you mean '%s'? (one of %s)",
                              text, key->key, location, match, choices);
        else
          chime_config_add_problem (config, "invalid value '%s' for '%s'%s: expected %s%s",
                              text, key->key, location, choices != NULL ? choices : expected,
                              chime_suggest_inline_comment (text));
      }
      /* Fall back to the default so the context stays usable. */
      value->set_in_file = FALSE;
      g_clear_pointer (&value->string, g_free);
      g_clear_pointer (&value->list, g_strfreev);
    }
  else if (key->flags & CHIME_CONFIG_KEY_REQUIRED)
    {
      g_autofree char *location = config != NULL ? chime_config_describe_location (config, section, NULL)
                                              : g_strdup_printf (" in [%s]", section);
      chime_config_add_problem (config, "missing required key '%s'%s (%s: %s)",
                          key->key, location, chime_config_type_to_string (key->type),
                          key->description != NULL ? key->description : "no description");
    }

  if (key->default_value != NULL && !parse_value (key, key->default_value, config, value, &expected))
    chime_config_add_problem (config, "plugin '%s' declares default '%s' for '%s', which is not %s",
                        context->plugin_name, key->default_value, key->key, expected);
}

ChimeHandlerContext *
chime_handler_context_new (const char        *name,
                           const ChimePlugin *plugin,
                           ChimeConfig       *config,
                           const char        *section)
{
  ChimeHandlerContext *context = g_new0 (ChimeHandlerContext, 1);

  context->name = g_strdup (name);
  context->plugin_name = g_strdup (plugin->descriptor->name);
  context->config_file = config != NULL && chime_config_get_path (config) != NULL
                           ? g_strdup (chime_config_get_path (config)) : NULL;
  context->values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, config_value_free);
  for (const ChimeConfigKey *key = plugin->keys; key->key != NULL; key++)
    read_key (context, key, config, section);
  return context;
}

void
chime_handler_context_free (ChimeHandlerContext *context)
{
  if (context == NULL)
    return;
  g_free (context->name);
  g_free (context->plugin_name);
  g_free (context->config_file);
  if (context->main_context != NULL)
    g_main_context_unref (context->main_context);
  g_hash_table_unref (context->values);
  g_free (context);
}

const char *
chime_handler_context_get_name (ChimeHandlerContext *context)
{
  return context->name;
}

const char *
chime_handler_context_get_plugin_name (ChimeHandlerContext *context)
{
  return context->plugin_name;
}

const char *
chime_handler_context_get_config_file (ChimeHandlerContext *context)
{
  return context->config_file;
}

GMainContext *
chime_handler_context_get_main_context (ChimeHandlerContext *context)
{
  return context->main_context != NULL ? context->main_context : g_main_context_default ();
}

static ChimeConfigValue *
lookup (ChimeHandlerContext *context,
        const char          *key,
        ChimeConfigType      type)
{
  ChimeConfigValue *value = g_hash_table_lookup (context->values, key);

  if (value == NULL)
    {
      g_critical ("handler '%s' (%s) asked for undeclared key '%s'",
                  context->name, context->plugin_name, key);
      return NULL;
    }
  /* PATH and CHOICE are read as strings too. */
  if (value->type != type &&
      !(type == CHIME_CONFIG_STRING && (value->type == CHIME_CONFIG_PATH ||
                                        value->type == CHIME_CONFIG_CHOICE)))
    {
      g_critical ("handler '%s' (%s) read key '%s' as %s, but it is declared %s",
                  context->name, context->plugin_name, key,
                  chime_config_type_to_string (type), chime_config_type_to_string (value->type));
      return NULL;
    }
  return value;
}

const char *
chime_handler_context_get_string (ChimeHandlerContext *context,
                                  const char          *key)
{
  ChimeConfigValue *value = lookup (context, key, CHIME_CONFIG_STRING);

  return value != NULL ? value->string : NULL;
}

gint64
chime_handler_context_get_int (ChimeHandlerContext *context,
                               const char          *key)
{
  ChimeConfigValue *value = lookup (context, key, CHIME_CONFIG_INT);

  return value != NULL ? value->integer : 0;
}

guint
chime_handler_context_get_choice (ChimeHandlerContext *context,
                                  const char          *key)
{
  ChimeConfigValue *value = lookup (context, key, CHIME_CONFIG_CHOICE);

  return value != NULL ? value->choice : 0;
}

gboolean
chime_handler_context_get_bool (ChimeHandlerContext *context,
                                const char          *key)
{
  ChimeConfigValue *value = lookup (context, key, CHIME_CONFIG_BOOL);

  return value != NULL ? value->boolean : FALSE;
}

gdouble
chime_handler_context_get_double (ChimeHandlerContext *context,
                                  const char          *key)
{
  ChimeConfigValue *value = lookup (context, key, CHIME_CONFIG_DOUBLE);

  return value != NULL ? value->number : 0.0;
}

const char * const *
chime_handler_context_get_string_list (ChimeHandlerContext *context,
                                       const char          *key)
{
  static const char *const empty[] = { NULL };
  ChimeConfigValue *value = lookup (context, key, CHIME_CONFIG_STRING_LIST);

  return value != NULL && value->list != NULL ? (const char * const *) value->list : empty;
}

gboolean
chime_handler_context_has_key (ChimeHandlerContext *context,
                               const char          *key)
{
  ChimeConfigValue *value = g_hash_table_lookup (context->values, key);

  return value != NULL && value->set_in_file;
}

void
chime_handler_log (ChimeHandlerContext *context,
                   GLogLevelFlags       level,
                   const char          *format,
                   ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  /* A plugin must not be able to abort the host through G_LOG_LEVEL_ERROR. */
  if (level & G_LOG_LEVEL_ERROR)
    level = G_LOG_LEVEL_CRITICAL;
  g_log ("chime", level, "%s (%s): %s", context->name, context->plugin_name, message);
}

