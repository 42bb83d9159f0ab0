/* What chime sends a handler's host process, gathered so that a token is
 * not a system call: frames wait in a buffer until the link writes them
 * (its handler's queue is caught up, 64 KiB wait, or it waits for an
 * answer). And a run's info (its name, tags, metadata, ancestors) goes to
 * the host once, the first time one of its events does; events then name
 * the run by id, until the event that ends it makes both sides forget it
 * (plugin-host.c keeps the same table). A token, nearly every event, is
 * written by hand rather than through a JSON tree. */
#include "config.h"

#include "host-outbox.h"
#include "host-frames.h"
#include "events/event-wire.h"

#include <string.h>

struct _ChimeHostOutbox {
  GString    *frames;
  GHashTable *sent_runs;    /* ChimeRunId * the host has the info of */
};

static guint
run_id_hash (gconstpointer key)
{
  const ChimeRunId *id = key;
  guint hash = 0;

  /* UUIDv7: the first bytes are a time stamp, the last are random. */
  memcpy (&hash, id->bytes + sizeof id->bytes - sizeof hash, sizeof hash);
  return hash;
}

ChimeHostOutbox *
chime_host_outbox_new (void)
{
  ChimeHostOutbox *outbox = g_new0 (ChimeHostOutbox, 1);

  outbox->frames = g_string_sized_new (CHIME_HOST_OUTBOX_FLUSH_BYTES + 4096);
  outbox->sent_runs = g_hash_table_new_full (run_id_hash, (GEqualFunc) chime_run_id_equal, g_free, NULL);
  return outbox;
}

void
chime_host_outbox_free (ChimeHostOutbox *outbox)
{
  if (outbox == NULL)
    return;
  g_string_free (outbox->frames, TRUE);
  g_hash_table_unref (outbox->sent_runs);
  g_free (outbox);
}

void
chime_host_outbox_reset (ChimeHostOutbox *outbox)
{
  g_string_truncate (outbox->frames, 0);
  g_hash_table_remove_all (outbox->sent_runs);
}

static gboolean
add_message (ChimeHostOutbox *outbox,
             json_t          *message)
{
  gboolean ok = chime_frame_append (outbox->frames, message, NULL);

  json_decref (message);
  return ok;
}

/* A token's frame, written without a JSON tree; FALSE, with nothing
 * added, for any other event. */
static gboolean
add_token (ChimeHostOutbox *outbox,
           guint64          seq,
           ChimeEvent      *event,
           gboolean        *ok)
{
  gsize at = chime_frame_begin (outbox->frames);

  g_string_append_printf (outbox->frames, "{\"seq\":%" G_GUINT64_FORMAT ",\"event\":", seq);
  if (!chime_event_append_token_wire (event, outbox->frames))
    {
      g_string_truncate (outbox->frames, at);
      return FALSE;
    }
  g_string_append_c (outbox->frames, '}');
  *ok = chime_frame_end (outbox->frames, at, NULL);
  return TRUE;
}

gboolean
chime_host_outbox_add (ChimeHostOutbox *outbox,
                       guint64          seq,
                       ChimeEvent      *event)
{
  const ChimeRunInfo *run = chime_event_get_run (event);
  const ChimeRunId *id = chime_run_info_get_id (run);
  gboolean ok = TRUE;

  if (!g_hash_table_contains (outbox->sent_runs, id))
    {
      ok = add_message (outbox, json_pack ("{s:o}", "run", chime_run_info_to_wire (run)));
      g_hash_table_add (outbox->sent_runs, g_memdup2 (id, sizeof *id));
    }
  if (!add_token (outbox, seq, event, &ok))
    ok = add_message (outbox, json_pack ("{s:I, s:o}", "seq", (json_int_t) seq,
                                         "event", chime_event_to_wire (event, FALSE))) && ok;
  /* Its run is over: the host forgets it too. */
  if (chime_event_type_ends_run (chime_event_get_event_type (event)))
    g_hash_table_remove (outbox->sent_runs, id);
  return ok;
}

gsize
chime_host_outbox_size (ChimeHostOutbox *outbox)
{
  return outbox->frames->len;
}

gboolean
chime_host_outbox_flush (ChimeHostOutbox *outbox,
                         int              fd)
{
  if (outbox->frames->len == 0)
    return TRUE;
  return chime_frame_flush (fd, outbox->frames, NULL);
}
