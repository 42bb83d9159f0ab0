/* The tools of a plugin (ABI 2.2): checked and copied into the host's
 * layout when it loads, and called for a host (chime_tool_call_start()):
 * a sync tool on a worker thread, an async one on the main loop. Either
 * way the call ends on the host's main context. */
#include "config.h"

#include "plugin-loader.h"
#include <chime/config.h>
#include <chime/plugin-loader.h>
#include <chime/run.h>

#include <string.h>

/* The smallest ChimeToolDescriptor: 2.2's, up to user_data. */
#define SMALLEST_TOOL (G_STRUCT_OFFSET (ChimeToolDescriptor, user_data) + sizeof (gpointer))

static gboolean
check_tool (const char                *path,
            const ChimeToolDescriptor *tool,
            guint                      index,
            GError                   **error)
{
  g_autoptr (json_t) parameters = NULL;

  if (tool->name[0] == '\0' || (tool->invoke == NULL) == (tool->invoke_async == NULL))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s: tool %u ('%s') needs a name and exactly one of .invoke (sync) "
                   "and .invoke_async", path, index, tool->name);
      return FALSE;
    }
  if (tool->parameters == NULL)
    return TRUE;
  parameters = json_loads (tool->parameters, 0, NULL);
  if (!json_is_object (parameters))
    {
      g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                   "plugin %s: the parameters of tool '%s' are not a JSON Schema object "
                   "(JSON text like {\"type\": \"object\", \"properties\": {}})", path, tool->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
chime_plugin_copy_tools (const char                  *path,
                         const ChimePluginDescriptor *descriptor,
                         ChimeToolDescriptor        **out,
                         GError                     **error)
{
  g_autoptr (GArray) tools = NULL;
  const guint8 *item = (const guint8 *) descriptor->tools;

  *out = NULL;
  if (item == NULL)
    return TRUE;
  tools = g_array_new (TRUE, TRUE, sizeof (ChimeToolDescriptor));
  for (guint i = 0;; i++)
    {
      const ChimeToolDescriptor *theirs = (const ChimeToolDescriptor *) item;
      ChimeToolDescriptor mine = { 0 };
      gsize size = theirs->struct_size;

      /* The terminator: name is where every minor has it. */
      if (theirs->name == NULL)
        break;
      if (size < SMALLEST_TOOL)
        {
          g_set_error (error, CHIME_CONFIG_ERROR, CHIME_CONFIG_ERROR_PLUGIN,
                       "plugin %s: tool %u has struct_size %zu, smaller than ABI 2.2's "
                       "ChimeToolDescriptor; set it to CHIME_TOOL_DESCRIPTOR_SIZE", path, i, size);
          return FALSE;
        }
      memcpy (&mine, theirs, MIN (size, sizeof mine));
      if (!check_tool (path, &mine, i, error))
        return FALSE;
      g_array_append_val (tools, mine);
      item += size;
    }
  *out = (ChimeToolDescriptor *) g_array_free (g_steal_pointer (&tools), FALSE);
  return TRUE;
}

const ChimeToolDescriptor *
chime_plugin_get_tools (const ChimePlugin *plugin)
{
  return plugin->tools;
}

/* ------------------------------------------------------------------
 * Calls
 * ---------------------------------------------------------------- */

struct _ChimeToolCall {
  const ChimeToolDescriptor *tool;
  json_t                    *args;
  ChimeRun                  *run;
  GMainContext              *context;
  ChimeToolCallDoneFunc      done;
  gpointer                   user_data;
  char                      *output;
  GError                    *error;
  /* atomic: 0, then 1 once ended (claimed by end_call), then 2 once
   * output and error are set: report() reads them after seeing 2, so
   * the hand-over from a pool thread is ordered by this, not by
   * GMainContext's internal lock alone. */
  gint                       ended;
};

json_t *
chime_tool_call_get_args (ChimeToolCall *call)
{
  return call->args;
}

ChimeRun *
chime_tool_call_get_run (ChimeToolCall *call)
{
  return call->run;
}

GMainContext *
chime_tool_call_get_main_context (ChimeToolCall *call)
{
  return call->context;
}

static gboolean
report (gpointer data)
{
  ChimeToolCall *call = data;

  g_assert (g_atomic_int_get (&call->ended) == 2);
  call->done (g_steal_pointer (&call->output), g_steal_pointer (&call->error), call->user_data);
  json_decref (call->args);
  chime_run_unref (call->run);
  g_main_context_unref (call->context);
  g_free (call);
  return G_SOURCE_REMOVE;
}

/* Ends the call on its context, whatever the thread. */
static void
end_call (ChimeToolCall *call,
          char          *output,
          GError        *error)
{
  GMainContext *context;
  GSource *source;

  if (!g_atomic_int_compare_and_exchange (&call->ended, 0, 1))
    {
      g_critical ("tool '%s' ended its call twice", call->tool->name);
      g_free (output);
      g_clear_error (&error);
      return;
    }
  call->output = output;
  call->error = error;
  source = g_idle_source_new ();
  g_source_set_callback (source, report, call, NULL);
  context = call->context;
  /* From here report() may run and free the call: only locals below. */
  g_atomic_int_set (&call->ended, 2);
  g_source_attach (source, context);
  g_source_unref (source);
}

void
chime_tool_call_return (ChimeToolCall *call,
                        const char    *output)
{
  end_call (call, g_strdup (output != NULL ? output : ""), NULL);
}

void
chime_tool_call_fail (ChimeToolCall *call,
                      GError        *error)
{
  if (error == NULL)
    error = g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED, "tool '%s' failed",
                         call->tool->name);
  end_call (call, NULL, error);
}

static void
run_sync (gpointer data,
          gpointer pool_data)
{
  ChimeToolCall *call = data;
  GError *error = NULL;
  char *output = call->tool->invoke (call->tool->user_data, call, &error);

  if (output == NULL && error == NULL)
    error = g_error_new (CHIME_HANDLER_ERROR, CHIME_HANDLER_ERROR_FAILED,
                         "tool '%s' returned no output and no error", call->tool->name);
  end_call (call, output, output != NULL ? NULL : error);
  if (output != NULL)
    g_clear_error (&error);
}

/* The pool sync tools run on: a few threads, made on first use. */
static GThreadPool *
tool_pool (void)
{
  static gsize pool;

  if (g_once_init_enter (&pool))
    g_once_init_leave (&pool, (gsize) g_thread_pool_new (run_sync, NULL, 4, FALSE, NULL));
  return (GThreadPool *) pool;
}

void
chime_tool_call_start (const ChimeToolDescriptor *tool,
                       json_t                    *args,
                       ChimeRun                  *run,
                       GMainContext              *context,
                       ChimeToolCallDoneFunc      done,
                       gpointer                   user_data)
{
  ChimeToolCall *call = g_new0 (ChimeToolCall, 1);

  call->tool = tool;
  call->args = json_incref (args);
  call->run = chime_run_ref (run);
  call->context = g_main_context_ref (context);
  call->done = done;
  call->user_data = user_data;
  if (tool->invoke_async != NULL)
    tool->invoke_async (tool->user_data, call);
  else
    g_thread_pool_push (tool_pool (), call, NULL);
}
