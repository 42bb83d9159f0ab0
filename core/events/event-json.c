/* Events as JSON: the machine-readable form handlers and the jsonl plugin
 * write, documented in docs/events.md. */
#include "config.h"

#include "event-private.h"
#include "event-json.h"

#include <time.h>

void
chime_format_iso8601 (gint64 real_time_us,
                      char   out[CHIME_ISO8601_LEN])
{
  time_t seconds = (time_t) (real_time_us / G_USEC_PER_SEC);
  struct tm tm;

  gmtime_r (&seconds, &tm);
  g_snprintf (out, CHIME_ISO8601_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
              tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int) (real_time_us % G_USEC_PER_SEC));
}

json_t *
chime_run_id_to_json (const ChimeRunId *id)
{
  char text[CHIME_RUN_ID_STRING_LEN];

  if (id == NULL)
    return json_null ();
  chime_run_id_to_string (id, text);
  return json_string (text);
}

/* A JSON string of @text. jansson refuses text that is not UTF-8, and the
 * member or element would then be left out without a word; the strings
 * of an event come from plugins, servers and files, so such text is
 * written with U+FFFD in place of the bytes that are not. */
static json_t *
string_to_json (const char *text)
{
  g_autofree char *valid = NULL;

  if (g_utf8_validate (text, -1, NULL))
    return json_string_nocheck (text);
  valid = g_utf8_make_valid (text, -1);
  return json_string_nocheck (valid);
}

json_t *
chime_error_to_json (const GError *error)
{
  json_t *object;

  if (error == NULL)
    return json_null ();
  object = json_object ();
  json_object_set_new (object, "message", string_to_json (error->message));
  json_object_set_new (object, "domain", error->domain != 0 ? string_to_json (g_quark_to_string (error->domain))
                                                             : json_null ());
  json_object_set_new (object, "code", json_integer (error->code));
  return object;
}

json_t *
chime_strv_to_json (const char * const *strv)
{
  json_t *array = json_array ();

  for (; strv != NULL && *strv != NULL; strv++)
    json_array_append_new (array, string_to_json (*strv));
  return array;
}

static void
set_if (json_t     *object,
        const char *key,
        json_t     *value)
{
  if (value != NULL)
    json_object_set (object, key, value);
}

static void
set_string_if (json_t     *object,
               const char *key,
               const char *value)
{
  if (value != NULL)
    json_object_set_new (object, key, string_to_json (value));
}

json_t *
chime_event_to_json (ChimeEvent *event)
{
  const ChimeRunInfo *run = event->run;
  json_t *object = json_object ();
  char time_text[CHIME_ISO8601_LEN];

  chime_format_iso8601 (chime_event_get_real_time (event), time_text);
  json_object_set_new (object, "event", json_string (chime_event_type_to_string (event->type)));
  json_object_set_new (object, "run_id", chime_run_id_to_json (&run->id));
  json_object_set_new (object, "parent_run_id",
                       chime_run_id_to_json (chime_run_info_get_parent_id (run)));
  json_object_set_new (object, "run_type", string_to_json (run->run_type));
  json_object_set_new (object, "name", string_to_json (run->name));
  json_object_set_new (object, "tags", chime_strv_to_json ((const char * const *) run->tags));
  json_object_set (object, "metadata", run->metadata);
  json_object_set_new (object, "time", json_string (time_text));

  set_string_if (object, "token", chime_event_get_token (event));
  set_if (object, "chunk", chime_event_get_chunk (event));
  if (event->payload == NULL)
    return object;
  set_if (object, "serialized", event->payload->serialized);
  set_if (object, "prompts", event->payload->prompts);
  set_if (object, "messages", event->payload->messages);
  set_if (object, "inputs", event->payload->inputs);
  set_if (object, "outputs", event->payload->outputs);
  set_if (object, "response", event->payload->response);
  if (event->payload->error != NULL)
    json_object_set_new (object, "error", chime_error_to_json (event->payload->error));
  set_string_if (object, "text", event->payload->text);
  set_string_if (object, "event_name", event->payload->custom_name);
  set_if (object, "data", event->payload->data);
  set_if (object, "kwargs", event->payload->kwargs);
  return object;
}
