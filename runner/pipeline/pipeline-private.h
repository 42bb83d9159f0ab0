/* What pipeline.c (construction) and pipeline-run.c (running) share. */
#pragma once

#include <chime/chime.h>
#include "pipeline.h"
#include "pipeline-config.h"

struct _ChimePipeline {
  ChimeConfig         *ini;
  ChimeRuntime        *runtime;
  ChimePipelineConfig *config;
};
