/* A sync test plugin that keeps token events and looks at them again
 * later: the ring makes each token in the slot it goes to, out of the
 * event it held a lap before (chime_event_renew_token_in_place; on a
 * fresh ring's first lap, the blank events of its slab), and this plugin
 * says whether that ever changed an event someone still holds or left
 * something of the old token behind. Per token it checks that
 *   - the token events it holds a reference to (every `keep_every`-th
 *     token, the last `keep` of them; the others the ring may reuse)
 *     still have the token text and number they had when it got them;
 *   - the chunk (built on first use, chime_event_get_chunk) has the
 *     token's own text;
 *   - the event's number is above the previous token's of its run and its
 *     time not below it (the test emits from one thread).
 * At shutdown it writes "TOKENS KEPT_CHANGED CHUNK_MISMATCHES
 * SEQUENCE_VIOLATIONS TIME_VIOLATIONS" to `report`. */
#include <chime/plugin.h>
#include <stdio.h>
#include <string.h>

#define MAX_KEEP 64

typedef struct {
  ChimeEvent *event;
  char       *token;
  guint64     sequence;
} Kept;

typedef struct {
  guint64 sequence;
  gint64  time;
} Last;

typedef struct {
  char    *report;
  guint    keep;
  guint    keep_every;
  Kept     kept[MAX_KEEP];
  guint64  tokens;
  guint64  kept_changed;
  guint64  chunk_mismatches;
  guint64  sequence_violations;
  guint64  time_violations;
  GHashTable *last;   /* const ChimeRunInfo * -> Last */
} Keeper;

static gpointer
keeper_new (ChimeHandlerContext *context,
            GError             **error)
{
  Keeper *self = g_new0 (Keeper, 1);

  self->report = g_strdup (chime_handler_context_get_string (context, "report"));
  self->keep = CLAMP (chime_handler_context_get_int (context, "keep"), 0, MAX_KEEP);
  self->keep_every = MAX (chime_handler_context_get_int (context, "keep_every"), 1);
  self->last = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  return self;
}

static void
keeper_free (gpointer instance)
{
  Keeper *self = instance;
  FILE *file = self->report != NULL ? fopen (self->report, "w") : NULL;

  if (file != NULL)
    {
      fprintf (file, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
               " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n", self->tokens, self->kept_changed,
               self->chunk_mismatches, self->sequence_violations, self->time_violations);
      fclose (file);
    }
  for (guint i = 0; i < MAX_KEEP; i++)
    if (self->kept[i].event != NULL)
      {
        chime_event_unref (self->kept[i].event);
        g_free (self->kept[i].token);
      }
  g_hash_table_unref (self->last);
  g_free (self->report);
  g_free (self);
}

static void
check_kept (Keeper *self)
{
  for (guint i = 0; i < self->keep; i++)
    {
      Kept *kept = &self->kept[i];

      if (kept->event != NULL &&
          (g_strcmp0 (chime_event_get_token (kept->event), kept->token) != 0 ||
           chime_event_get_sequence (kept->event) != kept->sequence))
        self->kept_changed++;
    }
}

static gboolean
on_token (gpointer    instance,
          ChimeEvent *event,
          GError    **error)
{
  Keeper *self = instance;
  const char *token = chime_event_get_token (event);
  json_t *chunk = chime_event_get_chunk (event);
  guint64 sequence = chime_event_get_sequence (event);
  gint64 time = chime_event_get_monotonic_time (event);
  Last *last;

  if (chunk == NULL || g_strcmp0 (json_string_value (json_object_get (chunk, "text")), token) != 0)
    self->chunk_mismatches++;
  last = g_hash_table_lookup (self->last, chime_event_get_run (event));
  if (last == NULL)
    {
      last = g_new0 (Last, 1);
      g_hash_table_insert (self->last, (gpointer) chime_event_get_run (event), last);
    }
  else
    {
      if (sequence <= last->sequence)
        self->sequence_violations++;
      if (time < last->time)
        self->time_violations++;
    }
  last->sequence = sequence;
  last->time = time;
  check_kept (self);
  if (self->keep > 0 && self->tokens % self->keep_every == 0)
    {
      Kept *slot = &self->kept[(self->tokens / self->keep_every) % self->keep];

      if (slot->event != NULL)
        {
          chime_event_unref (slot->event);
          g_free (slot->token);
        }
      slot->event = chime_event_ref (event);
      slot->token = g_strdup (token);
      slot->sequence = sequence;
    }
  self->tokens++;
  return TRUE;
}

static const ChimeConfigKey keys[] = {
  { "report", CHIME_CONFIG_PATH, NULL, "write the counts here at shutdown" },
  { "keep", CHIME_CONFIG_INT, "0", "hold references to the last N token events kept (at most 64)" },
  { "keep_every", CHIME_CONFIG_INT, "1", "keep only every N-th token event" },
  { NULL }
};

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "token_keeper",
  .description = "test plugin: keeps token events and checks they never change",
  .version = "1",
  .config_keys = keys,
  .instance_new = keeper_new,
  .instance_free = keeper_free,
  .on_llm_new_token = on_token,
);
