/* The events a fresh ring's slots start with, made in one block.
 *
 * Otherwise a ring's first lap makes an event per slot, each a
 * posix_memalign and, every 32 of them, a page fault: about 110 ns a
 * token, where a token on a warm ring costs 12-25. With four handlers
 * the slow lap is worse than its allocations: handlers catch up with the
 * emitter after every token, go idle and are woken again, and 20,000
 * tokens in a fresh process (row 2a of the benchmark) ran at 400 ns each
 * for their first 4,096 (docs/benchmarks.md, "The fifth round"). One
 * block, written when the dispatcher is made, costs one mapping and its
 * page faults there instead.
 *
 * An event of a slab is an event like any other while it is in its slot:
 * the token path renews it in place lap after lap, a handler may keep a
 * reference to it past its ring, and its last reference may be dropped
 * on any thread. But it is not recycled through the event caches once
 * it leaves its slot (chime_event_free): one such event left in a
 * thread's cache would keep its whole block, and a process that makes
 * runtime after runtime would keep a block for each.
 *
 * The block is aligned to its size, a power of two, so an event finds
 * the block's header by masking its own address with the order it
 * carries (ChimeEvent.slab_order), and the header counts what still uses
 * the block: the slab's own reference and every event not yet
 * released. */
#include "config.h"

#include "event-slab.h"
#include "event-cache.h"

#include <sys/mman.h>
#include <unistd.h>

/* A block of at most this many bytes (1 MiB: 8,191 events). Larger rings
 * make the rest of their first lap's events one by one. Only the part
 * used is written: the rest of the block's pages are never touched. */
#define SLAB_MAX_ORDER 20

struct _ChimeEventSlab {
  gint    live;      /* the slab's reference and its unreleased events */
  guint64 n_events;  /* they follow the header */
  gsize   size;      /* of the block, a power of two */
} __attribute__ ((aligned (CHIME_EVENT_ALIGN * 2)));

G_STATIC_ASSERT (sizeof (ChimeEventSlab) == sizeof (ChimeEvent));
G_STATIC_ASSERT ((1u << SLAB_MAX_ORDER) / sizeof (ChimeEvent) >= 2);

/* A block of @size bytes (a power of two, a multiple of the page size)
 * aligned to its size, straight from the kernel: the heap would take
 * twice the size for such an alignment, and keep the block's touched
 * pages when it is freed; unmapped, they go back whole. The pages are
 * zero, and touched only where written. */
static gpointer
block_map (gsize size)
{
  guint8 *start = mmap (NULL, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  guint8 *aligned;

  if (start == MAP_FAILED)
    g_error ("out of memory: could not map %" G_GSIZE_FORMAT " bytes for a ring's events", 2 * size);
  aligned = (guint8 *) (((guintptr) start + size - 1) & ~(guintptr) (size - 1));
  if (aligned > start)
    munmap (start, aligned - start);
  munmap (aligned + size, start + size - aligned);
  return aligned;
}

static void
slab_unref (ChimeEventSlab *slab)
{
  if (g_atomic_int_dec_and_test (&slab->live))
    munmap (slab, slab->size);
}

ChimeEventSlab *
chime_event_slab_new (guint64 n)
{
  guint order = MAX (12, g_bit_storage (sysconf (_SC_PAGESIZE)) - 1);
  ChimeEventSlab *slab;
  ChimeEvent *events;

  /* The header takes the room of one event. */
  while (order < SLAB_MAX_ORDER && ((guint64) 1 << order) < (n + 1) * sizeof (ChimeEvent))
    order++;
  n = MIN (n, ((guint64) 1 << order) / sizeof (ChimeEvent) - 1);
  /* Fresh pages are zero. */
  slab = block_map ((gsize) 1 << order);
  slab->size = (gsize) 1 << order;
  slab->live = (gint) n + 1;
  slab->n_events = n;
  events = (ChimeEvent *) (slab + 1);
  for (guint64 i = 0; i < n; i++)
    {
      events[i].ref_count = 1;
      events[i].type = CHIME_EVENT_LLM_NEW_TOKEN;
      events[i].slab_order = order;
      events[i].token = events[i].inline_text;
    }
  return slab;
}

guint64
chime_event_slab_get_size (ChimeEventSlab *slab)
{
  return slab->n_events;
}

ChimeEvent *
chime_event_slab_get_event (ChimeEventSlab *slab,
                            guint64         i)
{
  g_return_val_if_fail (i < slab->n_events, NULL);
  return (ChimeEvent *) (slab + 1) + i;
}

void
chime_event_slab_unref (ChimeEventSlab *slab)
{
  if (slab != NULL)
    slab_unref (slab);
}

void
chime_event_slab_release_event (ChimeEvent *event)
{
  guintptr block = (guintptr) event & ~(((guintptr) 1 << event->slab_order) - 1);

  slab_unref ((ChimeEventSlab *) block);
}
