/* progress — a live progress line on stderr.
 *
 *   progress: 12 runs done, 1 running, 840 tokens, 61.3 tokens/s, 13.7 s
 *
 * Runs are root runs (one per `chime run`, one per input of a batch), not
 * their child runs. The line is rewritten in place with a carriage
 * return, at most every 100 ms, and printed one last time with a newline
 * at shutdown; on a terminal it shares with stdout, it stays below what
 * other handlers print (chime_terminal_set_status()). Tokens per second
 * are counted from the first event to the latest one, the elapsed time
 * from the first event.
 *
 *   [handler progress]
 *   plugin = progress
 *   force = false       # draw even when stderr is not a terminal
 *
 * This is also the example of an async plugin: its entry points run on
 * the runtime's main context and complete at once; a timer on the same
 * context draws the last update of a burst of events.
 */
#include <chime/plugin.h>
#include <chime/terminal.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* Redraws are throttled to this interval: a terminal cannot show more,
 * and stderr writes per token would cost more than the handler does. */
#define REDRAW_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)

typedef struct {
  ChimeHandlerContext *context;  /* where a failed draw is reported */
  char         *name;          /* the handler's name, the line's prefix */
  gboolean      enabled;       /* draw at all: stderr is a TTY, or force;
                                * FALSE once a draw failed */
  GMainContext *main_context;

  /* Entry points and the timer run on the main context; instance_free may
   * run on any thread, possibly while a timer fires, hence the lock. */
  GMutex        lock;
  guint64       runs_started;
  guint64       runs_done;
  guint64       tokens;
  gint64        first_event_time;   /* monotonic µs; 0: no event yet */
  gint64        last_event_time;
  gint64        last_draw_time;
  GSource      *redraw_source; /* a pending trailing redraw, or NULL */
} Progress;

static const ChimeConfigKey progress_keys[] = {
  { "force", CHIME_CONFIG_BOOL, "false", "draw the line even when stderr is not a terminal" },
  { NULL }
};

static void
progress_clear (gpointer data)
{
  Progress *self = data;

  g_free (self->name);
  g_main_context_unref (self->main_context);
  g_mutex_clear (&self->lock);
}

/* Progress is reference-counted: a pending timer keeps it alive even if it
 * fires on one thread while instance_free runs on another. */
static void
progress_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, progress_clear);
}

static gpointer
progress_new (ChimeHandlerContext *context,
              GError             **error)
{
  Progress *self = g_atomic_rc_box_new0 (Progress);

  self->context = context;
  self->name = g_strdup (chime_handler_context_get_name (context));
  self->enabled = chime_handler_context_get_bool (context, "force") || isatty (STDERR_FILENO) == 1;
  self->main_context = g_main_context_ref (chime_handler_context_get_main_context (context));
  g_mutex_init (&self->lock);
  return self;
}

static const char *
plural (guint64     n,
        const char *one,
        const char *many)
{
  return n == 1 ? one : many;
}

/* A stderr that fails is said once (the failure is counted, so the run's
 * exit status tells even when stderr is gone), and never drawn on again.
 * Draws happen in the timer as well as in entry points, hence
 * chime_handler_context_report_error() rather than a completion's error. */
static void
report_failed_draw (Progress     *self,
                    const GError *error)
{
  self->enabled = FALSE;
  chime_handler_context_report_error (self->context, error);
}

/* Redraws the line: the text, drawn by libchime's status line, which
 * blanks what the previous line had beyond it (no ANSI codes, so that a
 * forced line in a log file stays readable). */
static void
progress_draw_locked (Progress *self,
                      gboolean  final)
{
  g_autoptr (GString) line = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gint64 span = self->last_event_time - self->first_event_time;
  gdouble rate = span > 0 ? (gdouble) self->tokens * G_USEC_PER_SEC / span : 0.0;
  gdouble elapsed = self->first_event_time > 0
                      ? (gdouble) (g_get_monotonic_time () - self->first_event_time) / G_USEC_PER_SEC : 0.0;
  char rate_text[G_ASCII_DTOSTR_BUF_SIZE];
  char elapsed_text[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (line, "%s: %" G_GUINT64_FORMAT " %s done, %" G_GUINT64_FORMAT
                          " running, %" G_GUINT64_FORMAT " %s, %s tokens/s, %s s",
                          self->name,
                          self->runs_done, plural (self->runs_done, "run", "runs"),
                          self->runs_started > self->runs_done ? self->runs_started - self->runs_done : 0,
                          self->tokens, plural (self->tokens, "token", "tokens"),
                          /* Not printf: the host's LC_NUMERIC must not matter. */
                          g_ascii_formatd (rate_text, sizeof rate_text, "%.1f", rate),
                          g_ascii_formatd (elapsed_text, sizeof elapsed_text, "%.1f", elapsed));
  if (!chime_terminal_set_status (line->str, final, &error))
    report_failed_draw (self, error);
  self->last_draw_time = g_get_monotonic_time ();

  /* This draw shows the latest state: a pending trailing redraw would only
   * repeat it and push the next draw less than an interval away. */
  if (self->redraw_source != NULL)
    {
      g_source_destroy (self->redraw_source);
      g_clear_pointer (&self->redraw_source, g_source_unref);
    }
}

static gboolean
progress_redraw_cb (gpointer user_data)
{
  Progress *self = user_data;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  /* A draw since this source was dispatched (the final one in
   * instance_free, say) destroyed it and already showed the latest state. */
  if (self->redraw_source != g_main_current_source ())
    return G_SOURCE_REMOVE;
  g_clear_pointer (&self->redraw_source, g_source_unref);
  progress_draw_locked (self, FALSE);
  return G_SOURCE_REMOVE;
}

/* Draws now when the last draw is old enough; otherwise makes sure a timer
 * draws the latest state once it is, so the end of a burst is shown. */
static void
progress_schedule_draw_locked (Progress *self)
{
  gint64 since_draw = g_get_monotonic_time () - self->last_draw_time;

  if (since_draw >= REDRAW_INTERVAL_US)
    {
      progress_draw_locked (self, FALSE);
      return;
    }
  if (self->redraw_source != NULL)
    return;
  self->redraw_source = g_timeout_source_new ((REDRAW_INTERVAL_US - since_draw) / 1000 + 1);
  g_source_set_callback (self->redraw_source, progress_redraw_cb,
                         g_atomic_rc_box_acquire (self), progress_unref);
  g_source_set_static_name (self->redraw_source, "[chime] progress redraw");
  g_source_attach (self->redraw_source, self->main_context);
}

static void
progress_count_locked (Progress   *self,
                       ChimeEvent *event)
{
  gint64 time = chime_event_get_monotonic_time (event);

  if (self->first_event_time == 0)
    self->first_event_time = time;
  self->last_event_time = MAX (self->last_event_time, time);

  /* Root runs only: one `chime run` is one run, not its prompt, model
   * and parser too. */
  if (chime_run_info_get_parent_id (chime_event_get_run (event)) != NULL &&
      chime_event_get_event_type (event) != CHIME_EVENT_LLM_NEW_TOKEN)
    return;
  switch (chime_event_get_event_type (event))
    {
    case CHIME_EVENT_LLM_START:
    case CHIME_EVENT_CHAT_MODEL_START:
    case CHIME_EVENT_CHAIN_START:
    case CHIME_EVENT_TOOL_START:
    case CHIME_EVENT_RETRIEVER_START:
      self->runs_started++;
      break;
    case CHIME_EVENT_LLM_NEW_TOKEN:
      self->tokens++;
      break;
    default:
      if (chime_event_type_ends_run (chime_event_get_event_type (event)))
        self->runs_done++;
      break;
    }
}

/* The catch-all entry point: counting never waits on anything, so each
 * call completes before it returns. */
static void
progress_on_event (gpointer         instance,
                   ChimeEvent      *event,
                   ChimeCompletion *completion)
{
  Progress *self = instance;

  g_mutex_lock (&self->lock);
  progress_count_locked (self, event);
  if (self->enabled)
    progress_schedule_draw_locked (self);
  g_mutex_unlock (&self->lock);
  chime_completion_complete (completion);
}

static void
progress_free (gpointer instance)
{
  Progress *self = instance;

  /* The final draw also cancels a pending redraw; the timer's reference
   * keeps self alive should it already be running on another thread. */
  g_mutex_lock (&self->lock);
  if (self->enabled)
    progress_draw_locked (self, TRUE);
  g_mutex_unlock (&self->lock);
  progress_unref (self);
}

CHIME_ASYNC_PLUGIN_DEFINE (
  .name = "progress",
  .description = "shows runs done, tokens and tokens per second on a live stderr line",
  .version = CHIME_VERSION_STRING,
  .config_keys = progress_keys,
  .instance_new = progress_new,
  .instance_free = progress_free,
  .on_event = progress_on_event,
);
