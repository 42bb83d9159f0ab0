/* Tool calling on the request side, shared by the HTTP chat model
 * providers (provider-tools.h). The tools are checked here rather than
 * left to the API: a bad tool is then a clear error before any request,
 * naming the tool, not an HTTP 400 quoting the provider's schema
 * validator. */
#include "config.h"

#include "provider-tools.h"
#include "pipeline/pipeline-error.h"

#include <string.h>

gboolean
chime_provider_is_tool_name (const char *name)
{
  gsize length = name != NULL ? strlen (name) : 0;

  if (length == 0 || length > 64)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

static gboolean
check_tool (ChimeProviderModel *model,
            json_t             *tool,
            gsize               i,
            GError            **error)
{
  const char *name = json_string_value (json_object_get (tool, "name"));
  json_t *description = json_object_get (tool, "description");
  json_t *parameters = json_object_get (tool, "parameters");
  const char *problem = NULL;

  if (!json_is_object (tool))
    problem = "is not an object";
  else if (!chime_provider_is_tool_name (name))
    problem = "has no valid name (1 to 64 letters, digits, _ and -)";
  else if (description != NULL && !json_is_string (description))
    problem = "has a description that is not a string";
  else if (parameters != NULL && !json_is_object (parameters))
    problem = "has parameters that are not a JSON Schema object";
  if (problem == NULL)
    return TRUE;
  g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL, "%s: tool %zu (%s) offered to [%s] %s",
               model->ops->name, i + 1, name != NULL ? name : "unnamed", model->section, problem);
  return FALSE;
}

gboolean
chime_provider_check_tools (ChimeProviderModel *model,
                            json_t             *tools,
                            GError            **error)
{
  json_t *tool;
  gsize i;

  if (tools == NULL)
    return TRUE;
  if (!json_is_array (tools))
    {
      g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
                   "%s: the tools offered to [%s] are not an array", model->ops->name, model->section);
      return FALSE;
    }
  json_array_foreach (tools, i, tool)
    if (!check_tool (model, tool, i, error))
      return FALSE;
  return TRUE;
}

static gboolean
offers (json_t     *tools,
        const char *name)
{
  json_t *tool;
  gsize i;

  json_array_foreach (tools, i, tool)
    if (g_strcmp0 (json_string_value (json_object_get (tool, "name")), name) == 0)
      return TRUE;
  return FALSE;
}

gboolean
chime_provider_prepare_tools (ChimeProviderModel *model,
                              json_t             *tools,
                              const char        **choice,
                              GError            **error)
{
  static const char *const kinds[] = { "auto", "none", "required", NULL };
  const char *wanted = model->tool_choice;

  *choice = NULL;
  if (!chime_provider_check_tools (model, tools, error))
    return FALSE;
  if (wanted == NULL || json_array_size (tools) == 0)
    return TRUE;
  if (g_strv_contains (kinds, wanted) || offers (tools, wanted))
    {
      *choice = wanted;
      return TRUE;
    }
  g_set_error (error, CHIME_PIPELINE_ERROR, CHIME_PIPELINE_ERROR_MODEL,
               "%s: tool_choice = %s in [%s] names a tool that is not offered to the model; "
               "set it to auto, none, required or one of the tools' names",
               model->ops->name, wanted, model->section);
  return FALSE;
}

gboolean
chime_provider_add_tools (ChimeProviderModel *model,
                          json_t             *body,
                          json_t             *tools,
                          json_t           *(*wire_tool)   (json_t     *tool),
                          json_t           *(*wire_choice) (const char *choice),
                          GError            **error)
{
  const char *choice;
  json_t *wire, *tool;
  gsize i;

  if (!chime_provider_prepare_tools (model, tools, &choice, error))
    return FALSE;
  if (json_array_size (tools) == 0)
    return TRUE;
  wire = json_array ();
  json_array_foreach (tools, i, tool)
    json_array_append_new (wire, wire_tool (tool));
  json_object_set_new (body, "tools", wire);
  if (choice != NULL)
    json_object_set_new (body, "tool_choice", wire_choice (choice));
  return TRUE;
}

json_t *
chime_provider_tool_parameters (json_t *tool)
{
  json_t *parameters = json_object_get (tool, "parameters");

  if (parameters != NULL)
    return json_incref (parameters);
  return json_pack ("{s:s, s:{}}", "type", "object", "properties");
}

char *
chime_provider_tool_args_text (json_t *args)
{
  char *text;
  char *copy;

  if (json_is_string (args))
    return g_strdup (json_string_value (args));
  if (args == NULL || json_is_null (args))
    return g_strdup ("{}");
  text = json_dumps (args, JSON_COMPACT | JSON_ENCODE_ANY);
  copy = g_strdup (text != NULL ? text : "{}");
  free (text);
  return copy;
}
