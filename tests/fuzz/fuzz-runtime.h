/* The runtime of the harnesses that build events (fuzz-event-json.c,
 * fuzz-event-wire.c): no handler, so events are prepared, never
 * delivered. */
#pragma once

#include <chime/chime.h>

static inline ChimeRuntime *
fuzz_runtime_without_handlers (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeConfig) config = chime_config_new_from_data ("[runtime]\nthreads = 1\n", "fuzz.ini", "/",
                                                               &error);
  ChimeRuntime *runtime;

  g_assert_no_error (error);
  runtime = chime_runtime_new (config, &error);
  g_assert_no_error (error);
  return runtime;
}
