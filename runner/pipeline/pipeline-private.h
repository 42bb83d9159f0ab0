/* What pipeline.c (construction) and pipeline-run.c (running) share. */
#pragma once

#include <chime/chime.h>
#include "pipeline.h"
#include "pipeline-config.h"

struct _ChimePipeline {
  ChimeConfig         *ini;
  ChimeRuntime        *runtime;
  ChimePipelineConfig *config;
  /* A handler taps the steps' streams (astream_events): emit them. */
  gboolean             tap_streams;
  ChimePipelineChunkFunc on_chunk;
  gpointer             on_chunk_data;
};
