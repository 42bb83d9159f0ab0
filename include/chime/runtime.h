/* chime — the runtime: configuration, handlers, delivery.
 *
 * A ChimeRuntime is built from a configuration (chime/config.h), loads the
 * handler plugins it names, and delivers events to them. Emit events through
 * run managers (chime/run.h, chime/emit.h).
 *
 * A runtime is reference-counted: every callback manager and run holds a
 * reference, so none can outlive it. Its end is explicit:
 * chime_runtime_shutdown() drains every queue, completes every pending
 * async call and frees every handler instance; dropping the last
 * reference of a runtime that was not shut down shuts it down first. No
 * event is ever lost.
 */
#pragma once

#include <gio/gio.h>
#include <chime/macros.h>
#include <chime/config.h>
#include <chime/event.h>
#include <chime/plugin.h>

G_BEGIN_DECLS

typedef struct _ChimeRuntime ChimeRuntime;

/**
 * ChimeDelivery:
 * @CHIME_DELIVERY_AWAITED: the emitter waits for every handler on every
 *   event (LangChain Python).
 * @CHIME_DELIVERY_FENCED: tokens and text stream without waiting; start, end
 *   and error events wait until every handler has handled everything before
 *   them, and the emitter continues once they are handled.
 * @CHIME_DELIVERY_BACKGROUND: nothing waits; each handler still sees its
 *   events in order (LangChain.js default).
 */
typedef enum {
  CHIME_DELIVERY_AWAITED,
  CHIME_DELIVERY_FENCED,
  CHIME_DELIVERY_BACKGROUND,
} ChimeDelivery;

/**
 * ChimeOnFull: what an emitter does when a handler's queue is full.
 * @CHIME_ON_FULL_BLOCK: wait for room (back-pressure).
 * @CHIME_ON_FULL_DROP_NEWEST: the lagging handler does not get new events
 *   (counted).
 * @CHIME_ON_FULL_DROP_OLDEST: the lagging handler loses its oldest events
 *   (counted).
 */
typedef enum {
  CHIME_ON_FULL_BLOCK,
  CHIME_ON_FULL_DROP_NEWEST,
  CHIME_ON_FULL_DROP_OLDEST,
} ChimeOnFull;

/**
 * ChimeHandlerStats: counters for one handler, copied out by
 * chime_runtime_get_handler_stats(). Counters are only ever appended, so a
 * caller built against an older header passes its smaller size and gets the
 * counters it knows.
 * @delivered: entry point calls that returned or completed.
 * @failed: of those, how many failed.
 * @dropped: events dropped by the on_full policy.
 * @timed_out: calls cut off by timeout_ms (async handlers, and sync
 *   handlers with isolation = process).
 * @restarts: with isolation = process, how often its host process ended
 *   (crashed, exited, or was killed after a timeout) and was started again.
 * @redelivered: with isolation = process, events given again to a new
 *   host because the one before ended without answering them (at least
 *   once: the plugin may have seen them before).
 */
typedef struct {
  guint64 delivered;
  guint64 failed;
  guint64 dropped;
  guint64 timed_out;
  guint64 restarts;
  guint64 redelivered;
} ChimeHandlerStats;

/**
 * ChimeHandlerInfo: what a runtime knows of one of its handlers. Owned by
 * the runtime, valid as long as it is; fields are only ever appended.
 * @name: the `[handler NAME]` name.
 * @plugin_name: the plugin's own name (its descriptor's).
 * @plugin_path: the file the plugin was loaded from.
 * @mode: sync (thread pool) or async (main loop).
 * @raise_error, @run_inline, @inheritable: the handler's flags.
 * @plugin_flags: the plugin's ChimePluginFlags, as its descriptor declares
 *   them (added with plugin ABI 2.1). A program that streams a run's
 *   steps asks whether any handler has CHIME_PLUGIN_WANTS_STREAM.
 */
typedef struct {
  const char      *name;
  const char      *plugin_name;
  const char      *plugin_path;
  ChimeHandlerMode mode;
  gboolean         raise_error;
  gboolean         run_inline;
  gboolean         inheritable;
  ChimePluginFlags plugin_flags;
} ChimeHandlerInfo;

/* Builds a runtime from @config: reads [runtime] and every
 * [handler NAME], loads and starts the handlers, and reports every problem
 * of the file at once (the ones recorded in @config before included).
 * Sections other than those and the ones declared with
 * chime_config_accept_section() are problems. Async handlers and waiting
 * emitters use the thread-default main context of the calling thread. */
CHIME_API ChimeRuntime *chime_runtime_new               (ChimeConfig *config,
                                                        GError     **error);
/* chime_runtime_new() on the file at @path. */
CHIME_API ChimeRuntime *chime_runtime_new_from_file     (const char  *path,
                                                        GError     **error);
/* chime_runtime_new() on @key_file; @base_dir resolves relative paths and
 * @source_name names the configuration in error messages. */
CHIME_API ChimeRuntime *chime_runtime_new_from_key_file (GKeyFile    *key_file,
                                                        const char  *source_name,
                                                        const char  *base_dir,
                                                        GError     **error);
/* Takes a reference. */
CHIME_API ChimeRuntime *chime_runtime_ref   (ChimeRuntime *runtime);
/* Drops a reference; the last one shuts the runtime down (if it was not)
 * and frees it. */
CHIME_API void          chime_runtime_unref (ChimeRuntime *runtime);

/* Waits until every handler has handled every event emitted before the
 * call, including pending async completions. On the thread that owns the
 * runtime's main context (or when no thread does) it iterates that context
 * while waiting, so async handlers make progress. */
CHIME_API void     chime_runtime_flush        (ChimeRuntime        *runtime);
/* The same without blocking: @callback runs on the runtime's main context
 * once every event emitted before the call is handled, so a program keeps
 * its main loop (and its signal handlers) running meanwhile. */
CHIME_API void     chime_runtime_flush_async  (ChimeRuntime        *runtime,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
/* FALSE with @error only when the flush was cancelled. */
CHIME_API gboolean chime_runtime_flush_finish (ChimeRuntime        *runtime,
                                               GAsyncResult        *result,
                                               GError             **error);
/* Flushes, stops the workers and frees every handler instance. Emitting
 * afterwards is a programming error. The plugins stay loaded (code that
 * may still run is never unloaded). Idempotent. */
CHIME_API void     chime_runtime_shutdown     (ChimeRuntime        *runtime);

/* The delivery mode of [runtime] delivery. */
CHIME_API ChimeDelivery chime_runtime_get_delivery     (ChimeRuntime *runtime);
/* The main context async handlers run on. */
CHIME_API GMainContext *chime_runtime_get_main_context (ChimeRuntime *runtime);
/* How many handlers the configuration has. */
CHIME_API guint         chime_runtime_get_n_handlers   (ChimeRuntime *runtime);
/* The handler at @index, in file order. */
CHIME_API const ChimeHandlerInfo *chime_runtime_get_handler_info (ChimeRuntime *runtime,
                                                                  guint         index);
/* The `[handler NAME]` name of the handler at @index, in file order. */
CHIME_API const char   *chime_runtime_get_handler_name (ChimeRuntime *runtime,
                                                        guint         index);
/* Copies the counters of @handler_name into @out_stats, at most
 * @stats_size bytes of them (pass sizeof (ChimeHandlerStats)). FALSE when
 * no handler has that name. */
CHIME_API gboolean      chime_runtime_get_handler_stats (ChimeRuntime      *runtime,
                                                         const char        *handler_name,
                                                         ChimeHandlerStats *out_stats,
                                                         gsize              stats_size);
/* The message of the first failure of @handler_name that was not a
 * timeout: an entry point that returned FALSE or failed its completion, or
 * chime_handler_context_report_error(). NULL when the handler has not
 * failed, or when no handler has that name. Owned by the runtime, which
 * keeps it after chime_runtime_shutdown(), when instance_free may have
 * added the last one. */
CHIME_API const char   *chime_runtime_get_handler_failure (ChimeRuntime *runtime,
                                                           const char   *handler_name);

/* Opt-in, once per process, before any runtime is built: when a fatal
 * signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) strikes, writes to
 * stderr which handler was running on the crashing thread,
 *
 *   PREFIX: handler 'NAME' (plugin PLUGIN) crashed with SIGSEGV in on_llm_new_token (run ID)
 *
 * (or "PREFIX: crashed with SIGSEGV outside any handler"), then lets the
 * process die of the same signal with its default action: the exit
 * status stays 128+N and core dumps work as before. Every thread that
 * calls handlers gets an alternate signal stack, so a stack overflow is
 * reported too. It replaces the program's own actions for those signals:
 * a program with handlers of its own for them should not call it. FALSE
 * with @error when a signal action cannot be installed. Calling it again
 * does nothing. */
CHIME_API gboolean      chime_crash_report_install (const char  *prefix,
                                                    GError     **error);

/* Delivers @event, made elsewhere (chime_event_from_transport(), say: an
 * event another process emitted), to every handler of the runtime that
 * wants it, as if it had been emitted here: run_inline handlers first,
 * then the queued ones, waiting as the delivery mode says. It takes a
 * reference of its own. FALSE with @error when a raise_error handler
 * failed on the event's run tree (as rebuilt), or after
 * chime_runtime_shutdown(). Use chime_runtime_flush() to know that every
 * handler has finished it. */
CHIME_API gboolean      chime_runtime_replay       (ChimeRuntime *runtime,
                                                    ChimeEvent   *event,
                                                    GError      **error);
/* "awaited", "fenced" or "background". */
CHIME_API const char   *chime_delivery_to_string       (ChimeDelivery delivery);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeRuntime, chime_runtime_unref)

G_END_DECLS
