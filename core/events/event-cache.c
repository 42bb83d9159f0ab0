/* The per-thread event cache (event-cache.h): free events, run
 * references and blocks of event numbers. */
#include "config.h"

#include "event-cache.h"
#include "event-slab.h"

/* Gives back @n references to @info at once. */
static void
run_info_drop_refs (ChimeRunInfo *info,
                    gint          n)
{
  if (n <= 0)
    return;
  if (n > 1)
    g_atomic_int_add (&info->ref_count, -(n - 1));
  chime_run_info_unref (info);
}

static void
cache_drop_run_refs (ChimeEventCache *cache)
{
  ChimeRunInfo *run = cache->run;
  gint n = cache->run_refs;

  cache->run = NULL;
  cache->run_refs = 0;
  if (run != NULL)
    run_info_drop_refs (run, n);
}

/* The thread's cache, without a call: GPrivate only frees it at thread
 * exit. */
__thread ChimeEventCache *chime_event_thread_cache __attribute__ ((tls_model ("initial-exec")));

/* An event on a line boundary. posix_memalign costs some 600
 * instructions an event, and a fresh ring's first lap makes one per slot
 * (row 2a of the benchmark, 20,000 tokens in a fresh process); aligning
 * by hand inside a plain g_malloc() block cost a third of that, but its
 * layout (events 208 bytes apart) made row 2c, four handlers on a full
 * ring, 40 -> 50-75 ns: the events' lines are what crosses between cores
 * (docs/benchmarks.md, "The fourth round"). */
ChimeEvent *
chime_event_alloc (void)
{
  ChimeEvent *event = g_aligned_alloc (1, sizeof (ChimeEvent), CHIME_EVENT_ALIGN);

  event->slab_order = 0;
  return event;
}

void
chime_event_release (ChimeEvent *event)
{
  if (event->slab_order != 0)
    chime_event_slab_release_event (event);
  else
    g_aligned_free (event);
}

static void
cache_free (gpointer data)
{
  ChimeEventCache *cache = data;

  if (chime_event_thread_cache == cache)
    chime_event_thread_cache = NULL;
  cache_drop_run_refs (cache);
  for (guint i = 0; i < cache->n; i++)
    chime_event_release (cache->events[i]);
  g_free (cache);
}

static GPrivate event_cache_key = G_PRIVATE_INIT (cache_free);

ChimeEventCache *
chime_event_cache_new_for_thread (void)
{
  ChimeEventCache *cache = g_new0 (ChimeEventCache, 1);

  g_private_set (&event_cache_key, cache);
  chime_event_thread_cache = cache;
  return cache;
}

/* A reference to @run for a new event, from the cache when it has one. */
ChimeRunInfo *
chime_event_cache_take_run (ChimeEventCache *cache,
                            ChimeRunInfo    *run)
{
  if (G_LIKELY (cache->run == run && cache->run_refs > 0))
    {
      cache->run_refs--;
      return run;
    }
  return chime_run_info_ref (run);
}

guint64
chime_event_cache_refill_sequence (ChimeEventCache *cache,
                                   ChimeRunInfo    *run,
                                   gboolean         same_run)
{
  if (same_run)
    cache->seq_block = MIN (cache->seq_block * 2, SEQUENCE_BLOCK_MAX);
  else
    {
      cache->seq_run = run->id;
      cache->seq_block = 1;
    }
  cache->seq_end = __atomic_add_fetch (&run->n_events, cache->seq_block, __ATOMIC_RELAXED) + 1;
  cache->seq_next = cache->seq_end - cache->seq_block;
  return cache->seq_next++;
}

/* Keeps the run reference of a freed event. */
void
chime_event_cache_give_run (ChimeEventCache *cache,
                            ChimeRunInfo    *run)
{
  /* A blank event of a slab has no run. */
  if (G_UNLIKELY (run == NULL))
    return;
  if (G_LIKELY (cache->run == run))
    {
      cache->run_refs++;
      return;
    }
  cache_drop_run_refs (cache);
  cache->run = run;
  cache->run_refs = 1;
}

void
chime_event_cache_drop_run (ChimeRunInfo *run)
{
  ChimeEventCache *cache = chime_event_thread_cache;

  if (cache != NULL && (run == NULL || cache->run == run))
    cache_drop_run_refs (cache);
}
