/* Building and tearing down a dispatcher: the ring, the pool, and a
 * consumer per queued handler on its route.
 *
 * The dispatcher's work is spread over one file per concern (see
 * dispatch-types.h for the list): ring.c is what emitters do, consumer.c
 * the consumer state machine, sync-route.c and async-route.c the two
 * routes events take to handlers, drop-policy.c the non-blocking on_full
 * policies, wait.c waiting. This file is the only one that names the
 * routes: it gives each consumer its ChimeRouteFuncs, through which the
 * state machine schedules it. See docs/architecture.md. */
#include "config.h"

#include "dispatcher.h"
#include "dispatch-types.h"
#include "async-route.h"
#include "barrier.h"
#include "drop-policy.h"
#include "sync-route.h"
#include "wait.h"

static guint64
next_power_of_two (guint64 value)
{
  guint64 power = 1;

  while (power < value)
    power <<= 1;
  return power;
}

static ChimeConsumer *
consumer_new (ChimeDispatcher *d,
              ChimeHandler    *handler)
{
  ChimeConsumer *consumer = g_aligned_alloc0 (1, sizeof (ChimeConsumer), CHIME_CACHE_LINE);

  consumer->dispatcher = d;
  consumer->handler = handler;
  consumer->bit = handler->bit;
  consumer->is_async = handler->descriptor->mode == CHIME_HANDLER_ASYNC;
  consumer->route = consumer->is_async ? &chime_async_route : &chime_sync_route;
  consumer->state = CONSUMER_IDLE;
  g_mutex_init (&consumer->lock);
  if (consumer->route->init != NULL)
    consumer->route->init (consumer);
  return consumer;
}

static void
consumer_free (ChimeConsumer *consumer)
{
  if (consumer->route->clear != NULL)
    consumer->route->clear (consumer);
  chime_drop_policy_clear (consumer);
  g_mutex_clear (&consumer->lock);
  g_aligned_free (consumer);
}

/* Gives the slots their first events, made in one block (event-slab.c):
 * otherwise the ring's first lap makes one per token. Only where tokens
 * are made in their slots (ring.c, publish_token): not under a drop
 * policy, which moves events out of slots, nor with awaited delivery,
 * whose tokens take the general path; and not without handlers, where no
 * event is made. */
static void
fill_ring (ChimeDispatcher *d,
           guint            n_handlers)
{
  if (d->drop != NULL || d->caller_runs || n_handlers == 0)
    return;
  d->slab = chime_event_slab_new (d->size);
  for (guint64 i = 0; i < chime_event_slab_get_size (d->slab); i++)
    d->ring[i].event = chime_event_slab_get_event (d->slab, i);
}

ChimeDispatcher *
chime_dispatcher_new (ChimeHandler                 **handlers,
                      guint                          n_handlers,
                      const ChimeDispatcherSettings *settings)
{
  ChimeDispatcher *d = g_aligned_alloc0 (1, sizeof (ChimeDispatcher), CHIME_CACHE_LINE);
  guint64 limit = MAX (settings->queue_limit, 16);

  chime_barrier_init ();
  d->size = next_power_of_two (chime_drop_policy_setup (d, settings->on_full, limit));
  d->mask = d->size - 1;
  /* Waiting emitters run sync handlers only where nothing is dropped. */
  d->caller_runs = settings->caller_runs && d->drop == NULL;
  d->ring = g_aligned_alloc0 (d->size, sizeof (ChimeSlot), CHIME_CACHE_LINE);
  d->main_context = g_main_context_ref (settings->main_context);
  g_mutex_init (&d->multi_lock);
  g_mutex_init (&d->wait_lock);
  g_cond_init (&d->wait_cond);
  g_mutex_init (&d->async_lock);
  d->abandoned = g_ptr_array_new_with_free_func ((GDestroyNotify) chime_completion_free);

  d->progress_source = chime_dispatcher_progress_source_new (d);
  g_source_attach (d->progress_source, d->main_context);

  fill_ring (d, n_handlers);
  d->pool = g_thread_pool_new (chime_sync_route_run, d, settings->threads, FALSE, NULL);
  d->consumers = g_new0 (ChimeConsumer *, n_handlers);
  for (guint i = 0; i < n_handlers; i++)
    {
      d->consumers[d->n_consumers++] = consumer_new (d, handlers[i]);
      if (d->consumers[i]->is_async)
        d->n_async++;
    }
  if (d->n_async > 0 && settings->loop_watchdog_ms > 0)
    d->watchdog = chime_loop_watchdog_new (&d->loop_mark, settings->loop_watchdog_ms);
  return d;
}

void
chime_dispatcher_free (ChimeDispatcher *d)
{
  if (d == NULL)
    return;
  chime_dispatcher_flush (d);
  chime_loop_watchdog_free (d->watchdog);
  /* Waits for running drain tasks; none is queued after a flush. */
  g_thread_pool_free (d->pool, FALSE, TRUE);
  for (guint i = 0; i < d->n_consumers; i++)
    consumer_free (d->consumers[i]);
  g_free (d->consumers);
  for (guint64 i = 0; i < d->size; i++)
    if (d->ring[i].event != NULL)
      chime_event_unref (d->ring[i].event);
  /* Those events' run references went to this thread's event cache. */
  chime_event_cache_drop_run (NULL);
  chime_event_slab_unref (d->slab);
  g_aligned_free (d->ring);
  g_source_destroy (d->progress_source);
  g_source_unref (d->progress_source);
  g_list_free_full (d->async_waits, g_free);
  g_ptr_array_free (d->abandoned, TRUE);
  g_main_context_unref (d->main_context);
  g_mutex_clear (&d->multi_lock);
  g_mutex_clear (&d->wait_lock);
  g_cond_clear (&d->wait_cond);
  g_mutex_clear (&d->async_lock);
  g_aligned_free (d);
}
