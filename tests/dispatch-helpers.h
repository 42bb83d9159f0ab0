/* Helpers shared by the dispatch tests (tests/test-dispatch-*.c): runs
 * emitted through the run managers, and what the recorder plugins of
 * tests/plugins report. */
#pragma once

#include "test-helpers.h"

/* A chain run named @name, with {"input": "hi"}. */
ChimeRun *start_chain (ChimeCallbackManager *manager,
                       const char           *name);

/* A chat model run "FakeChat" on a system and a human message. */
ChimeRun *start_chat (ChimeCallbackManager *manager);

/* The tokens "@first" to "@first + @count - 1", one event each. */
void emit_tokens (ChimeRun *llm,
                  guint     first,
                  guint     count);

/* Ends @llm with an empty LLMResult. */
void end_llm (ChimeRun *llm);

/* Ends @chain with {"output": "done"}. */
void end_chain (ChimeRun *chain);

/* An integer of a recorder's JSON report. */
json_int_t report_int (json_t     *report,
                       const char *key);

/* How many events of @type the recorder's report counted. */
json_int_t report_count (json_t     *report,
                         const char *type);

/* The runtime's statistics of the handler @name. */
ChimeHandlerStats stats_of (ChimeRuntime *runtime,
                            const char   *name);
