/* The dispatcher: one bounded ring of events, one cursor per handler.
 *
 * Emitters append each event once; every queued handler owns a cursor and
 * consumes the ring in order, skipping what is not for it (the LMAX
 * Disruptor pattern). Sync handlers' cursors advance in drain tasks on a
 * GThreadPool (one push serves many events), async handlers' cursors on
 * the main loop. See docs/architecture.md.
 *
 * This is the API the runtime uses. Construction is in dispatcher.c;
 * claim, fill, publish, the token paths and get_head in ring.c; is_done,
 * wait, when_done and flush in wait.c; run_now in caller-runs.c. The
 * other files of core/dispatch/ are internal (dispatch-types.h lists
 * them). */
#pragma once

#include <chime/runtime.h>
#include "events/event-private.h"
#include "plugins/handler.h"

typedef struct _ChimeDispatcher ChimeDispatcher;

typedef struct {
  guint         threads;
  guint         queue_limit;
  ChimeOnFull   on_full;
  /* An emitter that waits for a sync handler with work pending runs that
   * work itself instead of waking a pool thread (awaited delivery, where
   * the emitter waits on every event, as LangChain's sync manager calls
   * sync handlers on the caller's thread). */
  gboolean      caller_runs;
  GMainContext *main_context;
  /* Say when one async call holds the main loop this long (0: never). */
  guint         loop_watchdog_ms;
} ChimeDispatcherSettings;

/* Creates the ring and a consumer for each of @handlers (which must
 * outlive the dispatcher). */
ChimeDispatcher *chime_dispatcher_new  (ChimeHandler                 **handlers,
                                        guint                          n_handlers,
                                        const ChimeDispatcherSettings *settings);
/* Drains everything, stops the workers and frees the dispatcher. */
void             chime_dispatcher_free (ChimeDispatcher *dispatcher);

/* Appends @event (the dispatcher takes the reference) for the handlers in
 * @call_mask. A @fence event reaches a handler only once every handler has
 * handled everything before it. Waits for room while the ring is full
 * (block policy); drop policies never wait. Returns the event's position. */
guint64  chime_dispatcher_publish     (ChimeDispatcher *dispatcher,
                                       ChimeEvent      *event,
                                       guint64          call_mask,
                                       gboolean         fence);
/* The two halves of publishing: claim a position (FALSE when there is no
 * room and @may_wait is FALSE), then fill it. A claimed position must be
 * filled, promptly: consumers wait for it. */
gboolean chime_dispatcher_claim       (ChimeDispatcher *dispatcher,
                                       gboolean         may_wait,
                                       guint64         *out_position);
void     chime_dispatcher_fill        (ChimeDispatcher *dispatcher,
                                       guint64          position,
                                       ChimeEvent      *event,
                                       guint64          call_mask,
                                       gboolean         fence);
/* Publishes a token of @run for @call_mask (never a fence), its event
 * made in the slot it goes to (chime_event_renew_token_in_place), with
 * @chunk (may be NULL; a reference is taken). Waits for room as
 * chime_dispatcher_publish does. FALSE, having done nothing, under a drop
 * policy or with caller_runs: then the caller publishes an event of its
 * own. */
gboolean chime_dispatcher_publish_token (ChimeDispatcher *dispatcher,
                                         ChimeRunInfo    *run,
                                         const char      *token,
                                         json_t          *chunk,
                                         guint64          call_mask);
/* How chime_dispatcher_try_publish_token() went: published; not this way
 * (a drop policy, or caller_runs: the caller emits an event of its own);
 * or no room, nothing done. */
typedef enum {
  CHIME_TOKEN_PUBLISHED,
  CHIME_TOKEN_ELSEWHERE,
  CHIME_TOKEN_NO_ROOM,
} ChimeTokenPublish;
/* chime_dispatcher_publish_token() without waiting for room. */
ChimeTokenPublish chime_dispatcher_try_publish_token (ChimeDispatcher *dispatcher,
                                                      ChimeRunInfo    *run,
                                                      const char      *token,
                                                      json_t          *chunk,
                                                      guint64          call_mask);

/* An awaited event its emitter handles itself (caller_runs): calls the
 * handlers in @call_mask for @event at once, on this thread, when every
 * handler is sync, idle and has handled everything published, and then
 * takes the reference (the event gets no ring position). FALSE, the
 * reference still the caller's, otherwise (or without caller_runs):
 * publish the event and wait for it then. */
gboolean chime_dispatcher_run_now     (ChimeDispatcher *dispatcher,
                                       ChimeEvent      *event,
                                       guint64          call_mask);

/* Whether every handler has handled every position below @end. */
gboolean chime_dispatcher_is_done     (ChimeDispatcher *dispatcher,
                                       guint64          end);
/* Blocks until chime_dispatcher_is_done (@end). On the thread that owns
 * the main context (or when none does) it iterates the context meanwhile,
 * so async handlers make progress. */
void     chime_dispatcher_wait        (ChimeDispatcher *dispatcher,
                                       guint64          end);
/* Calls @callback on the main context once every handler has handled every
 * position below @end (@end = 0: once the ring has room to publish). */
void     chime_dispatcher_when_done   (ChimeDispatcher *dispatcher,
                                       guint64          end,
                                       GSourceFunc      callback,
                                       gpointer         user_data);
/* The next position to be claimed. */
guint64  chime_dispatcher_get_head    (ChimeDispatcher *dispatcher);
/* Waits until everything published so far is handled. */
void     chime_dispatcher_flush       (ChimeDispatcher *dispatcher);
