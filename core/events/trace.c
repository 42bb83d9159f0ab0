/* Run trees and the failure a raise_error handler leaves on them. */
#include "config.h"

#include "trace.h"

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

/* chime_trace_check's slow side: a failure is recorded. */
gboolean
chime_trace_check_failed (ChimeTrace *trace,
                          GError    **error)
{
  GError *failure = g_atomic_pointer_get (&trace->failure);

  if (error != NULL)
    *error = g_error_copy (failure);
  return FALSE;
}
