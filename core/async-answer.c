/* The answer of chime_runtime_flush_async(), in place of a GTask.
 *
 * The first GTask of a process starts GLib's worker thread ("gmain": the
 * GTask class attaches its thread pool's manager to the worker context).
 * `chime run` used a GTask only for the flush at its end and for the
 * pipeline's run, and that thread cost about 0.4 ms of a fake-model
 * run's ~3 ms (bench row s1). The callback's promises are GTask's: once,
 * on the main context that was the thread's default at the call, and not
 * from inside the call. */
#include "config.h"

#include "async-answer.h"

struct _ChimeAsyncAnswer {
  GObject             parent;
  gpointer            source_tag;
  GAsyncReadyCallback callback;
  gpointer            user_data;
  GMainContext       *context;
  gint64              created;   /* monotonic µs, as a source's time */
  gboolean            answered;
  GError             *error;
};

static void async_result_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ChimeAsyncAnswer, chime_async_answer, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT, async_result_init))

static gpointer
get_user_data (GAsyncResult *result)
{
  return CHIME_ASYNC_ANSWER (result)->user_data;
}

static GObject *
get_source_object (GAsyncResult *result)
{
  return NULL;
}

static gboolean
is_tagged (GAsyncResult *result,
           gpointer      source_tag)
{
  return CHIME_ASYNC_ANSWER (result)->source_tag == source_tag;
}

static void
async_result_init (GAsyncResultIface *iface)
{
  iface->get_user_data = get_user_data;
  iface->get_source_object = get_source_object;
  iface->is_tagged = is_tagged;
}

static void
chime_async_answer_finalize (GObject *object)
{
  ChimeAsyncAnswer *self = CHIME_ASYNC_ANSWER (object);

  g_clear_error (&self->error);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (chime_async_answer_parent_class)->finalize (object);
}

static void
chime_async_answer_class_init (ChimeAsyncAnswerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = chime_async_answer_finalize;
}

static void
chime_async_answer_init (ChimeAsyncAnswer *self)
{
}

ChimeAsyncAnswer *
chime_async_answer_new (gpointer            source_tag,
                        GAsyncReadyCallback callback,
                        gpointer            user_data)
{
  ChimeAsyncAnswer *self = g_object_new (CHIME_TYPE_ASYNC_ANSWER, NULL);

  self->source_tag = source_tag;
  self->callback = callback;
  self->user_data = user_data;
  self->context = g_main_context_ref_thread_default ();
  self->created = g_get_monotonic_time ();
  return self;
}

static gboolean
call_back (gpointer data)
{
  ChimeAsyncAnswer *self = data;

  if (self->callback != NULL)
    self->callback (NULL, G_ASYNC_RESULT (self), self->user_data);
  return G_SOURCE_REMOVE;
}

/* GTask's rule: in a dispatch of the answer's own context that began
 * after the answer was made. */
static gboolean
can_answer_now (ChimeAsyncAnswer *self)
{
  GSource *current = g_main_current_source ();

  return current != NULL && g_source_get_context (current) == self->context &&
         g_source_get_time (current) > self->created;
}

void
chime_async_answer_return (ChimeAsyncAnswer *answer,
                           GError           *error)
{
  g_autoptr (ChimeAsyncAnswer) self = answer;
  g_autoptr (GSource) idle = NULL;

  g_return_if_fail (!self->answered);
  self->answered = TRUE;
  self->error = error;
  if (can_answer_now (self))
    {
      call_back (self);
      return;
    }
  idle = g_idle_source_new ();
  g_source_set_callback (idle, call_back, g_object_ref (self), g_object_unref);
  g_source_set_static_name (idle, "chime async answer");
  g_source_attach (idle, self->context);
}

gboolean
chime_async_answer_propagate (GAsyncResult *result,
                              gpointer      source_tag,
                              GError      **error)
{
  ChimeAsyncAnswer *self;

  g_return_val_if_fail (CHIME_IS_ASYNC_ANSWER (result), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, source_tag), FALSE);
  self = CHIME_ASYNC_ANSWER (result);
  if (self->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->error));
      return FALSE;
    }
  return TRUE;
}
