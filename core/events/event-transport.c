/* Events between machines: the wire form of event-wire.c with the run in
 * every event (a message stands alone) and the wall clock, since two
 * machines' monotonic clocks have nothing in common. */
#include "config.h"

#include "event-wire.h"

#include <stdlib.h>
#include <string.h>

#define TRANSPORT_ERROR (g_quark_from_static_string ("chime-event-wire-error"))

json_t *
chime_event_to_transport (ChimeEvent *event)
{
  json_t *transport = chime_event_to_wire (event, TRUE);

  /* Monotonic clocks of two machines have nothing in common: the reader
   * rebuilds its own from the wall clock. */
  json_object_set_new (transport, "real_time", json_integer (chime_event_get_real_time (event)));
  return transport;
}

/* The run's wire form as text, made once per run. */
static const char *
run_wire_text (ChimeRunInfo *run)
{
  char *text = g_atomic_pointer_get (&run->wire_text);

  if (text == NULL)
    {
      g_autoptr (json_t) wire = chime_run_info_to_wire (run);
      char *dumped = json_dumps (wire, JSON_COMPACT);
      char *made = g_strdup (dumped);

      free (dumped);
      if (!g_atomic_pointer_compare_and_exchange (&run->wire_text, NULL, made))
        g_free (made);
      text = g_atomic_pointer_get (&run->wire_text);
    }
  return text;
}

static void
append_int64 (GString *out,
              gint64   value)
{
  char digits[20];

  g_string_append_len (out, digits, (gssize) chime_wire_format_int64 (digits, value));
}

void
chime_event_append_transport (ChimeEvent *event,
                              GString    *out)
{
  if (event->type != CHIME_EVENT_LLM_NEW_TOKEN || event->payload != NULL || event->token == NULL ||
      g_atomic_pointer_get (&event->chunk) != NULL || !g_utf8_validate (event->token, -1, NULL))
    {
      g_autoptr (json_t) transport = chime_event_to_transport (event);
      char *text = json_dumps (transport, JSON_COMPACT);

      g_string_append (out, text);
      free (text);
      return;
    }
  /* The keys in chime_event_to_transport()'s order. */
  g_string_append (out, "{\"type\":\"llm_new_token\",\"run\":");
  g_string_append (out, run_wire_text (event->run));
  g_string_append (out, ",\"monotonic_time\":");
  append_int64 (out, event->monotonic_time);
  g_string_append (out, ",\"sequence\":");
  append_int64 (out, (gint64) event->sequence);
  g_string_append (out, ",\"token\":");
  chime_wire_append_json_string (out, event->token);
  g_string_append (out, ",\"real_time\":");
  append_int64 (out, chime_event_get_real_time (event));
  g_string_append_c (out, '}');
}

ChimeEvent *
chime_event_from_transport (json_t  *transport,
                            GError **error)
{
  json_t *real_time = json_object_get (transport, "real_time");
  ChimeEvent *event;

  if (!json_is_object (transport) || !json_is_object (json_object_get (transport, "run")) ||
      !json_is_integer (real_time))
    {
      g_set_error (error, TRANSPORT_ERROR, 0, "not a chime event: no run object or no real_time");
      return NULL;
    }
  event = chime_event_from_wire (transport, NULL, error);
  if (event != NULL)
    event->monotonic_time = json_integer_value (real_time) - chime_event_real_time_offset ();
  return event;
}
