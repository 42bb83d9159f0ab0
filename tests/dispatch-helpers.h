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

/* The state of one dispatch test (a cmocka fixture, dispatch_setup and
 * dispatch_teardown): the runtime the test's INI text builds, its
 * manager, and the runs the test starts, freed by the teardown even when
 * the test fails. */
typedef struct {
  ChimeRuntime         *runtime;
  ChimeCallbackManager *manager;
  ChimeRun             *chain;  /* a test's chain run, if it starts one */
  ChimeCallbackManager *child;  /* the chain's child manager */
  ChimeRun             *llm;    /* a test's chat model run */
  gboolean              capturing_log;
} DispatchFixture;

/* A fixture with nothing started yet. */
int  dispatch_setup (void **state);
/* The same, capturing chime's log (test_log_contains()) until the
 * teardown. */
int  dispatch_setup_capturing_log (void **state);
/* dispatch_stop(), then the log capture ends and the fixture is freed. */
int  dispatch_teardown (void **state);

/* Builds the fixture's runtime from the INI text of the printf @format
 * and a callback manager of it; fails the test when the runtime is
 * refused. */
void dispatch_start (DispatchFixture *fixture,
                     const char      *format,
                     ...) G_GNUC_PRINTF (2, 3);
/* Frees the runs, the managers and the runtime, which delivers what is
 * still queued and has the handlers write their reports. Again is a
 * no-op. */
void dispatch_stop  (DispatchFixture *fixture);
