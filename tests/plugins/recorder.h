/* Shared body of the test recorder plugins (sync and async).
 *
 * A recorder checks the dispatcher's promises from the inside and writes
 * what it saw:
 *   log    = PATH  one line per event, "HANDLER EVENT DETAIL", appended with
 *                  O_APPEND so several handlers can share one file and the
 *                  file shows the global order;
 *   report = PATH  a JSON summary at instance_free: counts per event type,
 *                  order violations (numeric tokens must increase by one
 *                  per run), overlapping calls (a handler must never run
 *                  concurrently with itself), distinct threads;
 *   fail_on = EVENT  fail every event of that type;
 *   delay_us = N   sleep (sync) or wait on the main loop (async) per event.
 * A custom event's DETAIL is "NAME RUN_TYPE DATA" (DATA as compact JSON).
 */
#pragma once

#include <chime/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  ChimeHandlerContext *context;
  int                  log_fd;
  char                *report;
  char                *fail_on;
  gint64               delay_us;
  GMutex               lock;           /* guards the maps below */
  GHashTable          *last_token;     /* run id string -> last numeric token */
  GHashTable          *threads;        /* GThread* seen */
  guint64              by_type[CHIME_EVENT_N_TYPES];
  guint64              events;
  guint64              order_violations;
  gint                 in_call;        /* atomic */
  guint64              overlaps;
  guint64              fallback_prompts;
} Recorder;

static const ChimeConfigKey recorder_keys[] = {
  { "log", CHIME_CONFIG_PATH, NULL, "append one line per event to this file" },
  { "report", CHIME_CONFIG_PATH, NULL, "write a JSON summary here at shutdown" },
  { "fail_on", CHIME_CONFIG_STRING, "", "fail every event of this type" },
  { "delay_us", CHIME_CONFIG_INT, "0", "spend this long on every event" },
  { NULL }
};

static gpointer
recorder_new (ChimeHandlerContext *context,
              GError             **error)
{
  Recorder *self = g_new0 (Recorder, 1);
  const char *log = chime_handler_context_get_string (context, "log");

  self->context = context;
  self->log_fd = -1;
  if (log != NULL)
    {
      self->log_fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (self->log_fd < 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                       "cannot open %s: %s", log, g_strerror (errno));
          g_free (self);
          return NULL;
        }
    }
  self->report = g_strdup (chime_handler_context_get_string (context, "report"));
  self->fail_on = g_strdup (chime_handler_context_get_string (context, "fail_on"));
  self->delay_us = chime_handler_context_get_int (context, "delay_us");
  g_mutex_init (&self->lock);
  self->last_token = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->threads = g_hash_table_new (NULL, NULL);
  return self;
}

static void
recorder_write_report (Recorder *self)
{
  json_t *by_type = json_object ();
  json_t *report;

  for (guint i = 0; i < CHIME_EVENT_N_TYPES; i++)
    if (self->by_type[i] > 0)
      json_object_set_new (by_type, chime_event_type_to_string (i), json_integer (self->by_type[i]));
  report = json_pack ("{s:I, s:o, s:I, s:I, s:I, s:I}",
                      "events", (json_int_t) self->events,
                      "by_type", by_type,
                      "order_violations", (json_int_t) self->order_violations,
                      "overlaps", (json_int_t) self->overlaps,
                      "threads", (json_int_t) g_hash_table_size (self->threads),
                      "fallback_prompts", (json_int_t) self->fallback_prompts);
  json_dump_file (report, self->report, JSON_COMPACT);
  json_decref (report);
}

static void
recorder_free (gpointer instance)
{
  Recorder *self = instance;

  if (self->report != NULL)
    recorder_write_report (self);
  if (self->log_fd >= 0)
    close (self->log_fd);
  g_hash_table_unref (self->last_token);
  g_hash_table_unref (self->threads);
  g_mutex_clear (&self->lock);
  g_free (self->report);
  g_free (self->fail_on);
  g_free (self);
}

/* Records one event; FALSE with @error when fail_on matches. */
static gboolean
recorder_record (Recorder   *self,
                 ChimeEvent *event,
                 GError    **error)
{
  ChimeEventType type = chime_event_get_event_type (event);
  const char *token = chime_event_get_token (event);
  const ChimeRunInfo *run = chime_event_get_run (event);
  char run_id[CHIME_RUN_ID_STRING_LEN];

  if (g_atomic_int_add (&self->in_call, 1) != 0)
    self->overlaps++;

  chime_run_id_to_string (chime_run_info_get_id (run), run_id);
  g_mutex_lock (&self->lock);
  self->events++;
  self->by_type[type]++;
  g_hash_table_add (self->threads, g_thread_self ());
  if (token != NULL && g_ascii_isdigit (token[0]))
    {
      gint64 value = g_ascii_strtoll (token, NULL, 10);
      gpointer last;
      if (g_hash_table_lookup_extended (self->last_token, run_id, NULL, &last) &&
          GPOINTER_TO_SIZE (last) + 1 != (gsize) value)
        self->order_violations++;
      g_hash_table_insert (self->last_token, g_strdup (run_id), GSIZE_TO_POINTER ((gsize) value));
    }
  if (type == CHIME_EVENT_CHAT_MODEL_START && chime_event_get_prompts (event) != NULL)
    self->fallback_prompts++;
  g_mutex_unlock (&self->lock);

  if (self->log_fd >= 0)
    {
      g_autofree char *line = NULL;
      const char *detail = token;
      g_autofree char *prompt = NULL;

      if (detail == NULL)
        detail = chime_run_info_get_name (run);
      if (type == CHIME_EVENT_CUSTOM_EVENT)
        {
          /* "NAME RUN_TYPE DATA": which stream a chunk belongs to. */
          g_autofree char *data = json_dumps (chime_event_get_data (event), JSON_COMPACT | JSON_ENCODE_ANY);

          prompt = g_strdup_printf ("%s %s %s", chime_event_get_custom_name (event),
                                    chime_run_info_get_run_type (run), data != NULL ? data : "null");
          detail = prompt;
        }
      if (type == CHIME_EVENT_LLM_START || type == CHIME_EVENT_CHAT_MODEL_START)
        {
          json_t *prompts = chime_event_get_prompts (event);
          if (prompts != NULL)
            {
              prompt = g_strescape (json_string_value (json_array_get (prompts, 0)), NULL);
              detail = prompt;
            }
        }
      line = g_strdup_printf ("%s %s %s\n", chime_handler_context_get_name (self->context),
                              chime_event_type_to_string (type), detail);
      if (write (self->log_fd, line, strlen (line)) < 0)
        g_warning ("recorder: write failed");
    }

  g_atomic_int_add (&self->in_call, -1);
  if (self->fail_on[0] != '\0' && g_str_equal (self->fail_on, chime_event_type_to_string (type)))
    {
      g_set_error (error, CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                   "recorder %s refuses %s", chime_handler_context_get_name (self->context),
                   chime_event_type_to_string (type));
      return FALSE;
    }
  return TRUE;
}
