/* The members of a provider's events, read with their types checked.
 *
 * A member chime reads that is not of the type the API documents fails
 * the stream with a message that names it: "openai: the stream sent
 * choices[0].delta.content as a number; expected a string". Skipping it
 * instead would turn a broken response (a proxy that rewrites bodies, a
 * server that only looks compatible) into an empty or partial answer
 * that claims success. Members chime does not read are not looked at.
 *
 * Absent and null members are accepted everywhere: the APIs send null
 * for "none" (content: null beside tool calls, finish_reason: null until
 * the last choice, usage: null before the usage chunk). */
#include "config.h"

#include "provider-fields.h"
#include "provider-stream-events.h"

static void
append_path (GString              *text,
             const ChimeFieldPath *path)
{
  if (path->parent != NULL)
    append_path (text, path->parent);
  if (path->key == NULL)
    g_string_append_printf (text, "[%" G_GSIZE_FORMAT "]", path->index);
  else
    {
      if (path->parent != NULL)
        g_string_append_c (text, '.');
      g_string_append (text, path->key);
    }
}

char *
chime_field_path_to_string (const ChimeFieldPath *path)
{
  GString *text = g_string_new (NULL);

  append_path (text, path);
  return g_string_free (text, FALSE);
}

static gboolean
has_type (json_t        *value,
          ChimeFieldType type)
{
  switch (type)
    {
    case CHIME_FIELD_STRING:
      return json_is_string (value);
    case CHIME_FIELD_OBJECT:
      return json_is_object (value);
    case CHIME_FIELD_ARRAY:
      return json_is_array (value);
    case CHIME_FIELD_INTEGER:
      return json_is_integer (value);
    case CHIME_FIELD_COUNT:
    default:
      return json_is_integer (value) && json_integer_value (value) >= 0;
    }
}

static const char *
expected_text (ChimeFieldType type)
{
  switch (type)
    {
    case CHIME_FIELD_STRING: return "a string";
    case CHIME_FIELD_OBJECT: return "an object";
    case CHIME_FIELD_ARRAY: return "an array";
    case CHIME_FIELD_INTEGER: return "an integer";
    case CHIME_FIELD_COUNT:
    default: return "a non-negative integer";
    }
}

/* What @value is, in words. A number where a count is expected is named
 * with its value: "a number" would not say what is wrong with -3. */
static char *
describe_value (json_t        *value,
                ChimeFieldType type)
{
  switch (json_typeof (value))
    {
    case JSON_OBJECT: return g_strdup ("an object");
    case JSON_ARRAY: return g_strdup ("an array");
    case JSON_STRING: return g_strdup ("a string");
    case JSON_TRUE:
    case JSON_FALSE: return g_strdup ("a boolean");
    case JSON_NULL: return g_strdup ("null");
    case JSON_INTEGER:
      if (type == CHIME_FIELD_COUNT || type == CHIME_FIELD_INTEGER)
        return g_strdup_printf ("the number %" JSON_INTEGER_FORMAT, json_integer_value (value));
      return g_strdup ("a number");
    case JSON_REAL:
    default:
      if (type == CHIME_FIELD_COUNT || type == CHIME_FIELD_INTEGER)
        {
          char buffer[G_ASCII_DTOSTR_BUF_SIZE];

          return g_strdup_printf ("the number %s", g_ascii_dtostr (buffer, sizeof buffer,
                                                                   json_real_value (value)));
        }
      return g_strdup ("a number");
    }
}

char *
chime_field_check (json_t               *value,
                   const ChimeFieldPath *path,
                   ChimeFieldType        type)
{
  g_autofree char *where = NULL;
  g_autofree char *what = NULL;

  if (value == NULL || json_is_null (value) || has_type (value, type))
    return NULL;
  where = chime_field_path_to_string (path);
  what = describe_value (value, type);
  return g_strdup_printf ("%s as %s; expected %s", where, what, expected_text (type));
}

gboolean
chime_provider_stream_check (ChimeModelStream     *stream,
                             json_t               *value,
                             const ChimeFieldPath *path,
                             ChimeFieldType        type)
{
  g_autofree char *problem = chime_field_check (value, path, type);

  if (problem == NULL)
    return TRUE;
  chime_provider_stream_fail (stream, "the stream sent %s", problem);
  return FALSE;
}

gboolean
chime_provider_stream_member (ChimeModelStream     *stream,
                              json_t               *object,
                              const ChimeFieldPath *path,
                              ChimeFieldType        type,
                              json_t              **value)
{
  json_t *member = json_object_get (object, path->key);

  *value = NULL;
  if (!chime_provider_stream_check (stream, member, path, type))
    return FALSE;
  if (!json_is_null (member))
    *value = member;
  return TRUE;
}

gboolean
chime_provider_stream_string (ChimeModelStream     *stream,
                              json_t               *object,
                              const ChimeFieldPath *path,
                              const char          **value)
{
  json_t *member;

  *value = NULL;
  if (!chime_provider_stream_member (stream, object, path, CHIME_FIELD_STRING, &member))
    return FALSE;
  *value = json_string_value (member);
  return TRUE;
}

gboolean
chime_provider_stream_count (ChimeModelStream     *stream,
                             json_t               *object,
                             const ChimeFieldPath *path,
                             gint64               *value)
{
  json_t *member;

  *value = -1;
  if (!chime_provider_stream_member (stream, object, path, CHIME_FIELD_COUNT, &member))
    return FALSE;
  if (member != NULL)
    *value = (gint64) json_integer_value (member);
  return TRUE;
}

gboolean
chime_provider_stream_keep_string (ChimeModelStream     *stream,
                                   char                **slot,
                                   json_t               *object,
                                   const ChimeFieldPath *path)
{
  const char *value;

  if (!chime_provider_stream_string (stream, object, path, &value))
    return FALSE;
  if (value != NULL && g_strcmp0 (*slot, value) != 0)
    {
      g_free (*slot);
      *slot = g_strdup (value);
    }
  return TRUE;
}
