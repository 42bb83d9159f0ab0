/* A pipeline run's lifetime and its one answer to the caller.
 *
 * This was a GTask. The first GTask of a process starts GLib's worker
 * thread ("gmain": the GTask class attaches its thread pool's manager to
 * the worker context), and a fake-model `chime run` made no other use of
 * it: the thread cost about 0.4 ms of its ~3 ms (bench row s1). The run
 * keeps GTask's promises to the caller: the answer comes once, on the
 * main context that was the thread's default when the run started, and
 * never from inside chime_pipeline_run_async(). */
#include "config.h"

#include "pipeline-run-private.h"

void
chime_pipeline_run_ref (PipelineRun *run)
{
  run->ref_count++;
}

void
chime_pipeline_run_unref (PipelineRun *run)
{
  if (--run->ref_count == 0)
    chime_pipeline_run_free (run);
}

static void
call_back (PipelineRun *run)
{
  ChimePipelineDoneFunc done = run->done;

  run->done = NULL;
  done (g_steal_pointer (&run->answer_result), g_steal_pointer (&run->answer_error), run->done_data);
}

static gboolean
answer_later (gpointer data)
{
  call_back (data);
  return G_SOURCE_REMOVE;
}

/* GTask's rule: at once in a dispatch of the run's own context that began
 * after the run did (a model chunk, a handler's progress), else from an
 * idle. */
static gboolean
can_answer_now (PipelineRun *run)
{
  GSource *current = g_main_current_source ();

  return current != NULL && g_source_get_context (current) == run->context &&
         g_source_get_time (current) > run->started;
}

void
chime_pipeline_run_answer (PipelineRun *run,
                           json_t      *result,
                           GError      *error)
{
  g_return_if_fail (run->done != NULL);
  run->answer_result = result;
  run->answer_error = error;
  if (can_answer_now (run))
    {
      call_back (run);
      chime_pipeline_run_unref (run);
      return;
    }
  {
    g_autoptr (GSource) idle = g_idle_source_new ();

    /* The idle takes over the run's own reference. */
    g_source_set_callback (idle, answer_later, run, (GDestroyNotify) chime_pipeline_run_unref);
    g_source_set_static_name (idle, "chime pipeline answer");
    g_source_attach (idle, run->context);
  }
}
