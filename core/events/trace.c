/* Run trees and the failure a raise_error handler leaves on them. */
#include "config.h"

#include "trace.h"

struct _ChimeTrace {
  gint    ref_count;
  GError *failure;   /* set once, atomically; read without a lock */
};

ChimeTrace *
chime_trace_new (void)
{
  ChimeTrace *trace = g_new0 (ChimeTrace, 1);

  trace->ref_count = 1;
  return trace;
}

ChimeTrace *
chime_trace_ref (ChimeTrace *trace)
{
  g_atomic_int_inc (&trace->ref_count);
  return trace;
}

void
chime_trace_unref (ChimeTrace *trace)
{
  if (trace == NULL || !g_atomic_int_dec_and_test (&trace->ref_count))
    return;
  g_clear_error (&trace->failure);
  g_free (trace);
}

void
chime_trace_fail (ChimeTrace   *trace,
                  const GError *failure)
{
  GError *copy = g_error_copy (failure);

  if (!g_atomic_pointer_compare_and_exchange (&trace->failure, NULL, copy))
    g_error_free (copy);
}

gboolean
chime_trace_check (ChimeTrace *trace,
                   GError    **error)
{
  GError *failure = g_atomic_pointer_get (&trace->failure);

  if (G_LIKELY (failure == NULL))
    return TRUE;
  if (error != NULL)
    *error = g_error_copy (failure);
  return FALSE;
}
