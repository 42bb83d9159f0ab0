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

json_t *
chime_error_to_json (const GError *error)
{
  if (error == NULL)
    return json_null ();
  return json_pack ("{s:s, s:s, s:i}",
                    "message", error->message,
                    "domain", g_quark_to_string (error->domain),
                    "code", error->code);
}

json_t *
chime_strv_to_json (const char * const *strv)
{
  json_t *array = json_array ();

  for (; strv != NULL && *strv != NULL; strv++)
    json_array_append_new (array, json_string (*strv));
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
    json_object_set_new (object, key, json_string (value));
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
  json_object_set_new (object, "run_type", json_string (run->run_type));
  json_object_set_new (object, "name", json_string (run->name));
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
