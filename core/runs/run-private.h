/* Callback managers and run managers: what run.c and callback-manager.c
 * share. */
#pragma once

#include <chime/run.h>
#include <chime/emit.h>
#include "runtime-private.h"

struct _ChimeCallbackManager {
  gint          ref_count;
  ChimeRuntime *runtime;              /* a reference */
  guint64       handlers;             /* bit per ChimeHandler index */
  guint64       inheritable_handlers;
  GPtrArray    *tags;                 /* char* */
  GPtrArray    *inheritable_tags;
  json_t       *metadata;
  json_t       *inheritable_metadata;
  ChimeRunId    parent_run_id;
  gboolean      has_parent;
  ChimeRunInfo *parent_info;          /* owned; NULL when only the id is known */
};

struct _ChimeRun {
  gint          ref_count;
  ChimeRuntime *runtime;              /* a reference */
  ChimeRunInfo *info;                 /* owned */
  guint64       handlers;
  guint64       inheritable_handlers;
  GPtrArray    *inheritable_tags;
  json_t       *inheritable_metadata;
};

/* A GCopyFunc for string arrays. */
gpointer    chime_copy_string          (gconstpointer src,
                                        gpointer      user_data);

/* Creates a run and its info from @manager, without emitting anything. */
ChimeRun   *chime_run_new_from_manager (ChimeCallbackManager *manager,
                                        ChimeRunKind          kind,
                                        const char           *run_type,
                                        const char           *name);
/* A new event of @type for @run. */
ChimeEvent *chime_run_new_event        (ChimeRun       *run,
                                        ChimeEventType  type,
                                        const char     *inline_text);
/* Emits through the run's handlers (blocking as the delivery says). */
gboolean    chime_run_emit             (ChimeRun   *run,
                                        ChimeEvent *event,
                                        GError    **error);
/* The name LangChain would give: @name, else serialized["name"], else the
 * last element of serialized["id"], else @fallback. */
const char *chime_run_pick_name        (const char *name,
                                        json_t     *serialized,
                                        const char *fallback);
