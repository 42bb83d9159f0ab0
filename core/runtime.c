/* The runtime: build from configuration, emit, flush, free. */
#include "config.h"

#include "runtime-private.h"
#include "events/trace.h"

G_DEFINE_QUARK (chime-config-error-quark, chime_config_error)

const char *
chime_delivery_to_string (ChimeDelivery delivery)
{
  switch (delivery)
    {
    case CHIME_DELIVERY_AWAITED: return "awaited";
    case CHIME_DELIVERY_FENCED: return "fenced";
    case CHIME_DELIVERY_BACKGROUND: return "background";
    default: return "unknown";
    }
}

static void
compute_masks (ChimeRuntime *runtime)
{
  for (guint i = 0; i < runtime->n_handlers; i++)
    {
      ChimeHandler *handler = runtime->handlers[i];

      runtime->all_mask |= handler->bit;
      if (handler->settings.run_inline)
        runtime->inline_mask |= handler->bit;
      else
        runtime->queued_mask |= handler->bit;
      if (handler->settings.inheritable)
        runtime->inheritable_mask |= handler->bit;
      if (handler->settings.raise_error && !handler->settings.run_inline)
        runtime->raise_mask |= handler->bit;
      for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
        if (chime_handler_wants (handler, type))
          runtime->type_masks[type] |= handler->bit;
    }
}

/* Instantiates every handler; on any failure frees the ones created and
 * reports all failures at once. */
static gboolean
start_handlers (ChimeRuntime *runtime,
                GPtrArray    *specs,
                GError      **error)
{
  g_autoptr (ChimeProblems) problems = chime_problems_new ();

  runtime->handlers = g_new0 (ChimeHandler *, MAX (specs->len, 1));
  runtime->inline_handlers = g_new0 (ChimeHandler *, MAX (specs->len, 1));
  for (guint i = 0; i < specs->len; i++)
    {
      ChimeHandlerSpec *spec = g_ptr_array_index (specs, i);
      ChimeHandler *handler;
      g_autoptr (GError) local_error = NULL;

      spec->context->main_context = g_main_context_ref (runtime->main_context);
      handler = chime_handler_new (i, &spec->settings, spec->plugin, g_steal_pointer (&spec->context));
      runtime->handlers[runtime->n_handlers++] = handler;
      if (handler->settings.run_inline)
        runtime->inline_handlers[runtime->n_inline++] = handler;
      if (!chime_handler_start (handler, &local_error))
        chime_problems_add (problems, "%s", local_error->message);
    }
  return chime_problems_to_error (problems, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN, error);
}

static void
free_handlers (ChimeRuntime *runtime)
{
  for (guint i = 0; i < runtime->n_handlers; i++)
    chime_handler_free (runtime->handlers[i]);
  g_clear_pointer (&runtime->handlers, g_free);
  g_clear_pointer (&runtime->inline_handlers, g_free);
  runtime->n_handlers = runtime->n_inline = 0;
}

ChimeRuntime *
chime_runtime_new_from_ini (ChimeIni      *ini,
                            ChimeProblems *problems,
                            GError       **error)
{
  g_autoptr (GPtrArray) specs = NULL;
  g_autoptr (GPtrArray) queued = g_ptr_array_new ();
  ChimeRuntime *runtime = g_new0 (ChimeRuntime, 1);
  ChimeDispatcherSettings dispatcher_settings;

  runtime->ini = chime_ini_ref (ini);
  runtime->main_context = g_main_context_ref_thread_default ();
  chime_runtime_settings_read (ini, problems, &runtime->settings);
  specs = chime_handler_specs_read (ini, &runtime->settings, problems);
  if (!chime_problems_to_error (problems, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_INVALID, error) ||
      !start_handlers (runtime, specs, error))
    {
      chime_runtime_free (runtime);
      return NULL;
    }
  compute_masks (runtime);

  for (guint i = 0; i < runtime->n_handlers; i++)
    if (!runtime->handlers[i]->settings.run_inline)
      g_ptr_array_add (queued, runtime->handlers[i]);
  dispatcher_settings.threads = runtime->settings.threads;
  dispatcher_settings.queue_limit = runtime->settings.queue_limit;
  dispatcher_settings.on_full = runtime->settings.on_full;
  dispatcher_settings.caller_runs = runtime->settings.delivery == CHIME_DELIVERY_AWAITED;
  dispatcher_settings.main_context = runtime->main_context;
  runtime->dispatcher = chime_dispatcher_new ((ChimeHandler **) queued->pdata, queued->len,
                                              &dispatcher_settings);
  return runtime;
}

ChimeRuntime *
chime_runtime_new_from_file (const char *path,
                             GError    **error)
{
  g_autoptr (ChimeProblems) problems = chime_problems_new ();
  g_autoptr (ChimeIni) ini = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  ini = chime_ini_new_from_file (path, problems, error);
  if (ini == NULL)
    return NULL;
  return chime_runtime_new_from_ini (ini, problems, error);
}

ChimeRuntime *
chime_runtime_new_from_key_file (GKeyFile   *key_file,
                                 const char *source_name,
                                 const char *base_dir,
                                 GError    **error)
{
  g_autoptr (ChimeProblems) problems = chime_problems_new ();
  g_autoptr (ChimeIni) ini = NULL;

  g_return_val_if_fail (key_file != NULL, NULL);
  ini = chime_ini_new_from_key_file (key_file, source_name, base_dir);
  return chime_runtime_new_from_ini (ini, problems, error);
}

void
chime_runtime_flush (ChimeRuntime *runtime)
{
  g_return_if_fail (runtime != NULL);
  if (runtime->dispatcher != NULL)
    chime_dispatcher_flush (runtime->dispatcher);
}

void
chime_runtime_free (ChimeRuntime *runtime)
{
  if (runtime == NULL)
    return;
  /* Drains every queue and pending async call before any instance goes. */
  g_clear_pointer (&runtime->dispatcher, chime_dispatcher_free);
  free_handlers (runtime);
  chime_runtime_settings_clear (&runtime->settings);
  g_clear_pointer (&runtime->ini, chime_ini_unref);
  g_clear_pointer (&runtime->main_context, g_main_context_unref);
  g_free (runtime);
}

ChimeDelivery
chime_runtime_get_delivery (ChimeRuntime *runtime)
{
  return runtime->settings.delivery;
}

GMainContext *
chime_runtime_get_main_context (ChimeRuntime *runtime)
{
  return runtime->main_context;
}

guint
chime_runtime_get_n_handlers (ChimeRuntime *runtime)
{
  return runtime->n_handlers;
}

const char *
chime_runtime_get_handler_name (ChimeRuntime *runtime,
                                guint         index)
{
  g_return_val_if_fail (index < runtime->n_handlers, NULL);
  return runtime->handlers[index]->settings.name;
}

ChimeHandler *
chime_runtime_find_handler (ChimeRuntime *runtime,
                            const char   *name)
{
  for (guint i = 0; i < runtime->n_handlers; i++)
    if (g_str_equal (runtime->handlers[i]->settings.name, name))
      return runtime->handlers[i];
  return NULL;
}

gboolean
chime_runtime_get_handler_stats (ChimeRuntime      *runtime,
                                 const char        *handler_name,
                                 ChimeHandlerStats *out_stats)
{
  ChimeHandler *handler = chime_runtime_find_handler (runtime, handler_name);

  if (handler == NULL)
    return FALSE;
  chime_handler_get_stats (handler, out_stats);
  return TRUE;
}

/* ------------------------------------------------------------------
 * Emitting
 * ---------------------------------------------------------------- */

/* run_inline handlers: called here, on the emitting thread, in file order,
 * before any queued handler sees the event. */
static gboolean
call_inline (ChimeRuntime *runtime,
             ChimeEvent   *event,
             guint64       mask,
             GError      **error)
{
  for (guint i = 0; i < runtime->n_inline; i++)
    {
      ChimeHandler *handler = runtime->inline_handlers[i];
      g_autoptr (GError) local_error = NULL;
      gboolean ok;

      if (!(mask & handler->bit))
        continue;
      if (!handler->thread_safe)
        g_mutex_lock (&handler->inline_lock);
      ok = chime_handler_call_sync (handler, event->type, event, &local_error);
      if (!handler->thread_safe)
        g_mutex_unlock (&handler->inline_lock);
      /* As LangChain's sync path: a raise_error handler stops the event. */
      if (!ok && handler->settings.raise_error)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
    }
  return TRUE;
}

/* Whether the emitter waits for an event of @type going to @mask. As in
 * LangChain.js, where raiseError forces awaiting, an event for a raise_error
 * handler is always waited for: its failure must reach the run, even in
 * background delivery. */
static gboolean
needs_wait (ChimeRuntime  *runtime,
            ChimeEventType type,
            guint64        mask)
{
  if (mask & runtime->raise_mask)
    return TRUE;
  switch (runtime->settings.delivery)
    {
    case CHIME_DELIVERY_AWAITED: return TRUE;
    case CHIME_DELIVERY_FENCED: return chime_event_type_is_fence (type);
    default: return FALSE;
    }
}

/* Checks the run tree for a raise_error failure; error events are always
 * delivered (they are how a failure is reported). */
static gboolean
check_trace (ChimeEvent *event,
             GError    **error)
{
  if (chime_event_type_is_error (event->type))
    return TRUE;
  return chime_trace_check (event->run->trace, error);
}

/* The run_inline handlers, once per event. FALSE with @error when a
 * raise_error one failed: then no queued handler gets the event. */
static gboolean
deliver_inline (ChimeRuntime *runtime,
                ChimeEvent   *event,
                guint64       mask,
                GError      **error)
{
  if (event->inline_done || !(mask & runtime->inline_mask))
    return TRUE;
  event->inline_done = TRUE;
  return call_inline (runtime, event, mask, error);
}

/* Where a waiting emitter waits until: after its own position, or, when no
 * queued handler takes the event, after everything emitted before it (a
 * fence still waits for what came before, so that a raise_error handler's
 * failure on an earlier event surfaces here). */
static guint64
queue_or_drop (ChimeRuntime *runtime,
               ChimeEvent   *event,
               guint64       mask,
               gboolean      claimed,
               guint64       pos)
{
  if (claimed)
    {
      chime_dispatcher_fill (runtime->dispatcher, pos, event, mask & runtime->queued_mask,
                             needs_wait (runtime, event->type, mask));
      return pos + 1;
    }
  chime_event_unref (event);
  return chime_dispatcher_get_head (runtime->dispatcher);
}

gboolean
chime_runtime_emit (ChimeRuntime *runtime,
                    ChimeEvent   *event,
                    guint64       handler_mask,
                    GError      **error)
{
  guint64 mask = handler_mask & runtime->type_masks[event->type];
  gboolean queued = (mask & runtime->queued_mask) != 0;
  gboolean wait = needs_wait (runtime, event->type, mask);
  ChimeTrace *trace = event->run->trace;
  gboolean is_error = chime_event_type_is_error (event->type);
  guint64 pos = 0, end;

  if (!check_trace (event, error) || !deliver_inline (runtime, event, mask, error))
    {
      chime_event_unref (event);
      return FALSE;
    }
  /* Inline handlers ran before the claim: a slow one must not hold up
   * other emitters, which publish in claim order. */
  if (queued)
    chime_dispatcher_claim (runtime->dispatcher, TRUE, &pos);
  end = queue_or_drop (runtime, event, mask, queued, pos);
  if (wait && end > 0)
    chime_dispatcher_wait (runtime->dispatcher, end);
  return is_error || chime_trace_check (trace, error);
}

ChimeEmitStatus
chime_runtime_emit_nowait (ChimeRuntime *runtime,
                           ChimeEvent   *event,
                           guint64       handler_mask,
                           guint64      *wait_end,
                           GError      **error)
{
  ChimeEventType type = event->type;
  ChimeTrace *trace = event->run->trace;   /* the caller's run keeps it alive */
  guint64 mask = handler_mask & runtime->type_masks[type];
  gboolean queued = (mask & runtime->queued_mask) != 0;
  guint64 pos = 0, end;

  *wait_end = 0;
  if (!check_trace (event, error) || !deliver_inline (runtime, event, mask, error))
    {
      chime_event_unref (event);
      return CHIME_EMIT_FAILED;
    }
  if (queued && !chime_dispatcher_claim (runtime->dispatcher, FALSE, &pos))
    return CHIME_EMIT_FULL;
  /* From here on the event belongs to the ring: do not touch it. */
  end = queue_or_drop (runtime, event, mask, queued, pos);
  if (needs_wait (runtime, type, mask) && end > 0 &&
      !chime_dispatcher_is_done (runtime->dispatcher, end))
    {
      *wait_end = end;
      return CHIME_EMIT_PENDING;
    }
  /* Handled already: a raise_error failure it caused is known now. */
  if (!chime_event_type_is_error (type) && !chime_trace_check (trace, error))
    return CHIME_EMIT_FAILED;
  return CHIME_EMIT_DONE;
}
