/* The trace page: trace-page.html (the page's markup, style and script,
 * embedded at build time) with a trace's JSON in it. */
#pragma once

#include <chime/plugin.h>

/* The page showing @trace (trace_runs_to_json(); with "live": true the
 * page follows /events of the server that sent it). */
GString *trace_page_render (json_t *trace);
