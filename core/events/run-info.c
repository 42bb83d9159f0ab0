/* Run facts shared by every event of a run. */
#include "config.h"

#include "event-private.h"
#include "trace.h"

ChimeRunInfo *
chime_run_info_ref (ChimeRunInfo *info)
{
  g_atomic_int_inc (&info->ref_count);
  return info;
}

void
chime_run_info_unref (ChimeRunInfo *info)
{
  if (info == NULL || !g_atomic_int_dec_and_test (&info->ref_count))
    return;
  if (info->parent != NULL)
    chime_run_info_unref (info->parent);
  g_free (info->run_type);
  g_free (info->name);
  g_strfreev (info->tags);
  json_decref (info->metadata);
  chime_trace_unref (info->trace);
  g_free (info->wire_text);
  g_aligned_free (info);
}

const ChimeRunId *
chime_run_info_get_id (const ChimeRunInfo *info)
{
  return &info->id;
}

const ChimeRunId *
chime_run_info_get_parent_id (const ChimeRunInfo *info)
{
  return info->has_parent ? &info->parent_id : NULL;
}

const ChimeRunInfo *
chime_run_info_get_parent (const ChimeRunInfo *info)
{
  return info->parent;
}

ChimeRunKind
chime_run_info_get_kind (const ChimeRunInfo *info)
{
  return info->kind;
}

const char *
chime_run_info_get_run_type (const ChimeRunInfo *info)
{
  return info->run_type;
}

const char *
chime_run_info_get_name (const ChimeRunInfo *info)
{
  return info->name;
}

const char * const *
chime_run_info_get_tags (const ChimeRunInfo *info)
{
  return (const char * const *) info->tags;
}

json_t *
chime_run_info_get_metadata (const ChimeRunInfo *info)
{
  return info->metadata;
}

gint64
chime_run_info_get_start_time (const ChimeRunInfo *info)
{
  return info->start_time;
}
