/* A handler: one `[handler NAME]` section turned into a plugin instance,
 * with LangChain's flags and the entry point to call for each event. */
#pragma once

#include <chime/plugin.h>
#include <chime/runtime.h>
#include "handler-context.h"
#include "plugin-loader.h"

/* LangChain's ignore_* flags. */
typedef enum {
  CHIME_IGNORE_LLM = 1 << 0,
  CHIME_IGNORE_CHAT_MODEL = 1 << 1,
  CHIME_IGNORE_CHAIN = 1 << 2,
  CHIME_IGNORE_AGENT = 1 << 3,
  CHIME_IGNORE_RETRIEVER = 1 << 4,
  CHIME_IGNORE_RETRY = 1 << 5,
  CHIME_IGNORE_CUSTOM_EVENT = 1 << 6,
} ChimeIgnoreFlags;

/* How an event type reaches a handler. */
typedef enum {
  CHIME_ROUTE_NONE,          /* not delivered */
  CHIME_ROUTE_DIRECT,        /* its own entry point */
  CHIME_ROUTE_LLM_FALLBACK,  /* chat_model_start through on_llm_start */
  CHIME_ROUTE_CATCH_ALL,     /* on_event */
} ChimeRoute;

/* The settings every handler section has, read by the configuration. */
typedef struct {
  char    *name;
  char    *plugin_spec;
  gboolean raise_error;
  gboolean run_inline;
  gboolean inheritable;
  guint    ignore;          /* ChimeIgnoreFlags */
  gint64   timeout_ms;      /* 0: none */
  /* isolation = process: what the host process needs to start the same
   * handler (see core/isolation/plugin-host.c); NULL: in this process. */
  json_t  *host_init;
  gint64   max_restarts;
  gint64   memory_limit_mb; /* isolation = process: the host's address space; 0: none */
} ChimeHandlerSettings;

typedef struct _ChimeHandler ChimeHandler;
typedef struct _ChimeHostLink ChimeHostLink;

struct _ChimeHandler {
  guint                        index;
  guint64                      bit;          /* 1 << index */
  ChimeHandlerSettings         settings;
  const ChimePlugin           *plugin;
  const ChimePluginDescriptor *descriptor;
  gboolean                     thread_safe;
  ChimeHandlerContext         *context;      /* owned */
  gpointer                     instance;
  ChimeHostLink               *link;         /* isolated: the host process */
  gboolean                     started;
  guint8                       routes[CHIME_EVENT_N_TYPES];
  gpointer                     entries[CHIME_EVENT_N_TYPES];
  GMutex                       inline_lock;  /* run_inline calls of unsafe plugins */
  /* The message of the first failure that was not a timeout, for the
   * embedder's summary; set once, by compare-and-swap, as failures may
   * come from several threads. */
  char                        *first_failure;

  /* Statistics, on a cache line of their own: a consumer updates them on
   * every event, and nothing else should share that line. */
  guint64 delivered __attribute__ ((aligned (64)));
  guint64 failed;
  guint64 dropped;
  guint64 timed_out;
  guint64 restarts;        /* isolation = process */
  guint64 redelivered;
  guint8  _stats_pad[64 - 6 * sizeof (guint64)];
};

/* Takes ownership of @settings' strings and of @context. */
ChimeHandler *chime_handler_new   (guint                 index,
                                   ChimeHandlerSettings *settings,
                                   const ChimePlugin    *plugin,
                                   ChimeHandlerContext  *context);
/* Creates the plugin instance. */
gboolean      chime_handler_start (ChimeHandler  *handler,
                                   GError       **error);
/* Frees the instance (if started), after the handler's last event; the
 * handler's name and counters stay readable. */
void          chime_handler_stop  (ChimeHandler  *handler);
/* Stops the handler and frees it. */
void          chime_handler_free  (ChimeHandler  *handler);

void          chime_handler_settings_clear (ChimeHandlerSettings *settings);

/* Whether @type is delivered to @handler at all. */
static inline gboolean
chime_handler_wants (const ChimeHandler *handler,
                     ChimeEventType      type)
{
  return handler->routes[type] != CHIME_ROUTE_NONE;
}

/* Calls the plugin's entry point for @event (and the on_llm_start
 * fallback), in this process, reporting nothing: the plugin host's call. */
gboolean chime_handler_invoke_sync (ChimeHandler  *handler,
                                    ChimeEventType type,
                                    ChimeEvent    *event,
                                    GError       **error);
/* Calls a sync handler for @event (of @type, passed so the call does not
 * have to read the event), in its host process when it is isolated; on
 * failure reports it (log, stats, raise_error) and returns FALSE with
 * @error set. */
gboolean chime_handler_call_sync  (ChimeHandler  *handler,
                                   ChimeEventType type,
                                   ChimeEvent    *event,
                                   GError       **error);
/* Calls an async handler's entry point for @event. */
void     chime_handler_call_async (ChimeHandler    *handler,
                                   ChimeEvent      *event,
                                   ChimeCompletion *completion);
/* TRUE when a chat_model_start that failed with NOT_IMPLEMENTED should be
 * retried through on_llm_start. */
gboolean chime_handler_can_fall_back (ChimeHandler *handler,
                                      ChimeEvent   *event,
                                      const GError *failure);
/* Calls on_llm_start of an async handler for a chat_model_start. */
void     chime_handler_call_async_fallback (ChimeHandler    *handler,
                                            ChimeEvent      *event,
                                            ChimeCompletion *completion);

/* Logs "handler 'NAME' (plugin) failed on EVENT: message", counts it and,
 * with raise_error, fails the event's run tree. */
void     chime_handler_report_failure (ChimeHandler *handler,
                                       ChimeEvent   *event,
                                       const GError *failure);
/* The same for a failure outside any entry point call (instance_free, a
 * plugin's own timer): "handler 'NAME' (plugin) failed: message". */
void     chime_handler_report_failure_outside (ChimeHandler *handler,
                                               const GError *failure);
/* Counts an event handled. Only the handler's current owner counts (a
 * handler never runs concurrently with itself), except thread-safe
 * run_inline handlers, which emitting threads may call at once. Inline:
 * once per handler per event. */
static inline void
chime_handler_count_delivered (ChimeHandler *handler)
{
  if (handler->thread_safe)
    __atomic_add_fetch (&handler->delivered, 1, __ATOMIC_RELAXED);
  else
    __atomic_store_n (&handler->delivered,
                      __atomic_load_n (&handler->delivered, __ATOMIC_RELAXED) + 1,
                      __ATOMIC_RELAXED);
}
/* The rest of chime_handler_call_sync() after an in-process entry point
 * returned FALSE (@ok; it may fall back to on_llm_start) or set
 * @local_error (taken) anyway: counts the event and reports a failure. */
gboolean chime_handler_finish_sync_call (ChimeHandler  *handler,
                                         ChimeEventType type,
                                         ChimeEvent    *event,
                                         gboolean       ok,
                                         GError        *local_error,
                                         GError       **error);
/* chime_handler_caught_up for an isolated handler. */
void     chime_handler_flush_host (ChimeHandler *handler);
/* The handler's queue is caught up: what was gathered for it must not
 * wait for a later event (an isolated handler's host gets the tokens
 * sent so far). Called by the thread running the handler. Inline: every
 * drain that stops calls it, and only isolated handlers have a link. */
static inline void
chime_handler_caught_up (ChimeHandler *handler)
{
  if (G_UNLIKELY (handler->link != NULL))
    chime_handler_flush_host (handler);
}
/* Events the handler will never get, since its host stopped after
 * max_restarts crashes: the one rule for them, counted as failed without
 * a report each (the stop itself was reported once). */
void     chime_handler_count_lost (ChimeHandler *handler,
                                   guint64       n);
/* Its host was started again, and @redelivered events given to it again. */
void     chime_handler_count_restart (ChimeHandler *handler,
                                      guint64       redelivered);

void     chime_handler_get_stats (ChimeHandler      *handler,
                                  ChimeHandlerStats *out);
/* The message of the first failure that was not a timeout, or NULL. */
const char *chime_handler_get_first_failure (ChimeHandler *handler);

/* The ignore flag covering @type (0: never ignored). */
guint    chime_ignore_flag_for_event (ChimeEventType type);
