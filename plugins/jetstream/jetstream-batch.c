/* jetstream — the message being filled with events.
 *
 * A message carries consecutive events of one root run and one type, so
 * its subject PREFIX.ROOT_RUN_ID.EVENT says what every event in it is,
 * subject filters keep their meaning and a run's order is the stream's.
 * Its body is their transport forms, one a line (jetstream-message.c);
 * its Nats-Msg-Id the first event's id, and "+COUNT" when it carries more
 * than one: a message sent again is the same bytes under the same id,
 * which the server's duplicate window drops. One event alone is the
 * message it always was, with no count header. */
#include "jetstream-batch.h"

#include "jetstream-message.h"

typedef struct {
  gboolean   known;
  ChimeRunId id;
  char       text[CHIME_RUN_ID_STRING_LEN];
} RunText;

struct _JetstreamBatch {
  char          *prefix;
  gboolean       headers;
  GString       *body;
  GString       *subject;
  guint          count;
  char           first_id[CHIME_EVENT_ID_LEN];
  ChimeEventType type;
  /* The key: the root run of every event so far. */
  ChimeRunId     root;
  /* The run (and parent) of every event so far, while they share one:
   * only then does the message get Chime-Run-Id and Chime-Parent-Run-Id. */
  gboolean       one_run;
  ChimeRunId     run;
  gboolean       has_parent;
  ChimeRunId     parent;
  /* Ids as text, formatted only when they differ from the last ones:
   * formatting ids was a tenth of an event's cost. */
  RunText        run_text;
  RunText        root_text;
};

JetstreamBatch *
jetstream_batch_new (const char *prefix,
                     gboolean    headers)
{
  JetstreamBatch *self = g_new0 (JetstreamBatch, 1);

  self->prefix = g_strdup (prefix);
  self->headers = headers;
  self->body = g_string_sized_new (4096);
  self->subject = g_string_sized_new (128);
  return self;
}

void
jetstream_batch_free (JetstreamBatch *self)
{
  if (self == NULL)
    return;
  g_string_free (self->body, TRUE);
  g_string_free (self->subject, TRUE);
  g_free (self->prefix);
  g_free (self);
}

static const ChimeRunInfo *
root_of (const ChimeRunInfo *run)
{
  while (chime_run_info_get_parent (run) != NULL)
    run = chime_run_info_get_parent (run);
  return run;
}

/* @id as text, formatted only when it differs from the last one. */
static const char *
run_text (RunText          *cache,
          const ChimeRunId *id)
{
  if (!cache->known || !chime_run_id_equal (&cache->id, id))
    {
      cache->id = *id;
      cache->known = TRUE;
      chime_run_id_to_string (id, cache->text);
    }
  return cache->text;
}

/* The batch's first event: the key, the id, the subject. */
static void
open_with (JetstreamBatch     *self,
           ChimeEvent         *event,
           const ChimeRunInfo *run,
           const ChimeRunId   *root)
{
  const ChimeRunId *parent = chime_run_info_get_parent_id (run);

  self->type = chime_event_get_event_type (event);
  self->root = *root;
  self->run = *chime_run_info_get_id (run);
  self->one_run = TRUE;
  self->has_parent = parent != NULL;
  if (parent != NULL)
    self->parent = *parent;
  chime_event_get_id (event, self->first_id);
  g_string_assign (self->subject, self->prefix);
  g_string_append_c (self->subject, '.');
  g_string_append (self->subject, run_text (&self->root_text, root));
  g_string_append_c (self->subject, '.');
  g_string_append (self->subject, chime_event_type_to_string (self->type));
}

gboolean
jetstream_batch_add (JetstreamBatch *self,
                     ChimeEvent     *event)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  const ChimeRunId *root = chime_run_info_get_id (root_of (run));

  if (self->count == 0)
    open_with (self, event, run, root);
  else if (chime_event_get_event_type (event) != self->type || !chime_run_id_equal (root, &self->root))
    return FALSE;
  else
    {
      if (self->one_run && !chime_run_id_equal (chime_run_info_get_id (run), &self->run))
        self->one_run = FALSE;
      g_string_append_c (self->body, '\n');
    }
  chime_event_append_transport (event, self->body);
  self->count++;
  return TRUE;
}

guint
jetstream_batch_get_count (JetstreamBatch *self)
{
  return self->count;
}

gsize
jetstream_batch_get_size (JetstreamBatch *self)
{
  return self->body->len;
}

/* Nats-Msg-Id: the first event's id, "+COUNT" for several. */
static void
set_id (JetstreamBatch *self,
        natsMsg        *message)
{
  char id[CHIME_EVENT_ID_LEN + 8];
  char count[12];

  if (self->count == 1)
    {
      natsMsgHeader_Set (message, "Nats-Msg-Id", self->first_id);
      return;
    }
  g_snprintf (count, sizeof count, "%u", self->count);
  g_snprintf (id, sizeof id, "%s+%s", self->first_id, count);
  natsMsgHeader_Set (message, "Nats-Msg-Id", id);
  natsMsgHeader_Set (message, JETSTREAM_COUNT_HEADER, count);
}

/* Each header is a few allocations in libnats (about 2 us of the
 * runner's CPU for the four): once per message now, not per event. */
static void
set_chime_headers (JetstreamBatch *self,
                   natsMsg        *message)
{
  natsMsgHeader_Set (message, "Chime-Event", chime_event_type_to_string (self->type));
  natsMsgHeader_Set (message, "Chime-Root-Run-Id", run_text (&self->root_text, &self->root));
  if (!self->one_run)
    return;
  natsMsgHeader_Set (message, "Chime-Run-Id", run_text (&self->run_text, &self->run));
  if (self->has_parent)
    {
      char parent_id[CHIME_RUN_ID_STRING_LEN];

      chime_run_id_to_string (&self->parent, parent_id);
      natsMsgHeader_Set (message, "Chime-Parent-Run-Id", parent_id);
    }
}

natsMsg *
jetstream_batch_close (JetstreamBatch *self)
{
  natsMsg *message = NULL;

  g_return_val_if_fail (self->count > 0, NULL);
  if (natsMsg_Create (&message, self->subject->str, NULL, self->body->str, (int) self->body->len) == NATS_OK)
    {
      set_id (self, message);
      if (self->headers)
        set_chime_headers (self, message);
    }
  g_string_truncate (self->body, 0);
  self->count = 0;
  return message;
}
