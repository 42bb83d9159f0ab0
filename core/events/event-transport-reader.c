/* Reading transport forms one after another (a jetstream message's lines).
 *
 * Every transport form carries its whole run chain, and jansson reads
 * JSON at about 150 instructions a byte: a token, a few hundred bytes
 * with its runs, cost `chime consume` some 100,000 instructions to read.
 * The reader keeps the last run's text and the run rebuilt from it; a
 * token written by chime_event_append_transport() whose run text is that
 * one is read without a JSON tree, its run shared with the events before
 * it (as a run's events share it where they were emitted). Anything else
 * goes through chime_event_from_transport(), which also says what is
 * wrong with text that is not an event. */
#include "config.h"

#include "event-wire.h"

#include <string.h>

#define TOKEN_START "{\"type\":\"llm_new_token\",\"run\":"
#define AFTER_RUN ",\"monotonic_time\":"
#define TRANSPORT_ERROR (g_quark_from_static_string ("chime-event-wire-error"))

struct _ChimeTransportReader {
  /* The last run read: its text in the form and the run made of it. */
  char         *run_text;
  gsize         run_length;
  ChimeRunInfo *run;
};

ChimeTransportReader *
chime_transport_reader_new (void)
{
  return g_new0 (ChimeTransportReader, 1);
}

void
chime_transport_reader_free (ChimeTransportReader *reader)
{
  if (reader == NULL)
    return;
  g_free (reader->run_text);
  g_clear_pointer (&reader->run, chime_run_info_unref);
  g_free (reader);
}

/* The run whose text starts at *@p (a borrowed pointer), *@p moved past
 * it; NULL when there is no run text ending before AFTER_RUN there. */
static ChimeRunInfo *
read_run (ChimeTransportReader *reader,
          const char          **p,
          const char           *end)
{
  const char *stop;
  json_t *wire;
  ChimeRunInfo *run;

  if (reader->run != NULL && (gsize) (end - *p) > reader->run_length + strlen (AFTER_RUN) &&
      memcmp (*p, reader->run_text, reader->run_length) == 0 &&
      memcmp (*p + reader->run_length, AFTER_RUN, strlen (AFTER_RUN)) == 0)
    {
      *p += reader->run_length;
      return reader->run;
    }
  /* The first AFTER_RUN may be inside one of the run's strings: then the
   * text before it is no whole object and the JSON reader refuses it. */
  stop = g_strstr_len (*p, end - *p, AFTER_RUN);
  if (stop == NULL || (wire = json_loadb (*p, (size_t) (stop - *p), 0, NULL)) == NULL)
    return NULL;
  run = chime_run_info_from_wire (wire, NULL);
  json_decref (wire);
  if (run == NULL)
    return NULL;
  g_free (reader->run_text);
  reader->run_text = g_strndup (*p, (gsize) (stop - *p));
  reader->run_length = (gsize) (stop - *p);
  g_clear_pointer (&reader->run, chime_run_info_unref);
  reader->run = run;
  *p = stop;
  return run;
}

/* The token chime_event_append_transport() wrote as @text, or NULL. */
static ChimeEvent *
read_token (ChimeTransportReader *reader,
            const char           *text,
            gsize                 length)
{
  const char *p = text;
  const char *end = text + length;
  g_autofree char *token = NULL;
  ChimeRunInfo *run;
  ChimeEvent *event;
  gint64 time, sequence, real_time;

  if (!chime_wire_skip_literal (&p, end, TOKEN_START) || (run = read_run (reader, &p, end)) == NULL ||
      !chime_wire_skip_literal (&p, end, AFTER_RUN) || !chime_wire_read_integer (&p, end, &time) ||
      !chime_wire_skip_literal (&p, end, ",\"sequence\":") ||
      !chime_wire_read_integer (&p, end, &sequence) || sequence < 0 ||
      !chime_wire_skip_literal (&p, end, ",\"token\":\"") || (token = chime_wire_read_string (&p, end)) == NULL ||
      !chime_wire_skip_literal (&p, end, ",\"real_time\":") || !chime_wire_read_integer (&p, end, &real_time) ||
      !chime_wire_skip_literal (&p, end, "}") || p != end)
    return NULL;
  event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, run, token);
  event->sequence = (guint64) sequence;
  /* As chime_event_from_transport(): this machine's clock, from the
   * sender's real time. */
  event->monotonic_time = real_time - chime_event_real_time_offset ();
  return event;
}

ChimeEvent *
chime_transport_reader_read (ChimeTransportReader *reader,
                             const char           *text,
                             gsize                 length,
                             GError              **error)
{
  ChimeEvent *event = read_token (reader, text, length);
  json_error_t problem;
  g_autoptr (json_t) transport = NULL;

  if (event != NULL)
    return event;
  transport = json_loadb (text, length, 0, &problem);
  if (transport == NULL)
    {
      g_set_error (error, TRANSPORT_ERROR, 0, "not JSON (%s)", problem.text);
      return NULL;
    }
  return chime_event_from_transport (transport, error);
}
