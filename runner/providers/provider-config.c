/* The configuration of an HTTP chat model provider: reading the keys of
 * its `[model NAME]` section (base_url, the API key's source, temperature,
 * max_tokens, stop, headers, extra_body, timeouts, retries), and what a
 * stream takes from it when it starts — the API key itself and the
 * request headers. */
#include "config.h"

#include "provider-config.h"
#include "provider-errors.h"
#include "provider-tools.h"

#include <string.h>
#include <sys/stat.h>

/* An API key is a line of text: a file larger than this is not one. */
#define MAX_API_KEY_FILE_SIZE (16 * 1024)

/* Headers that carry credentials: they come from api_key_env or
 * api_key_file only, never from the configuration file. */
static const char *const credential_headers[] = {
  "authorization", "x-api-key", "api-key", "proxy-authorization", NULL
};

/* ------------------------------------------------------------------
 * Reading a [model NAME] section
 * ---------------------------------------------------------------- */

/* Reports "WHAT in [section] of file.ini (line N)TAIL". */
static void
report (ChimeConfig *config,
        const char  *section,
        const char  *key,
        const char  *what,
        const char  *tail)
{
  g_autofree char *location = chime_config_describe_location (config, section, key);

  chime_config_add_problem (config, "%s%s%s", what, location, tail);
}

static char *
read_base_url (ChimeConfig *config,
               const char  *section,
               const char  *fallback)
{
  g_autofree char *value = chime_config_read_string (config, section, "base_url", fallback);
  gsize length = strlen (value);
  const char *rest = g_str_has_prefix (value, "https://") ? value + 8 :
                     g_str_has_prefix (value, "http://") ? value + 7 : NULL;

  if (rest == NULL || *rest == '\0' || *rest == '/')
    {
      g_autofree char *what = g_strdup_printf ("invalid value '%s' for 'base_url'", value);
      g_autofree char *tail = g_strdup_printf (": expected an http:// or https:// URL like %s", fallback);

      report (config, section, "base_url", what, tail);
    }
  while (length > 0 && value[length - 1] == '/')
    value[--length] = '\0';
  return g_steal_pointer (&value);
}

static void
read_api_key_source (ChimeProviderModel *model,
                     ChimeConfig        *config,
                     const char         *section)
{
  GKeyFile *key_file = chime_config_get_key_file (config);
  g_autofree char *file = NULL;

  if (g_key_file_has_key (key_file, section, "api_key_env", NULL) &&
      g_key_file_has_key (key_file, section, "api_key_file", NULL))
    report (config, section, "api_key_file", "set either 'api_key_env' or 'api_key_file'",
            ", not both");
  model->api_key_env = chime_config_read_string (config, section, "api_key_env",
                                                 model->ops->default_api_key_env);
  /* Empty: no key at all, for local servers that want none. */
  if (strchr (model->api_key_env, '=') != NULL || strpbrk (model->api_key_env, " \t") != NULL)
    {
      g_autofree char *what = g_strdup_printf ("invalid value '%s' for 'api_key_env'", model->api_key_env);
      g_autofree char *tail = g_strdup_printf (": expected the name of an environment variable like %s",
                                               model->ops->default_api_key_env);

      report (config, section, "api_key_env", what, tail);
    }
  file = chime_config_read_string (config, section, "api_key_file", NULL);
  if (file != NULL && file[0] == '\0')
    report (config, section, "api_key_file", "empty value for 'api_key_file'", ": expected a path");
  else if (file != NULL)
    model->api_key_file = chime_config_resolve_path (config, file);
}

/* `stop = END, STOP` as a chime list, or a JSON array for sequences
 * with spaces or escapes: `stop = ["\n\n", "Human:"]`. */
static char **
read_stop (ChimeConfig *config,
           const char  *section)
{
  g_autofree char *raw = chime_config_read_raw (config, section, "stop");

  if (raw == NULL)
    return g_new0 (char *, 1);
  if (raw[0] == '[')
    {
      char **stop = chime_config_read_json_strings (config, section, "stop", "[\"\\n\\n\", \"Human:\"]");

      return stop != NULL ? stop : g_new0 (char *, 1);
    }
  return chime_config_read_list (config, section, "stop", NULL);
}

static gboolean
is_token_char (char c)
{
  return g_ascii_isalnum (c) || strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Checks one "Name: value" and returns it normalized, or NULL. */
static char *
parse_header (ChimeConfig *config,
              const char  *section,
              const char  *text)
{
  const char *colon = strchr (text, ':');
  g_autofree char *name = NULL;
  g_autofree char *value = NULL;

  if (colon != NULL)
    {
      name = g_strstrip (g_strndup (text, colon - text));
      value = g_strstrip (g_strdup (colon + 1));
    }
  if (name == NULL || name[0] == '\0' || strpbrk (value, "\r\n") != NULL)
    {
      g_autofree char *what = g_strdup_printf ("invalid header '%s' in 'headers'", text);

      report (config, section, "headers", what, ": expected \"Name: value\"");
      return NULL;
    }
  for (const char *p = name; *p != '\0'; p++)
    if (!is_token_char (*p))
      {
        g_autofree char *what = g_strdup_printf ("invalid header name '%s' in 'headers'", name);

        report (config, section, "headers", what, "");
        return NULL;
      }
  for (guint i = 0; credential_headers[i] != NULL; i++)
    if (g_ascii_strcasecmp (name, credential_headers[i]) == 0)
      {
        g_autofree char *tail = g_strdup_printf (" must not set %s: the API key comes from api_key_env "
                                                 "or api_key_file only", name);

        report (config, section, "headers", "'headers'", tail);
        return NULL;
      }
  return g_strdup_printf ("%s: %s", name, value);
}

/* `headers = ["X-A: 1", "X-B: 2,3"]`, or `headers = X-A: 1; X-B: 2`. */
static char **
read_headers (ChimeConfig *config,
              const char  *section)
{
  g_autofree char *raw = chime_config_read_raw (config, section, "headers");
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) items = NULL;

  if (raw == NULL)
    return g_new0 (char *, 1);
  if (raw[0] == '[')
    {
      items = chime_config_read_json_strings (config, section, "headers", "[\"X-Title: chime\"]");
      if (items == NULL)
        items = g_new0 (char *, 1);
    }
  else
    {
      g_autofree char *value = chime_config_read_string (config, section, "headers", NULL);

      /* There is a value, but GKeyFile cannot read it as a string (it is
       * not UTF-8, or has an unknown escape). */
      if (value == NULL)
        {
          report (config, section, "headers", "invalid value for 'headers'",
                  ": expected UTF-8 text like X-A: 1; X-B: 2");
          return g_new0 (char *, 1);
        }
      items = g_strsplit (value, ";", -1);
    }
  for (guint i = 0; items[i] != NULL; i++)
    {
      g_autofree char *header = NULL;

      if (g_strstrip (items[i])[0] == '\0')
        continue;
      header = parse_header (config, section, items[i]);
      if (header != NULL)
        g_strv_builder_add (builder, header);
    }
  return g_strv_builder_end (builder);
}

static json_t *
read_extra_body (ChimeProviderModel *model,
                 ChimeConfig        *config,
                 const char         *section)
{
  g_autofree char *raw = chime_config_read_raw (config, section, "extra_body");
  const char *const *reserved = model->ops->reserved_body_keys;
  g_autoptr (json_t) body = NULL;
  json_error_t error;

  if (raw == NULL)
    return NULL;
  body = json_loads (raw, 0, &error);
  if (!json_is_object (body))
    {
      g_autofree char *tail = g_strdup_printf (": expected a JSON object like {\"top_p\": 0.9}%s%s",
                                               body == NULL ? ": " : "", body == NULL ? error.text : "");

      report (config, section, "extra_body", "invalid value for 'extra_body'", tail);
      return NULL;
    }
  for (guint i = 0; reserved != NULL && reserved[i] != NULL; i++)
    if (json_object_get (body, reserved[i]) != NULL)
      {
        g_autofree char *tail = g_strdup_printf (" must not set '%s': chime sets it", reserved[i]);

        report (config, section, "extra_body", "'extra_body'", tail);
      }
  return g_steal_pointer (&body);
}

/* `tool_choice`: auto, none, required (any, Anthropic's word, too) or
 * the name of the one tool the model must call. Sent only with tools. */
static char *
read_tool_choice (ChimeConfig *config,
                  const char  *section)
{
  g_autofree char *value = chime_config_read_string (config, section, "tool_choice", NULL);

  if (value == NULL)
    return NULL;
  if (g_str_equal (value, "any"))
    return g_strdup ("required");
  if (!chime_provider_is_tool_name (value))
    {
      report (config, section, "tool_choice", "invalid value for 'tool_choice'",
              ": expected auto, none, required or the name of a tool (letters, digits, _ and -, "
              "up to 64)");
      return NULL;
    }
  return g_steal_pointer (&value);
}

gboolean
chime_provider_model_read (ChimeProviderModel     *model,
                           const ChimeProviderOps *ops,
                           ChimeConfig            *config,
                           const char             *section)
{
  guint problems_before = chime_config_get_n_problems (config);
  GKeyFile *key_file = chime_config_get_key_file (config);

  model->ops = ops;
  model->section = g_strdup (section);
  model->parent.model_name = chime_config_read_string (config, section, "model", NULL);
  if (model->parent.model_name == NULL || model->parent.model_name[0] == '\0')
    {
      g_autofree char *tail = g_strdup_printf (": the %s model to call", ops->name);

      report (config, section, NULL, "missing required key 'model'", tail);
    }
  model->base_url = read_base_url (config, section, ops->default_base_url);
  read_api_key_source (model, config, section);
  if (g_key_file_has_key (key_file, section, "temperature", NULL))
    model->has_temperature = chime_config_read_double (config, section, "temperature", 0.0, 0.0,
                                                       ops->max_temperature, &model->temperature);
  chime_config_read_int (config, section, "max_tokens", ops->default_max_tokens, 1, 100000000,
                         &model->max_tokens);
  model->stop = read_stop (config, section);
  model->headers = read_headers (config, section);
  model->extra_body = read_extra_body (model, config, section);
  model->tool_choice = read_tool_choice (config, section);
  chime_config_read_double (config, section, "timeout_s", 600.0, 0.001, 86400.0, &model->timeout_s);
  chime_config_read_double (config, section, "connect_timeout_s", 10.0, 0.001, 3600.0,
                            &model->connect_timeout_s);
  chime_config_read_int (config, section, "max_retries", 2, 0, 100, &model->max_retries);
  return chime_config_get_n_problems (config) == problems_before;
}

void
chime_provider_model_clear (ChimeProviderModel *model)
{
  g_free (model->section);
  g_free (model->base_url);
  g_free (model->api_key_env);
  g_free (model->api_key_file);
  g_strfreev (model->stop);
  g_strfreev (model->headers);
  g_clear_pointer (&model->extra_body, json_decref);
  g_free (model->tool_choice);
  g_clear_pointer (&model->client, chime_http_client_unref);
}

/* ------------------------------------------------------------------
 * When a stream starts
 * ---------------------------------------------------------------- */

/* An API key file other users can read gives the key away (ssh refuses
 * such keys outright; a warning is enough here, said once). */
static void
warn_if_readable_by_others (ChimeProviderModel *model)
{
  struct stat info;

  if (model->warned_key_mode || stat (model->api_key_file, &info) != 0 || !(info.st_mode & S_IROTH))
    return;
  model->warned_key_mode = TRUE;
  g_warning ("%s (api_key_file in [%s]) can be read by every user of this machine (mode %04o): "
             "run chmod 600 %s", model->api_key_file, model->section, (guint) (info.st_mode & 07777),
             model->api_key_file);
}

char *
chime_provider_model_load_api_key (ChimeProviderModel *model,
                                   GError            **error)
{
  const char *name = model->ops->name;
  g_autofree char *key = NULL;

  if (model->api_key_file != NULL)
    {
      g_autoptr (GError) local = NULL;
      gsize length = 0;

      if (!chime_file_get_contents (model->api_key_file, MAX_API_KEY_FILE_SIZE, &key, &length, &local))
        {
          *error = chime_provider_error_new ("%s: cannot read the API key (api_key_file in [%s]): %s",
                                             name, model->section, local->message);
          return NULL;
        }
      if (!g_utf8_validate_len (key, length, NULL))
        {
          *error = chime_provider_error_new ("%s: the API key file %s (api_key_file in [%s]) is not "
                                             "UTF-8 text", name, model->api_key_file, model->section);
          return NULL;
        }
      g_strstrip (key);
      if (key[0] == '\0')
        {
          *error = chime_provider_error_new ("%s: the API key file %s (api_key_file in [%s]) is empty",
                                             name, model->api_key_file, model->section);
          return NULL;
        }
      warn_if_readable_by_others (model);
    }
  else if (model->api_key_env[0] == '\0')
    return g_strdup ("");   /* `api_key_env =`: send none */
  else
    {
      const char *value = g_getenv (model->api_key_env);

      if (value == NULL || value[0] == '\0')
        {
          *error = chime_provider_error_new ("%s: no API key: set %s (api_key_env) or api_key_file in [%s]",
                                             name, model->api_key_env, model->section);
          return NULL;
        }
      key = g_strstrip (g_strdup (value));
    }
  if (strpbrk (key, "\r\n") != NULL)
    {
      *error = chime_provider_error_new ("%s: the API key from %s has a line break in it", name,
                                         model->api_key_file != NULL ? model->api_key_file
                                                                     : model->api_key_env);
      return NULL;
    }
  return g_steal_pointer (&key);
}

static gboolean
header_has_name (const char *header,
                 const char *other)
{
  gsize length = strcspn (other, ":");

  return g_ascii_strncasecmp (header, other, length) == 0 && header[length] == ':';
}

char **
chime_provider_model_build_headers (ChimeProviderModel *model,
                                    const char         *api_key)
{
  GPtrArray *headers = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (headers, g_strdup ("Content-Type: application/json"));
  g_ptr_array_add (headers, g_strdup ("Accept: text/event-stream"));
  model->ops->add_headers (model, api_key, headers);
  for (guint i = 0; model->headers[i] != NULL; i++)
    {
      for (guint j = headers->len; j-- > 0;)
        if (header_has_name (g_ptr_array_index (headers, j), model->headers[i]))
          g_ptr_array_remove_index (headers, j);
      g_ptr_array_add (headers, g_strdup (model->headers[i]));
    }
  g_ptr_array_add (headers, NULL);
  return (char **) g_ptr_array_free (headers, FALSE);
}
