/* chime — a C runtime for LLM callback handlers. The umbrella header. */
#pragma once

#include <chime/version.h>
#include <chime/event.h>
#include <chime/runtime.h>
#include <chime/run.h>
#include <chime/plugin.h>
#include <chime/http.h>
