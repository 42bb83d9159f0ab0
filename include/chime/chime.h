/* chime — a C runtime for LLM callback handlers. The umbrella header.
 *
 *   chime/config.h         configuration files, problems, typed readers
 *   chime/runtime.h        the runtime: build, flush, shut down, handlers
 *   chime/run.h            callback managers and runs (LangChain's API)
 *   chime/emit.h           emitting without blocking, for main-loop emitters
 *   chime/event.h          events and run facts, as handlers read them
 *   chime/plugin.h         the plugin ABI and the host API for plugins
 *   chime/plugin-loader.h  finding, loading and describing plugins
 *   chime/http.h           HTTP on the main loop, for plugins and hosts
 *   chime/terminal.h       a status line kept below printed text
 */
#pragma once

#include <chime/macros.h>
#include <chime/version.h>
#include <chime/config.h>
#include <chime/event.h>
#include <chime/plugin.h>
#include <chime/plugin-loader.h>
#include <chime/runtime.h>
#include <chime/run.h>
#include <chime/emit.h>
#include <chime/http.h>
#include <chime/terminal.h>
