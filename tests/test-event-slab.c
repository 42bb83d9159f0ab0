/* The events a fresh ring starts with (core/events/event-slab.c): made
 * blank in one block, made tokens of a run in place, never recycled once
 * they leave their slot, and the block unmapped only after the slab and
 * the last of its events. */
#include "test-helpers.h"

#include "events/event-cache.h"
#include "events/event-slab.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

/* Whether the page holding @address is mapped: msync(2) says ENOMEM for
 * an address with no mapping. */
static gboolean
is_mapped (gconstpointer address)
{
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  gpointer start = (gpointer) ((guintptr) address & ~(guintptr) (page - 1));

  return msync (start, page, MS_ASYNC) == 0 || errno != ENOMEM;
}

static void
empty_cache (void)
{
  ChimeEventCache *cache = chime_event_cache_get ();

  while (cache->n > 0)
    chime_event_release (cache->events[--cache->n]);
}

typedef struct {
  ChimeRuntime         *runtime;
  ChimeCallbackManager *manager;
  ChimeRun             *llm;
  ChimeRunInfo         *run;
} SlabFixture;

static int
slab_setup (void **state)
{
  SlabFixture *fixture = g_new0 (SlabFixture, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);

  fixture->runtime = test_runtime_new (&error, "[runtime]\ndelivery = awaited\n");
  assert_null (error);
  fixture->manager = chime_runtime_new_callback_manager (fixture->runtime);
  fixture->llm = chime_callback_manager_on_chat_model_start (fixture->manager, NULL, messages, "M",
                                                             NULL, &error);
  assert_non_null (fixture->llm);
  fixture->run = (ChimeRunInfo *) chime_run_get_info (fixture->llm);
  /* This thread's event cache is emptied: a full one keeps nothing, and
   * whether a freed event is kept is what some tests look at. */
  empty_cache ();
  *state = fixture;
  return 0;
}

static int
slab_teardown (void **state)
{
  SlabFixture *fixture = *state;

  g_clear_pointer (&fixture->llm, chime_run_unref);
  g_clear_pointer (&fixture->manager, chime_callback_manager_unref);
  g_clear_pointer (&fixture->runtime, chime_runtime_unref);
  g_free (fixture);
  return 0;
}

/* A ring of 16 gets 16 blank events, 128 bytes apart, each a token of no
 * run whose only reference is the ring's; the default ring of 4,096 gets
 * one for every slot; a ring larger than a block gets a block's worth. */
static void
test_a_slab_has_a_blank_event_per_slot (void **state)
{
  ChimeEventSlab *slab = chime_event_slab_new (16);

  assert_int_equal (chime_event_slab_get_size (slab), 16);
  for (guint64 i = 0; i < 16; i++)
    {
      ChimeEvent *event = chime_event_slab_get_event (slab, i);

      assert_int_equal (event->ref_count, 1);
      assert_int_equal (chime_event_get_event_type (event), CHIME_EVENT_LLM_NEW_TOKEN);
      assert_null (event->run);
      assert_null (event->payload);
      assert_string_equal (chime_event_get_token (event), "");
      if (i > 0)
        assert_int_equal ((guint8 *) event - (guint8 *) chime_event_slab_get_event (slab, i - 1),
                          sizeof (ChimeEvent));
      chime_event_unref (event);
    }
  chime_event_slab_unref (slab);

  slab = chime_event_slab_new (4096);
  assert_int_equal (chime_event_slab_get_size (slab), 4096);
  for (guint64 i = 0; i < 4096; i++)
    chime_event_unref (chime_event_slab_get_event (slab, i));
  chime_event_slab_unref (slab);

  slab = chime_event_slab_new (1 << 20);
  assert_int_equal (chime_event_slab_get_size (slab), 8191);
  for (guint64 i = 0; i < 8191; i++)
    chime_event_unref (chime_event_slab_get_event (slab, i));
  chime_event_slab_unref (slab);
}

/* The token path makes a blank event the token in place: its text (a long
 * one in an allocation of its own), its run (with a reference), a number
 * of the run and a stamp; and again for the next token. */
static void
test_a_blank_event_is_made_a_token_in_place (void **state)
{
  SlabFixture *fixture = *state;
  ChimeEventSlab *slab = chime_event_slab_new (16);
  ChimeEvent *blank = chime_event_slab_get_event (slab, 0);
  g_autofree char *long_token = g_strnfill (200, 'z');
  gint64 before = g_get_monotonic_time ();
  ChimeEvent *event = chime_event_remake_token (blank, fixture->run, "Why");
  guint64 first;

  assert_ptr_equal (event, blank);
  assert_string_equal (chime_event_get_token (event), "Why");
  assert_ptr_equal (chime_event_get_run (event), chime_run_get_info (fixture->llm));
  assert_true (chime_event_get_monotonic_time (event) >= before);
  first = chime_event_get_sequence (event);
  assert_true (first > 0);

  event = chime_event_remake_token (event, fixture->run, long_token);
  assert_ptr_equal (event, blank);
  assert_string_equal (chime_event_get_token (event), long_token);
  assert_true (chime_event_get_sequence (event) > first);
  chime_event_unref (event);
  for (guint64 i = 1; i < 16; i++)
    chime_event_unref (chime_event_slab_get_event (slab, i));
  chime_event_slab_unref (slab);
}

/* An event of a slab that leaves its slot is not kept for reuse: one in a
 * thread's event cache would keep its whole block mapped. */
static void
test_a_slab_event_is_not_recycled (void **state)
{
  SlabFixture *fixture = *state;
  ChimeEventSlab *slab = chime_event_slab_new (16);
  ChimeEventCache *cache = chime_event_cache_get ();

  /* An event of its own is kept, so the cache has room. */
  chime_event_unref (chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, fixture->run, "own"));
  assert_int_equal (cache->n, 1);
  for (guint64 i = 0; i < 16; i++)
    chime_event_unref (chime_event_remake_token (chime_event_slab_get_event (slab, i),
                                                 fixture->run, "x"));
  assert_int_equal (cache->n, 1);
  chime_event_slab_unref (slab);
}

/* The block stays mapped while an event of it is held, past the slab's
 * own reference (a handler keeps a token past its ring), and is unmapped
 * with the last. */
static void
test_the_block_goes_with_its_last_event (void **state)
{
  SlabFixture *fixture = *state;
  ChimeEventSlab *slab = chime_event_slab_new (16);
  ChimeEvent *kept = chime_event_remake_token (chime_event_slab_get_event (slab, 3),
                                               fixture->run, "kept");

  chime_event_ref (kept);
  for (guint64 i = 0; i < 16; i++)
    chime_event_unref (chime_event_slab_get_event (slab, i));
  chime_event_slab_unref (slab);
  assert_true (is_mapped (kept));
  assert_string_equal (chime_event_get_token (kept), "kept");
  chime_event_unref (kept);
  assert_false (is_mapped (kept));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_a_slab_has_a_blank_event_per_slot),
    cmocka_unit_test_setup_teardown (test_a_blank_event_is_made_a_token_in_place, slab_setup, slab_teardown),
    cmocka_unit_test_setup_teardown (test_a_slab_event_is_not_recycled, slab_setup, slab_teardown),
    cmocka_unit_test_setup_teardown (test_the_block_goes_with_its_last_event, slab_setup, slab_teardown),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
