/* JSON helpers shared by the event serializer and the runner. */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/event.h>

/* "2026-11-24T02:31:36.123456Z" plus NUL */
#define CHIME_ISO8601_LEN 28

void    chime_format_iso8601 (gint64 real_time_us,
                              char   out[CHIME_ISO8601_LEN]);
/* A run id as a JSON string, or null for NULL. New reference. */
json_t *chime_run_id_to_json (const ChimeRunId *id);
json_t *chime_strv_to_json   (const char * const *strv);
