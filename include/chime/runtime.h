/* chime — the runtime: configuration, handlers, delivery.
 *
 * A ChimeRuntime is created from an INI file (or a GKeyFile), loads the
 * handler plugins it names, and delivers events to them. Emit events through
 * run managers (chime/run.h). chime_runtime_flush() waits until every handler
 * has handled every event emitted so far; chime_runtime_free() flushes, then
 * frees every handler instance. No event is ever lost.
 */
#pragma once

#include <glib.h>
#include <chime/event.h>

G_BEGIN_DECLS

typedef struct _ChimeRuntime ChimeRuntime;

#define CHIME_CONFIG_ERROR (chime_config_error_quark ())
GQuark chime_config_error_quark (void);

/**
 * ChimeConfigError:
 * @CHIME_CONFIG_ERROR_INVALID: the configuration has problems; the message
 *   lists every one of them, one per line.
 * @CHIME_CONFIG_ERROR_PLUGIN: a plugin could not be loaded or refused to
 *   start; the message names the file and the reason.
 * @CHIME_CONFIG_ERROR_IO: the file could not be read.
 */
typedef enum {
  CHIME_CONFIG_ERROR_INVALID,
  CHIME_CONFIG_ERROR_PLUGIN,
  CHIME_CONFIG_ERROR_IO,
} ChimeConfigError;

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
 */
typedef enum {
  CHIME_ON_FULL_BLOCK,
  CHIME_ON_FULL_DROP_NEWEST,
  CHIME_ON_FULL_DROP_OLDEST,
} ChimeOnFull;

/**
 * ChimeHandlerStats: counters for one handler, read with
 * chime_runtime_get_handler_stats().
 */
typedef struct {
  guint64 delivered;   /* entry point calls that returned or completed */
  guint64 failed;      /* of those, how many failed */
  guint64 dropped;     /* events dropped by the on_full policy */
  guint64 timed_out;   /* async calls cut off by timeout_ms */
} ChimeHandlerStats;

ChimeRuntime *chime_runtime_new_from_file    (const char  *path,
                                              GError     **error);
/* @base_dir resolves relative paths; @source_name names the configuration
 * in error messages (e.g. the file name). */
ChimeRuntime *chime_runtime_new_from_key_file (GKeyFile    *key_file,
                                               const char  *source_name,
                                               const char  *base_dir,
                                               GError     **error);

/* Waits until every handler has handled every event emitted before the
 * call, including pending async completions. On the thread that owns the
 * runtime's main context (or when no thread does) it iterates that context
 * while waiting, so async handlers make progress. */
void          chime_runtime_flush            (ChimeRuntime *runtime);
/* Flushes, stops the workers, frees every handler instance and the runtime.
 * The plugins stay loaded (code that may still run is never unloaded). */
void          chime_runtime_free             (ChimeRuntime *runtime);

ChimeDelivery chime_runtime_get_delivery     (ChimeRuntime *runtime);
GMainContext *chime_runtime_get_main_context (ChimeRuntime *runtime);
guint         chime_runtime_get_n_handlers   (ChimeRuntime *runtime);
/* The `[handler NAME]` names, in file order. */
const char   *chime_runtime_get_handler_name (ChimeRuntime *runtime,
                                              guint         index);
gboolean      chime_runtime_get_handler_stats (ChimeRuntime      *runtime,
                                               const char        *handler_name,
                                               ChimeHandlerStats *out_stats);

const char   *chime_delivery_to_string       (ChimeDelivery delivery);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeRuntime, chime_runtime_free)

G_END_DECLS
