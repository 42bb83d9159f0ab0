/* Running a pipeline in-process (pipeline-helpers.h). */
#include "config.h"

#include "pipeline-helpers.h"

typedef struct {
  GMainLoop *loop;
  json_t    *result;
  GError    *error;
} Done;

static void
on_done (json_t  *result,
         GError  *error,
         gpointer data)
{
  Done *done = data;

  done->result = result;
  done->error = error;
  g_main_loop_quit (done->loop);
}

json_t *
test_pipeline_run (ChimePipeline *pipeline,
                   GHashTable    *variables,
                   GError       **error)
{
  Done done = { 0 };

  done.loop = g_main_loop_new (NULL, FALSE);
  chime_pipeline_run_async (pipeline, variables, NULL, on_done, &done);
  g_main_loop_run (done.loop);
  g_main_loop_unref (done.loop);
  if (done.error != NULL)
    g_propagate_error (error, done.error);
  return done.result;
}
