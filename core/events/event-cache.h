/* The per-thread event cache: what lets the token path go without malloc,
 * a run reference or a locked add per event (event-cache.c). */
#pragma once

#include "event-private.h"
#include "event-clock.h"

#include <string.h>

/* A per-thread stack of free events. In a pipeline the emitting thread
 * both creates events and frees them (when it reuses their ring slot), so
 * recycling them here keeps the token path away from malloc.
 *
 * The cache also keeps references to one run: an event freed here gives
 * its run reference to the cache instead of dropping it, and the next
 * event of that run created here takes it back. In the steady state of a
 * stream the emitter frees an event of the run for every one it creates,
 * so the run's counter is not touched per event: a locked increment and
 * decrement there cost the ring more than the rest of an emit together
 * (docs/benchmarks.md). The references are returned when the thread
 * moves to another run, when the run is finished on this thread
 * (chime_event_cache_drop_run) and when the thread exits. */
#define EVENT_CACHE_SIZE 256

/* Event numbers (chime_event_get_sequence) are taken from the run's
 * counter in blocks, for the same reason: a locked add per event on the
 * emitter cost row 1 of the benchmark 20 ns of its 85. A thread's first
 * event of a run takes one number, and each refill while the thread stays
 * on that run takes twice as many, up to SEQUENCE_BLOCK_MAX, so a short
 * run numbers its events 1, 2, 3 ... and a stream pays one add per 64
 * tokens. Numbers left in a block when the thread moves to another run
 * are skipped. The block is keyed by the run's id, not its address: a
 * run freed and another made at the same address must not use it. */
#define SEQUENCE_BLOCK_MAX 64

typedef struct {
  guint         n;
  ChimeRunInfo *run;        /* NULL, or the run the cache holds references of */
  gint          run_refs;
  ChimeRunId    seq_run;    /* the run whose numbers seq_next..seq_end are */
  guint64       seq_next;
  guint64       seq_end;    /* seq_next == seq_end: none left */
  guint64       seq_block;  /* the size of the last block taken */
  ChimeEvent   *events[EVENT_CACHE_SIZE];
} ChimeEventCache;

extern __thread ChimeEventCache *chime_event_thread_cache __attribute__ ((tls_model ("initial-exec")));

/* Makes this thread's cache (freed when the thread exits). */
ChimeEventCache *chime_event_cache_new_for_thread (void);

/* This thread's cache, without a call once it exists. */
static inline ChimeEventCache *
chime_event_cache_get (void)
{
  ChimeEventCache *cache = chime_event_thread_cache;

  if (G_UNLIKELY (cache == NULL))
    cache = chime_event_cache_new_for_thread ();
  return cache;
}

/* An uninitialised event on a line boundary, and its release. */
ChimeEvent   *chime_event_alloc                 (void);
void          chime_event_release               (ChimeEvent      *event);

/* A reference to @run for a new event, from the cache when it has one;
 * and the cache keeping a freed event's reference to @run. */
ChimeRunInfo *chime_event_cache_take_run        (ChimeEventCache *cache,
                                                 ChimeRunInfo    *run);
void          chime_event_cache_give_run        (ChimeEventCache *cache,
                                                 ChimeRunInfo    *run);

/* chime_event_cache_take_sequence when the block is used up or of another
 * run. */
guint64       chime_event_cache_refill_sequence (ChimeEventCache *cache,
                                                 ChimeRunInfo    *run,
                                                 gboolean         same_run);

/* The next number of an event of @run made on this thread. Inline: once
 * per token. */
static inline guint64
chime_event_cache_take_sequence (ChimeEventCache *cache,
                                 ChimeRunInfo    *run)
{
  gboolean same_run = memcmp (&cache->seq_run, &run->id, sizeof run->id) == 0;

  if (G_LIKELY (same_run && cache->seq_next < cache->seq_end))
    return cache->seq_next++;
  return chime_event_cache_refill_sequence (cache, run, same_run);
}

/* Makes @old, the ring's event in the slot a token of @run goes to, that
 * token, in place, when it can be: the ring's alone, a token of @run,
 * and @token (NUL-terminated) short enough for its inline text. The
 * stream's events then stay where the ring is, each written once a lap,
 * and a token costs no trip through the cache, no run reference and no
 * free. FALSE otherwise (the caller releases @old and makes a new event;
 * a prefix of its text may have been overwritten). Always inline: the
 * stream's token path, whole; ring.c has two callers, and GCC made it a
 * call of its own (about 28 instructions more per token). */
static inline __attribute__ ((always_inline)) gboolean
chime_event_renew_token_in_place (ChimeEvent   *old,
                                  ChimeRunInfo *run,
                                  const char   *token)
{
  gsize i = 0;

  /* Acquire: as chime_event_unref_from_ring. */
  if (old == NULL || __atomic_load_n (&old->ref_count, __ATOMIC_ACQUIRE) != 1 ||
      old->run != run || old->payload != NULL || old->token != old->inline_text)
    return FALSE;
  while (i < sizeof old->inline_text && (old->inline_text[i] = token[i]) != '\0')
    i++;
  if (G_UNLIKELY (i == sizeof old->inline_text))
    return FALSE;
  /* A handler may have had the chunk built (chime_event_get_chunk). */
  if (G_UNLIKELY (old->chunk != NULL))
    {
      json_decref (old->chunk);
      old->chunk = NULL;
    }
  old->inline_done = FALSE;
  old->monotonic_time = chime_event_clock_now ();
  old->sequence = chime_event_cache_take_sequence (chime_event_cache_get (), run);
  return TRUE;
}

/* What the token path does when chime_event_renew_token_in_place cannot:
 * makes @old, the ring's event in the slot (may be NULL), a token of
 * @run all the same when the ring holds its only reference and it is a
 * token (a blank one of a slab, one of another run, one whose text did
 * not fit), and otherwise releases it and returns a new event. Either way
 * the result is the token, with the ring's reference. */
ChimeEvent   *chime_event_remake_token          (ChimeEvent      *old,
                                                 ChimeRunInfo    *run,
                                                 const char      *token);
