/* chime — the plugin ABI (2.2).
 *
 * A plugin is a shared object that exports one data symbol,
 * `chime_plugin_descriptor`. Define it with CHIME_SYNC_PLUGIN_DEFINE or
 * CHIME_ASYNC_PLUGIN_DEFINE: they fill in the ABI version and the mode, and
 * give the entry points the type of that mode, so the compiler (not the
 * docs) keeps a sync plugin's functions out of async slots:
 *
 *   static gboolean
 *   print_token (gpointer instance, ChimeEvent *event, GError **error)
 *   {
 *     printf ("token: %s\n", chime_event_get_token (event));
 *     return TRUE;
 *   }
 *
 *   CHIME_SYNC_PLUGIN_DEFINE (
 *     .name = "token_printer",
 *     .description = "prints every token",
 *     .on_llm_new_token = print_token,
 *   );
 *
 * Build it out of tree with
 *   cc -shared -fPIC -o token_printer.so token_printer.c $(pkg-config --cflags --libs chime)
 *
 * The descriptor is the plugin's *type*. Each `[handler NAME]` section of an
 * INI file creates an *instance*: the host calls instance_new() with that
 * section's configuration, passes the returned pointer to every entry point,
 * and calls instance_free() at shutdown, after the last event.
 *
 * Sync plugins run on the runtime's GThreadPool; async plugins run on the
 * GLib main loop. Either way an instance sees its events one at a time, in
 * emission order, and never concurrently with itself.
 *
 * How the ABI grows: the host loads a plugin whose ABI major is its own and
 * whose minor is not newer than its own, and refuses any other with a
 * message naming the file, the ABI found and the one expected. A minor adds
 * only at the end of what it extends: a new event is a new entry point slot
 * after the last one (the descriptor says how many it has), a new
 * descriptor field takes reserved space (which the host checks is zero), a
 * new config key field goes at the end of ChimeConfigKey (the descriptor
 * says its size), a new flag is a new ChimePluginFlags bit (which a
 * descriptor of an older minor must not set). Structs the host fills for a
 * caller carry their size. 2.1 added CHIME_PLUGIN_WANTS_STREAM; 2.2 added
 * tools (the descriptor's @tools, in what was its first reserved word).
 */
#pragma once

#include <glib.h>
#include <gmodule.h>
#include <jansson.h>

#include <chime/macros.h>
#include <chime/version.h>
#include <chime/event.h>

G_BEGIN_DECLS

/**
 * ChimeHandlerMode:
 * @CHIME_HANDLER_SYNC: entry points return when done; they run on a worker
 *   thread of the runtime's GThreadPool (LangChain's "sync handler in a
 *   thread_pool_executor").
 * @CHIME_HANDLER_ASYNC: entry points receive a ChimeCompletion and may
 *   complete later (after a timer, an HTTP request); they are called on the
 *   GLib main loop.
 */
typedef enum {
  CHIME_HANDLER_SYNC = 1,
  CHIME_HANDLER_ASYNC = 2,
} ChimeHandlerMode;

/**
 * ChimePluginFlags:
 * @CHIME_PLUGIN_THREAD_SAFE: the plugin's instances may be called from
 *   several threads at once. Only run_inline handlers are ever called that
 *   way (from concurrent emitting threads); queued delivery stays serial.
 * @CHIME_PLUGIN_WANTS_STREAM: the plugin receives each step's output
 *   stream as CHIME_STREAM_EVENT custom events (ABI 2.1). Those events go
 *   to the handlers of such plugins only, and a pipeline emits them only
 *   when one of its handlers has such a plugin.
 *
 * A plugin sets only the flags of the ABI it was built for; the host
 * refuses a descriptor with a flag its ABI minor does not define.
 */
typedef enum {
  CHIME_PLUGIN_FLAGS_NONE = 0,
  CHIME_PLUGIN_THREAD_SAFE = 1 << 0,
  CHIME_PLUGIN_WANTS_STREAM = 1 << 1,
} ChimePluginFlags;

/**
 * ChimeConfigType: the type of a key a plugin declares. The host checks
 * values against it before any instance is created.
 */
typedef enum {
  CHIME_CONFIG_STRING = 1,
  CHIME_CONFIG_INT,
  CHIME_CONFIG_BOOL,
  CHIME_CONFIG_DOUBLE,
  CHIME_CONFIG_STRING_LIST,
  /* A path; relative paths resolve against the INI file's folder. */
  CHIME_CONFIG_PATH,
  /* One of the strings in the key's @choices (read the index with
   * chime_handler_context_get_choice() or the string with _get_string()). */
  CHIME_CONFIG_CHOICE,
} ChimeConfigType;

/**
 * ChimeConfigKeyFlags:
 * @CHIME_CONFIG_KEY_REQUIRED: the section must set the key.
 */
typedef enum {
  CHIME_CONFIG_KEY_FLAGS_NONE = 0,
  CHIME_CONFIG_KEY_REQUIRED = 1 << 0,
} ChimeConfigKeyFlags;

/**
 * ChimeConfigKey: one key a plugin accepts in its `[handler NAME]` section.
 * @default_value is the default as it would be written in the INI file
 * (NULL: no default). Arrays of keys end with an entry whose @key is NULL.
 */
typedef struct {
  const char         *key;
  ChimeConfigType     type;
  const char         *default_value;
  const char         *description;
  ChimeConfigKeyFlags flags;
  /* CHIME_CONFIG_CHOICE: the allowed values, NULL-terminated. */
  const char * const *choices;
} ChimeConfigKey;

typedef struct _ChimeHandlerContext ChimeHandlerContext;
typedef struct _ChimeCompletion ChimeCompletion;
typedef struct _ChimeToolCall ChimeToolCall;
typedef struct _ChimeRun ChimeRun;

/* A sync tool: runs on a worker thread and returns its output (newly
 * allocated text), or NULL with @error set. */
typedef char *(*ChimeToolSyncFunc)  (gpointer        user_data,
                                     ChimeToolCall  *call,
                                     GError        **error);
/* An async tool: called on the main loop; ends the call exactly once,
 * now or later, from any thread, with chime_tool_call_return() or
 * chime_tool_call_fail(). */
typedef void  (*ChimeToolAsyncFunc) (gpointer        user_data,
                                     ChimeToolCall  *call);

/**
 * ChimeToolDescriptor: one tool a plugin provides (ABI 2.2). Arrays of
 * them end with an entry whose @name is NULL.
 *
 * @struct_size: sizeof (ChimeToolDescriptor) as the plugin was compiled
 *   (CHIME_TOOL_DESCRIPTOR_SIZE); the host reads only the fields it
 *   covers, so later minors can add fields at the end.
 * @name: what `plugin_tool` in a `[tool NAME]` section selects (default:
 *   the section's NAME).
 * @description: what the model reads to decide when to call it.
 * @parameters: a JSON Schema object for its arguments, as JSON text
 *   (NULL: no arguments).
 * @invoke: the sync entry point, or NULL.
 * @invoke_async: the async entry point, or NULL; exactly one is set.
 * @user_data: passed to the entry point.
 */
typedef struct {
  guint32             struct_size;
  const char         *name;
  const char         *description;
  const char         *parameters;
  ChimeToolSyncFunc   invoke;
  ChimeToolAsyncFunc  invoke_async;
  gpointer            user_data;
  gpointer            _chime_reserved[4];
} ChimeToolDescriptor;

#define CHIME_TOOL_DESCRIPTOR_SIZE ((guint32) sizeof (ChimeToolDescriptor))

/* A sync entry point: return TRUE when handled, or FALSE with @error set. */
typedef gboolean (*ChimeSyncFunc) (gpointer     instance,
                                   ChimeEvent  *event,
                                   GError     **error);

/* An async entry point: call chime_completion_complete() or
 * chime_completion_fail() exactly once, now or later, from any thread. */
typedef void (*ChimeAsyncFunc) (gpointer         instance,
                                ChimeEvent      *event,
                                ChimeCompletion *completion);

/**
 * CHIME_PLUGIN_DESCRIPTOR_HEAD:
 *
 * The fields every descriptor starts with, sync or async. The first two
 * never move, so any chime can tell which ABI a plugin was built for.
 *
 * @abi_major, @abi_minor: the ABI the plugin was built against (set by the
 *   DEFINE macros).
 * @config_key_size: sizeof (ChimeConfigKey) as the plugin was compiled: the
 *   host walks @config_keys with this stride and reads only the fields it
 *   covers (0: this header's size).
 * @n_event_slots: how many per-event entry points follow the catch-all (0:
 *   this header's CHIME_PLUGIN_N_EVENT_SLOTS); the host treats the events
 *   beyond them as not implemented.
 * @mode: sync or async (set by the DEFINE macros).
 * @flags: ChimePluginFlags.
 * @name, @description, @version: what `chime plugins` shows; @name is
 *   required.
 * @config_keys: the keys accepted in `[handler NAME]` beyond the ones every
 *   handler has (plugin, raise_error, run_inline, ignore, inheritable,
 *   timeout_ms), ending with a NULL key; may be NULL.
 * @instance_new: creates an instance for one `[handler NAME]` section.
 *   Optional: without it, entry points receive NULL as their instance.
 *   Return NULL and set @error to refuse the configuration.
 * @instance_free: frees an instance, after its last event. Optional.
 * @tools: the tools the plugin provides (ABI 2.2), ending with a NULL
 *   name; may be NULL. A plugin with tools needs no event entry point.
 * @_chime_reserved: space for fields of later minors; must be zero.
 */
#define CHIME_PLUGIN_DESCRIPTOR_HEAD                                        \
  guint32               abi_major;                                          \
  guint32               abi_minor;                                          \
  guint32               config_key_size;                                    \
  guint32               n_event_slots;                                      \
  ChimeHandlerMode      mode;                                               \
  ChimePluginFlags      flags;                                              \
  const char           *name;                                               \
  const char           *description;                                        \
  const char           *version;                                            \
  const ChimeConfigKey *config_keys;                                        \
  gpointer            (*instance_new)  (ChimeHandlerContext *context,       \
                                        GError             **error);        \
  void                (*instance_free) (gpointer instance);                 \
  const ChimeToolDescriptor *tools;                                         \
  gpointer              _chime_reserved[7];

/* One entry point per event, in ChimeEventType order; a minor that adds an
 * event appends its slot here. A NULL entry means "not implemented": the
 * event goes to the catch-all on_event if set, and is skipped otherwise. A
 * handler without on_chat_model_start but with on_llm_start receives chat
 * model starts through on_llm_start, the messages rendered "Role: content"
 * (chime_event_get_prompts()), as in LangChain. */
#define CHIME_PLUGIN_EVENT_SLOTS(FuncType) \
  FuncType on_llm_start;        \
  FuncType on_chat_model_start; \
  FuncType on_llm_new_token;    \
  FuncType on_llm_end;          \
  FuncType on_llm_error;        \
  FuncType on_chain_start;      \
  FuncType on_chain_end;        \
  FuncType on_chain_error;      \
  FuncType on_tool_start;       \
  FuncType on_tool_end;         \
  FuncType on_tool_error;       \
  FuncType on_agent_action;     \
  FuncType on_agent_finish;     \
  FuncType on_retriever_start;  \
  FuncType on_retriever_end;    \
  FuncType on_retriever_error;  \
  FuncType on_text;             \
  FuncType on_retry;            \
  FuncType on_custom_event;

/* How many event slots descriptors built with this header have. */
#define CHIME_PLUGIN_N_EVENT_SLOTS 19

/**
 * ChimePluginDescriptor: the head of every descriptor, as the host reads
 * it before it knows the mode.
 */
typedef struct {
  CHIME_PLUGIN_DESCRIPTOR_HEAD
} ChimePluginDescriptor;

/**
 * ChimeSyncPluginDescriptor: a sync plugin's descriptor: the head, the
 * catch-all @on_event, then one slot per event.
 */
typedef struct {
  CHIME_PLUGIN_DESCRIPTOR_HEAD
  ChimeSyncFunc on_event;
  CHIME_PLUGIN_EVENT_SLOTS (ChimeSyncFunc)
} ChimeSyncPluginDescriptor;

/**
 * ChimeAsyncPluginDescriptor: an async plugin's descriptor, laid out as the
 * sync one with async entry points.
 */
typedef struct {
  CHIME_PLUGIN_DESCRIPTOR_HEAD
  ChimeAsyncFunc on_event;
  CHIME_PLUGIN_EVENT_SLOTS (ChimeAsyncFunc)
} ChimeAsyncPluginDescriptor;

#define CHIME_PLUGIN_SYMBOL "chime_plugin_descriptor"

/**
 * CHIME_SYNC_PLUGIN_DEFINE:
 *
 * Defines and exports a sync plugin's descriptor; the arguments are
 * designated initializers for its other fields (.name, .on_llm_new_token,
 * ...).
 */
#define CHIME_SYNC_PLUGIN_DEFINE(...)                                          \
  G_MODULE_EXPORT const ChimeSyncPluginDescriptor chime_plugin_descriptor = { \
    .abi_major = CHIME_PLUGIN_ABI_MAJOR,                                       \
    .abi_minor = CHIME_PLUGIN_ABI_MINOR,                                       \
    .config_key_size = sizeof (ChimeConfigKey),                                \
    .n_event_slots = CHIME_PLUGIN_N_EVENT_SLOTS,                               \
    .mode = CHIME_HANDLER_SYNC,                                                \
    __VA_ARGS__                                                                \
  }

/**
 * CHIME_ASYNC_PLUGIN_DEFINE:
 *
 * Defines and exports an async plugin's descriptor, as
 * CHIME_SYNC_PLUGIN_DEFINE does for a sync one.
 */
#define CHIME_ASYNC_PLUGIN_DEFINE(...)                                          \
  G_MODULE_EXPORT const ChimeAsyncPluginDescriptor chime_plugin_descriptor = { \
    .abi_major = CHIME_PLUGIN_ABI_MAJOR,                                        \
    .abi_minor = CHIME_PLUGIN_ABI_MINOR,                                        \
    .config_key_size = sizeof (ChimeConfigKey),                                 \
    .n_event_slots = CHIME_PLUGIN_N_EVENT_SLOTS,                                \
    .mode = CHIME_HANDLER_ASYNC,                                                \
    __VA_ARGS__                                                                 \
  }

/* ---------------------------------------------------------------------
 * The host API for plugins.
 * ------------------------------------------------------------------- */

/**
 * CHIME_HANDLER_ERROR:
 *
 * The error domain of handler failures (#ChimeHandlerError).
 */
#define CHIME_HANDLER_ERROR (chime_handler_error_quark ())
/* The quark of CHIME_HANDLER_ERROR. */
CHIME_API GQuark chime_handler_error_quark (void);

/**
 * ChimeHandlerError:
 * @CHIME_HANDLER_ERROR_FAILED: a handler failed.
 * @CHIME_HANDLER_ERROR_NOT_IMPLEMENTED: returned by on_chat_model_start to
 *   ask for the llm_start fallback, as NotImplementedError in LangChain.
 * @CHIME_HANDLER_ERROR_TIMED_OUT: an async handler did not complete within
 *   its timeout_ms.
 */
typedef enum {
  CHIME_HANDLER_ERROR_FAILED,
  CHIME_HANDLER_ERROR_NOT_IMPLEMENTED,
  CHIME_HANDLER_ERROR_TIMED_OUT,
} ChimeHandlerError;

/* The `[handler NAME]` name. */
CHIME_API const char   *chime_handler_context_get_name         (ChimeHandlerContext *context);
/* The plugin's name. */
CHIME_API const char   *chime_handler_context_get_plugin_name  (ChimeHandlerContext *context);
/* The INI file the handler was configured in (NULL when built in code). */
CHIME_API const char   *chime_handler_context_get_config_file  (ChimeHandlerContext *context);
/* The main context async handlers run on: attach timers and I/O here. */
CHIME_API GMainContext *chime_handler_context_get_main_context (ChimeHandlerContext *context);

/* Typed configuration getters, valid during and after instance_new(): the
 * INI's value, else the key's default, else NULL/0/FALSE for a key with no
 * default. Getting an undeclared key is a programming error (a critical
 * warning; returns the zero value). A string, owned by the context. */
CHIME_API const char *chime_handler_context_get_string (ChimeHandlerContext *context,
                                                        const char          *key);
/* A CHIME_CONFIG_INT value. */
CHIME_API gint64      chime_handler_context_get_int    (ChimeHandlerContext *context,
                                                        const char          *key);
/* A CHIME_CONFIG_BOOL value. */
CHIME_API gboolean    chime_handler_context_get_bool   (ChimeHandlerContext *context,
                                                        const char          *key);
/* A CHIME_CONFIG_DOUBLE value. */
CHIME_API gdouble     chime_handler_context_get_double (ChimeHandlerContext *context,
                                                        const char          *key);
/* The index of a CHIME_CONFIG_CHOICE value in the key's choices. */
CHIME_API guint       chime_handler_context_get_choice (ChimeHandlerContext *context,
                                                        const char          *key);
/* A CHIME_CONFIG_STRING_LIST value, NULL-terminated; owned by the context. */
CHIME_API const char * const *chime_handler_context_get_string_list (ChimeHandlerContext *context,
                                                                     const char          *key);
/* TRUE when the INI file set the key (not just its default). */
CHIME_API gboolean    chime_handler_context_has_key    (ChimeHandlerContext *context,
                                                        const char          *key);

/* Logs with the prefix "NAME (plugin): " in the "chime" log domain.
 * Thread-safe; G_LOG_LEVEL_ERROR is logged as critical (a plugin cannot
 * abort its host). */
CHIME_API void chime_handler_log (ChimeHandlerContext *context,
                                  GLogLevelFlags       level,
                                  const char          *format,
                                  ...) G_GNUC_PRINTF (3, 4);

/* Reports a failure met outside an entry point call: in instance_free (a
 * file whose last lines cannot be written or closed), or in a timer or an
 * I/O callback of the plugin's own. It is logged as "handler 'NAME'
 * (plugin) failed: MESSAGE" and counted in the handler's
 * ChimeHandlerStats.failed like an entry point's failure, so the program
 * running the handler hears of it (`chime run` exits with status 4). An
 * entry point reports its failures by returning FALSE with a GError (or
 * chime_completion_fail()) instead. Thread-safe; @error stays the
 * caller's. */
CHIME_API void chime_handler_context_report_error (ChimeHandlerContext *context,
                                                   const GError        *error);

/* The arguments of a tool call: a JSON object (borrowed). */
CHIME_API json_t       *chime_tool_call_get_args  (ChimeToolCall *call);
/* The call's tool run: dispatch custom events through it
 * (chime_run_dispatch_custom_event() in chime/run.h). Borrowed, valid
 * until the call ends. */
CHIME_API ChimeRun     *chime_tool_call_get_run   (ChimeToolCall *call);
/* The main context the run's events and an async tool's timers use. */
CHIME_API GMainContext *chime_tool_call_get_main_context (ChimeToolCall *call);
/* Ends an async tool's call with its output (copied). Thread-safe. */
CHIME_API void          chime_tool_call_return    (ChimeToolCall *call,
                                                   const char    *output);
/* Ends an async tool's call with an error (taken). Thread-safe. */
CHIME_API void          chime_tool_call_fail      (ChimeToolCall *call,
                                                   GError        *error);

/* Completes an async entry point successfully. Thread-safe; exactly once. */
CHIME_API void        chime_completion_complete  (ChimeCompletion *completion);
/* Completes an async entry point with an error (takes ownership). */
CHIME_API void        chime_completion_fail      (ChimeCompletion *completion,
                                                  GError          *error);
/* The event this completion belongs to. */
CHIME_API ChimeEvent *chime_completion_get_event (ChimeCompletion *completion);

G_END_DECLS
