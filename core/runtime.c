/* The runtime: built from a configuration, reference-counted, flushed and
 * shut down. Emitting is in runtime-emit.c. */
#include "config.h"

#include "runtime-private.h"
#include "async-answer.h"
#include "plugins/plugin-loader.h"
#include "events/event-clock.h"

#include <string.h>

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
      if (chime_plugin_get_flags (handler->plugin) & CHIME_PLUGIN_WANTS_STREAM)
        runtime->stream_mask |= handler->bit;
      for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
        if (chime_handler_wants (handler, type))
          runtime->type_masks[type] |= handler->bit;
    }
  /* As needs_wait() (runtime-emit.c) says of a token. */
  if (runtime->settings.delivery != CHIME_DELIVERY_AWAITED)
    runtime->token_ring_mask = runtime->queued_mask & ~runtime->raise_mask;
}

static void
describe_handler (ChimeHandlerInfo   *info,
                  const ChimeHandler *handler)
{
  info->name = handler->settings.name;
  info->plugin_name = chime_plugin_get_name (handler->plugin);
  info->plugin_path = chime_plugin_get_path (handler->plugin);
  info->mode = chime_plugin_get_mode (handler->plugin);
  info->raise_error = handler->settings.raise_error;
  info->run_inline = handler->settings.run_inline;
  info->inheritable = handler->settings.inheritable;
  info->plugin_flags = chime_plugin_get_flags (handler->plugin);
}

/* Instantiates every handler; on any failure reports all failures at once
 * (the caller frees the ones created). */
static gboolean
start_handlers (ChimeRuntime *runtime,
                GPtrArray    *specs,
                GError      **error)
{
  g_autoptr (ChimeProblems) problems = chime_problems_new ();

  runtime->handlers = g_new0 (ChimeHandler *, MAX (specs->len, 1));
  runtime->infos = g_new0 (ChimeHandlerInfo, MAX (specs->len, 1));
  runtime->inline_handlers = g_new0 (ChimeHandler *, MAX (specs->len, 1));
  for (guint i = 0; i < specs->len; i++)
    {
      ChimeHandlerSpec *spec = g_ptr_array_index (specs, i);
      ChimeHandler *handler;
      g_autoptr (GError) local_error = NULL;

      spec->context->main_context = g_main_context_ref (runtime->main_context);
      handler = chime_handler_new (i, &spec->settings, spec->plugin, g_steal_pointer (&spec->context));
      describe_handler (&runtime->infos[runtime->n_handlers], handler);
      runtime->handlers[runtime->n_handlers++] = handler;
      if (handler->settings.run_inline)
        runtime->inline_handlers[runtime->n_inline++] = handler;
      if (!chime_handler_start (handler, &local_error))
        chime_problems_add (problems, "%s", local_error->message);
    }
  return chime_problems_to_error (problems, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN, error);
}

static void
start_dispatcher (ChimeRuntime *runtime)
{
  g_autoptr (GPtrArray) queued = g_ptr_array_new ();
  ChimeDispatcherSettings settings;

  for (guint i = 0; i < runtime->n_handlers; i++)
    if (!runtime->handlers[i]->settings.run_inline)
      g_ptr_array_add (queued, runtime->handlers[i]);
  settings.threads = runtime->settings.threads;
  settings.queue_limit = runtime->settings.queue_limit;
  settings.on_full = runtime->settings.on_full;
  settings.caller_runs = runtime->settings.delivery == CHIME_DELIVERY_AWAITED;
  settings.main_context = runtime->main_context;
  settings.loop_watchdog_ms = runtime->settings.loop_watchdog_ms;
  runtime->dispatcher = chime_dispatcher_new ((ChimeHandler **) queued->pdata, queued->len,
                                              &settings);
}

ChimeRuntime *
chime_runtime_new (ChimeConfig *config,
                   GError     **error)
{
  g_autoptr (GPtrArray) specs = NULL;
  g_autoptr (ChimeRuntime) runtime = NULL;

  g_return_val_if_fail (config != NULL, NULL);
  /* Loading the plugins takes long enough for the measurement. */
  chime_event_clock_start ();
  runtime = g_new0 (ChimeRuntime, 1);
  runtime->ref_count = 1;
  runtime->config = chime_config_ref (config);
  runtime->main_context = g_main_context_ref_thread_default ();
  chime_runtime_settings_read (config, &runtime->settings);
  specs = chime_handler_specs_read (config, &runtime->settings);
  /* Every problem of the file at once, the program's own included. */
  if (!chime_config_check (config, error) || !start_handlers (runtime, specs, error))
    return NULL;
  compute_masks (runtime);
  start_dispatcher (runtime);
  return g_steal_pointer (&runtime);
}

ChimeRuntime *
chime_runtime_new_from_file (const char *path,
                             GError    **error)
{
  g_autoptr (ChimeConfig) config = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  config = chime_config_new_from_file (path, error);
  if (config == NULL)
    return NULL;
  return chime_runtime_new (config, error);
}

ChimeRuntime *
chime_runtime_new_from_key_file (GKeyFile   *key_file,
                                 const char *source_name,
                                 const char *base_dir,
                                 GError    **error)
{
  g_autoptr (ChimeConfig) config = NULL;

  g_return_val_if_fail (key_file != NULL, NULL);
  config = chime_config_new_from_key_file (key_file, source_name, base_dir);
  return chime_runtime_new (config, error);
}

ChimeRuntime *
chime_runtime_ref (ChimeRuntime *runtime)
{
  g_return_val_if_fail (runtime != NULL, NULL);
  g_atomic_int_inc (&runtime->ref_count);
  return runtime;
}

void
chime_runtime_shutdown (ChimeRuntime *runtime)
{
  g_return_if_fail (runtime != NULL);
  if (runtime->shut_down)
    return;
  runtime->shut_down = TRUE;
  /* Drains every queue and pending async call before any instance goes. */
  g_clear_pointer (&runtime->dispatcher, chime_dispatcher_free);
  for (guint i = 0; i < runtime->n_handlers; i++)
    chime_handler_stop (runtime->handlers[i]);
}

void
chime_runtime_unref (ChimeRuntime *runtime)
{
  if (runtime == NULL || !g_atomic_int_dec_and_test (&runtime->ref_count))
    return;
  chime_runtime_shutdown (runtime);
  for (guint i = 0; i < runtime->n_handlers; i++)
    chime_handler_free (runtime->handlers[i]);
  g_free (runtime->handlers);
  g_free (runtime->infos);
  g_free (runtime->inline_handlers);
  chime_runtime_settings_clear (&runtime->settings);
  g_clear_pointer (&runtime->config, chime_config_unref);
  g_clear_pointer (&runtime->main_context, g_main_context_unref);
  g_free (runtime);
}

void
chime_runtime_flush (ChimeRuntime *runtime)
{
  g_return_if_fail (runtime != NULL);
  if (runtime->dispatcher != NULL)
    chime_dispatcher_flush (runtime->dispatcher);
}

/* A flush_async in progress. The dispatcher's wait owns it; a cancel
 * answers early, on the same main context, so the two never race. */
typedef struct {
  ChimeAsyncAnswer *answer;   /* NULL once answered */
  GCancellable     *cancellable;
  GSource          *cancel_source;
} FlushWait;

static void
flush_answer (FlushWait *wait,
              GError    *error)
{
  if (wait->answer == NULL)
    return;
  /* As the GTask it was: a flush done once the caller had cancelled it
   * still answers that it was cancelled. */
  if (error == NULL && wait->cancellable != NULL)
    g_cancellable_set_error_if_cancelled (wait->cancellable, &error);
  g_clear_object (&wait->cancellable);
  chime_async_answer_return (g_steal_pointer (&wait->answer), error);
  if (wait->cancel_source != NULL)
    {
      g_source_destroy (wait->cancel_source);
      g_clear_pointer (&wait->cancel_source, g_source_unref);
    }
}

static gboolean
flushed (gpointer data)
{
  FlushWait *wait = data;

  flush_answer (wait, NULL);
  g_free (wait);
  return G_SOURCE_REMOVE;
}

static gboolean
flush_cancelled (GCancellable *cancellable,
                 gpointer      data)
{
  flush_answer (data, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           "the flush was cancelled"));
  return G_SOURCE_REMOVE;
}

void
chime_runtime_flush_async (ChimeRuntime       *runtime,
                           GCancellable       *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer            user_data)
{
  FlushWait *wait;

  g_return_if_fail (runtime != NULL);
  wait = g_new0 (FlushWait, 1);
  wait->answer = chime_async_answer_new (chime_runtime_flush_async, callback, user_data);
  if (runtime->dispatcher == NULL)
    {
      flush_answer (wait, NULL);
      g_free (wait);
      return;
    }
  if (cancellable != NULL)
    {
      wait->cancellable = g_object_ref (cancellable);
      wait->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (wait->cancel_source, G_SOURCE_FUNC (flush_cancelled), wait, NULL);
      g_source_attach (wait->cancel_source, runtime->main_context);
    }
  chime_dispatcher_when_done (runtime->dispatcher, chime_dispatcher_get_head (runtime->dispatcher),
                              flushed, wait);
}

gboolean
chime_runtime_flush_finish (ChimeRuntime *runtime,
                            GAsyncResult *result,
                            GError      **error)
{
  return chime_async_answer_propagate (result, chime_runtime_flush_async, error);
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

const ChimeHandlerInfo *
chime_runtime_get_handler_info (ChimeRuntime *runtime,
                                guint         index)
{
  g_return_val_if_fail (runtime != NULL && index < runtime->n_handlers, NULL);
  return &runtime->infos[index];
}

const char *
chime_runtime_get_handler_name (ChimeRuntime *runtime,
                                guint         index)
{
  g_return_val_if_fail (runtime != NULL && index < runtime->n_handlers, NULL);
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
                                 ChimeHandlerStats *out_stats,
                                 gsize              stats_size)
{
  ChimeHandler *handler;
  ChimeHandlerStats stats;

  g_return_val_if_fail (runtime != NULL && handler_name != NULL && out_stats != NULL, FALSE);
  handler = chime_runtime_find_handler (runtime, handler_name);
  if (handler == NULL)
    return FALSE;
  chime_handler_get_stats (handler, &stats);
  /* An older caller's struct is a prefix of this one. */
  memcpy (out_stats, &stats, MIN (stats_size, sizeof stats));
  return TRUE;
}

const char *
chime_runtime_get_handler_failure (ChimeRuntime *runtime,
                                   const char   *handler_name)
{
  ChimeHandler *handler;

  g_return_val_if_fail (runtime != NULL && handler_name != NULL, NULL);
  handler = chime_runtime_find_handler (runtime, handler_name);
  return handler != NULL ? chime_handler_get_first_failure (handler) : NULL;
}
