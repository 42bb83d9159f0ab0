/* The jetstream plugin and `chime consume` against a real nats-server
 * (tests/nats-helpers.c: -js, a free loopback port, a store in the test's
 * folder), as a user runs them: the installed chime, its shipped plugins.
 *
 * What a consumer hands its handlers is what the runner's handlers got,
 * byte for byte; three runners and a consumer group of two, one member
 * SIGKILLed mid-run, lose nothing, tear no line, and a dedupe file has
 * each event once; a run's events share few messages (batch_max = 1: one
 * each), counted in the stream itself; a server restarted mid-publish
 * costs no event and adds no duplicate, batched or not; a message that is
 * not whole is terminated with a clear error; a server that cannot be
 * reached is a clear error at start and, mid-run, events counted lost
 * within the timeouts, never a hang.
 * Without nats-server every test is skipped, saying why. */
#include "nats-client.h"
#include "nats-helpers.h"
#include "runner-helpers.h"

#include <signal.h>
#include <string.h>

#define N_TOKENS 2000
/* chain_start ×2, chain_end (prompt), chat_model_start, the tokens,
 * llm_end, chain_start/chain_end (parser), chain_end (root): what the
 * fake model's run emits around its tokens. */
#define N_EVENTS (N_TOKENS + 8)

static gboolean
skip_without_server (void)
{
  const char *why = nats_server_missing ();

  if (why == NULL)
    return FALSE;
  print_message ("skipped: %s\n", why);
  skip ();
  return TRUE;
}

/* A run of the fake model streaming N_TOKENS one-character tokens, with
 * a jetstream handler (@bus_keys added) and a jsonl handler of its own. */
static char *
publisher_config (const char *dir,
                  const char *name,
                  const char *url,
                  const char *model_keys,
                  const char *bus_keys,
                  const char *local_keys)
{
  g_autofree char *response = g_strnfill (N_TOKENS, 'a');
  g_autofree char *text = g_strdup_printf (
    "[pipeline]\nprompt = hi\nmodel = m\n\n"
    "[model m]\nprovider = fake\nresponse = %s\nchunking = char\n%s\n\n"
    "[handler bus]\nplugin = jetstream\nurl = %s\ncreate_stream = true\n%s\n\n"
    "[handler local]\nplugin = jsonl\npath = %s.jsonl\n%s\n",
    response, model_keys, url, bus_keys, name, local_keys);
  g_autofree char *file = g_strconcat (name, ".ini", NULL);

  return write_in (dir, file, text);
}

/* A `chime consume` file: group @durable, batches of 20 unless @keys (of
 * [consume]) say otherwise, @handlers after [consume]. */
static char *
consumer_config_with (const char *dir,
                      const char *name,
                      const char *url,
                      const char *durable,
                      const char *keys,
                      const char *handlers)
{
  g_autofree char *text = g_strdup_printf ("[consume]\nurl = %s\ndurable = %s\nack_wait_ms = 1000\n"
                                           "fetch_wait_ms = 100\n%s\n\n%s",
                                           url, durable, keys, handlers);
  g_autofree char *file = g_strconcat (name, ".ini", NULL);

  return write_in (dir, file, text);
}

static char *
consumer_config (const char *dir,
                 const char *name,
                 const char *url,
                 const char *durable,
                 const char *handlers)
{
  return consumer_config_with (dir, name, url, durable, "batch = 20", handlers);
}

static guint
count_lines (const char *path)
{
  g_autofree char *text = NULL;
  guint n = 0;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  for (const char *p = text; *p != '\0'; p++)
    n += *p == '\n';
  return n;
}

/* Waits until @path has @n lines (at least); fails after @timeout_s. */
static void
wait_for_lines (const char *path,
                guint       n,
                guint       timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;

  while (count_lines (path) < n)
    {
      if (g_get_monotonic_time () > deadline)
        fail_msg ("%s has %u lines after %u s, not %u", path, count_lines (path), timeout_s, n);
      g_usleep (20 * 1000);
    }
}

/* Waits for @process to end within @timeout_s; its exit status (128+N
 * when killed by signal N). GLib reaps it on its worker thread, which
 * clears its identifier. */
static int
wait_exit (GSubprocess *process,
           guint        timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;

  while (g_subprocess_get_identifier (process) != NULL)
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_subprocess_force_exit (process);
          g_subprocess_wait (process, NULL, NULL);
          fail_msg ("chime did not end within %u s", timeout_s);
        }
      g_usleep (10 * 1000);
    }
  g_subprocess_wait (process, NULL, NULL);
  return g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process)
                                               : 128 + g_subprocess_get_term_sig (process);
}

/* The "event_id" of every line of @path, counted (id -> times); every
 * line must be a whole JSON object. */
static GHashTable *
read_ids (const char *path)
{
  g_autofree char *text = read_text (path);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GHashTable *ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      g_autoptr (json_t) line = json_loads (lines[i], 0, NULL);
      const char *id = json_string_value (json_object_get (line, "event_id"));

      if (line == NULL || id == NULL)
        fail_msg ("line %u of %s is not a whole event with an id: %.200s", i + 1, path, lines[i]);
      g_hash_table_insert (ids, g_strdup (id),
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (ids, id)) + 1));
    }
  return ids;
}

/* Every id of @expected is in @ids (or in @also, when not NULL). */
static void
assert_has_ids (GHashTable *ids,
                GHashTable *also,
                GHashTable *expected)
{
  GHashTableIter iter;
  gpointer id;

  g_hash_table_iter_init (&iter, expected);
  while (g_hash_table_iter_next (&iter, &id, NULL))
    if (!g_hash_table_contains (ids, id) && (also == NULL || !g_hash_table_contains (also, id)))
      fail_msg ("event %s was not handled", (const char *) id);
}

static void
assert_published (const char *err,
                  guint       n_events)
{
  g_autofree char *report = g_strdup_printf ("bus (jetstream): %u events published to stream CHIME_EVENTS, %u acked",
                                             n_events, n_events);

  assert_string_contains (err, report);
  assert_string_contains (err, ", 0 lost");
}

/* A fresh folder @name (*@out_dir) with a server (*@out_server), and the
 * publisher's run (@bus_keys) into it, exit 0 with every event acked. */
static RunResult *
published_run (const char  *name,
               const char  *bus_keys,
               char       **out_dir,
               NatsServer **out_server)
{
  g_autofree char *publisher = NULL;
  RunResult *result;

  *out_dir = fresh_dir (name);
  *out_server = nats_server_start (*out_dir);
  publisher = publisher_config (*out_dir, "runner", (*out_server)->url, "", bus_keys, "");
  result = run_chime_in (*out_dir, "run", publisher, NULL);
  assert_status (result, 0);
  assert_published (result->err, N_EVENTS);
  return result;
}

/* ------------------------------------------------------------------ */

static void
test_consumer_hands_its_handlers_the_runners_events (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autofree char *consumer = NULL, *consumed = NULL, *local = NULL, *err_path = NULL;
  g_autofree char *local_text = NULL, *consumed_text = NULL, *err = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (RunResult) result = NULL;

  if (skip_without_server ())
    return;
  result = published_run ("jetstream-same", "", &dir, &server);

  consumer = consumer_config (dir, "consumer", server->url, "audit",
                              "[handler out]\nplugin = jsonl\npath = consumed.jsonl\n");
  consumed = g_build_filename (dir, "consumed.jsonl", NULL);
  err_path = g_build_filename (dir, "consumer.err", NULL);
  process = start_chime (dir, (const char *[]) { "consume", consumer, NULL }, err_path);
  wait_for_lines (consumed, N_EVENTS, 30);
  /* SIGTERM: stop fetching, ack what is in hand, exit 0. */
  g_subprocess_send_signal (process, SIGTERM);
  assert_int_equal (wait_exit (process, 20), 0);
  err = read_text (err_path);
  assert_string_contains (err, "consume: 2008 events handled, 2008 acked, 0 nak'ed");

  /* The same events, in the same order, to the microsecond. */
  local = g_build_filename (dir, "runner.jsonl", NULL);
  local_text = read_text (local);
  consumed_text = read_text (consumed);
  assert_string_equal (consumed_text, local_text);
}

static void
test_group_member_killed_loses_nothing (void **state)
{
  const char *const members[] = { "a", "b" };
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  GSubprocess *consumers[2] = { NULL, NULL }, *runners[3] = { NULL, NULL, NULL };
  g_autoptr (GHashTable) expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) shared_ids = NULL;
  g_autofree char *shared = NULL, *a_file = NULL, *check_config = NULL;
  g_autoptr (RunResult) checked = NULL;

  if (skip_without_server ())
    return;
  dir = fresh_dir ("jetstream-group");
  server = nats_server_start (dir);
  /* `chime check` starts the handler, which creates the stream. */
  check_config = publisher_config (dir, "runner-0", server->url, "", "", "dedupe = true");
  checked = run_chime_in (dir, "check", check_config, NULL);
  assert_status (checked, 0);

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *handlers = g_strdup_printf (
        "[handler mine]\nplugin = jsonl\npath = %s.jsonl\nappend = true\ndedupe = true\n\n"
        "[handler shared]\nplugin = jsonl\npath = shared.jsonl\nappend = true\ndedupe = true\n", members[i]);
      g_autofree char *config = consumer_config (dir, members[i], server->url, "group", handlers);
      g_autofree char *err_path = g_strdup_printf ("%s/%s.err", dir, members[i]);

      consumers[i] = start_chime (dir, (const char *[]) { "consume", config, "--idle-exit-ms", "5000", NULL },
                                  err_path);
    }
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *name = g_strdup_printf ("runner-%u", i);
      g_autofree char *config = publisher_config (dir, name, server->url, "", "", "dedupe = true");
      g_autofree char *err_path = g_strdup_printf ("%s/%s.err", dir, name);

      runners[i] = start_chime (dir, (const char *[]) { "run", config, NULL }, err_path);
    }
  /* Member a dies mid-run, its last batch not acked. */
  a_file = g_build_filename (dir, "a.jsonl", NULL);
  wait_for_lines (a_file, 200, 30);
  g_subprocess_send_signal (consumers[0], SIGKILL);
  assert_int_equal (wait_exit (consumers[0], 10), 128 + SIGKILL);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *err_path = g_strdup_printf ("%s/runner-%u.err", dir, i);
      g_autofree char *err = NULL;
      g_autofree char *local = g_strdup_printf ("%s/runner-%u.jsonl", dir, i);
      g_autoptr (GHashTable) ids = NULL;
      GHashTableIter iter;
      gpointer id;

      assert_int_equal (wait_exit (runners[i], 60), 0);
      err = read_text (err_path);
      assert_published (err, N_EVENTS);
      ids = read_ids (local);
      assert_int_equal (g_hash_table_size (ids), N_EVENTS);
      g_hash_table_iter_init (&iter, ids);
      while (g_hash_table_iter_next (&iter, &id, NULL))
        g_hash_table_add (expected, g_strdup (id));
      g_object_unref (runners[i]);
    }
  /* b drains, a's un-acked messages included (after ack_wait_ms), and
   * leaves after 5 s without a message. */
  assert_int_equal (wait_exit (consumers[1], 90), 0);

  /* At least once across the members' files, every line whole... */
  {
    g_autoptr (GHashTable) a_ids = read_ids (a_file);
    g_autofree char *b_file = g_build_filename (dir, "b.jsonl", NULL);
    g_autoptr (GHashTable) b_ids = read_ids (b_file);

    assert_has_ids (a_ids, b_ids, expected);
  }
  /* ... and exactly once in the file they share with dedupe. */
  shared = g_build_filename (dir, "shared.jsonl", NULL);
  shared_ids = read_ids (shared);
  assert_int_equal (count_lines (shared), 3 * N_EVENTS);
  assert_int_equal (g_hash_table_size (shared_ids), 3 * N_EVENTS);
  assert_has_ids (shared_ids, NULL, expected);
  g_object_unref (consumers[0]);
  g_object_unref (consumers[1]);
}

/* A run of ~3 s of tokens (with @bus_keys) whose server is SIGKILLed and
 * restarted mid-publish: the runner reconnects, loses nothing, and the
 * stream has every event once (a re-published copy was dropped by the
 * server's window); how many messages the stream holds. */
static guint64
restart_mid_publish (const char *name,
                     const char *bus_keys)
{
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autofree char *publisher = NULL, *consumer = NULL, *err_path = NULL, *err = NULL, *keys = NULL;
  g_autofree char *local = NULL, *consumed = NULL, *consumer_err = NULL;
  g_autoptr (GSubprocess) runner = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GHashTable) local_ids = NULL;
  g_autoptr (GHashTable) consumed_ids = NULL;

  dir = fresh_dir (name);
  server = nats_server_start (dir);
  /* An attempt's ack is awaited 500 ms. */
  keys = g_strdup_printf ("ack_timeout_ms = 500\n%s", bus_keys);
  publisher = publisher_config (dir, "runner", server->url, "chunk_delay_ms = 1", keys, "dedupe = true");
  local = g_build_filename (dir, "runner.jsonl", NULL);
  err_path = g_build_filename (dir, "runner.err", NULL);
  runner = start_chime (dir, (const char *[]) { "run", publisher, NULL }, err_path);
  wait_for_lines (local, 300, 30);
  nats_server_restart (server);
  assert_int_equal (wait_exit (runner, 60), 0);
  err = read_text (err_path);
  assert_published (err, N_EVENTS);
  assert_string_contains (err, "reconnected to NATS");

  /* The stream has every event once: a re-published copy was dropped. */
  consumer = consumer_config (dir, "consumer", server->url, "after-restart",
                              "[handler out]\nplugin = jsonl\npath = consumed.jsonl\ndedupe = true\n");
  consumed = g_build_filename (dir, "consumed.jsonl", NULL);
  consumer_err = g_build_filename (dir, "consumer.err", NULL);
  process = start_chime (dir, (const char *[]) { "consume", consumer, "--idle-exit-ms", "1500", NULL },
                         consumer_err);
  assert_int_equal (wait_exit (process, 60), 0);
  g_free (err);
  err = read_text (consumer_err);
  assert_string_contains (err, "consume: 2008 events handled, 2008 acked");
  assert_null (strstr (err, "duplicate events skipped"));
  local_ids = read_ids (local);
  consumed_ids = read_ids (consumed);
  assert_int_equal (g_hash_table_size (consumed_ids), N_EVENTS);
  assert_has_ids (consumed_ids, NULL, local_ids);
  return nats_stream_message_count (server->url, "CHIME_EVENTS");
}

static void
test_server_restarted_mid_publish_loses_nothing (void **state)
{
  if (skip_without_server ())
    return;
  /* A token a millisecond, each sent as soon as the loop is idle: nearly
   * a message per event. */
  restart_mid_publish ("jetstream-restart", "");
}

/* The same with events gathered for 20 ms: a re-published message is a
 * batch, which the server's window drops whole. */
static void
test_server_restarted_mid_publish_loses_no_batched_event (void **state)
{
  guint64 messages;

  if (skip_without_server ())
    return;
  messages = restart_mid_publish ("jetstream-restart-batched", "linger_ms = 20");
  assert_true (messages * 4 < N_EVENTS);
}

static void
test_unreachable_server_is_a_clear_error_at_start (void **state)
{
  g_autofree char *dir = NULL;
  g_autofree char *url = NULL, *publisher = NULL, *consumer = NULL, *expected = NULL, *no_stream = NULL;
  g_autofree char *no_stream_text = NULL;
  g_autoptr (RunResult) run = NULL;
  g_autoptr (RunResult) check = NULL;
  g_autoptr (RunResult) consume = NULL;
  g_autoptr (RunResult) missing = NULL;
  g_autoptr (NatsServer) server = NULL;

  if (skip_without_server ())
    return;
  dir = fresh_dir ("jetstream-unreachable");
  url = g_strdup_printf ("nats://127.0.0.1:%u", nats_free_port ());
  expected = g_strdup_printf ("cannot connect to NATS at %s: No server available for connection "
                              "(is nats-server running with -js?", url);
  publisher = publisher_config (dir, "runner", url, "", "", "");
  run = run_chime_in (dir, "run", publisher, NULL);
  assert_status (run, 3);
  assert_string_contains (run->err, "handler 'bus' (plugin 'jetstream'");
  assert_string_contains (run->err, expected);
  check = run_chime_in (dir, "check", publisher, NULL);
  assert_status (check, 3);
  assert_string_contains (check->err, expected);
  consumer = consumer_config (dir, "consumer", url, "g", "[handler out]\nplugin = jsonl\npath = out.jsonl\n");
  consume = run_chime_in (dir, "consume", consumer, NULL);
  assert_status (consume, 1);
  assert_string_contains (consume->err, "[consume] of consumer.ini: cannot connect to NATS at");

  /* A server without the stream, and no create_stream. */
  server = nats_server_start (dir);
  no_stream_text = g_strdup_printf ("[handler bus]\nplugin = jetstream\nurl = %s\nstream = ORDERS\n", server->url);
  no_stream = write_in (dir, "no-stream.ini", no_stream_text);
  missing = run_chime_in (dir, "check", no_stream, NULL);
  assert_status (missing, 3);
  assert_string_contains (missing->err, "the NATS server has no stream ORDERS: create it (docs/scale-out.md) "
                                        "or set create_stream = true");
}

/* libnats is the consume module's: a run never loads it (nor the module),
 * `chime consume` does, when it starts. No server is needed: the consumer
 * fails to connect, after loading them. */
static void
test_only_consume_loads_libnats (void **state)
{
  g_autofree char *dir = fresh_dir ("jetstream-lazy");
  g_autofree char *url = g_strdup_printf ("nats://127.0.0.1:%u", nats_free_port ());
  g_autofree char *fake = write_in (dir, "fake.ini", "[pipeline]\nprompt = hi\nmodel = m\n"
                                                     "[model m]\nprovider = fake\nchunks = [\"a\"]\n");
  g_autofree char *consumer = consumer_config (dir, "consumer", url, "g", "");
  const char *env[] = { "LD_DEBUG=files", NULL };
  const char *run_args[] = { "run", fake, NULL };
  const char *consume_args[] = { "consume", consumer, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) run = run_chime_argv (&options, run_args);
  g_autoptr (RunResult) consume = run_chime_argv (&options, consume_args);

  assert_status (run, 0);
  assert_false (run_opened (run, "libnats"));
  assert_false (run_opened (run, "libprotobuf-c"));
  assert_false (run_opened (run, "chime-consume"));
  assert_status (consume, 1);
  assert_string_contains (consume->err, "/chime/chime-consume.so [0];  dynamically loaded by");
  assert_true (run_opened (consume, "libnats"));
  assert_string_contains (consume->err, "[consume] of consumer.ini: cannot connect to NATS at");
}

/* Without its module, `chime consume` says so and how to fix it (exit 1);
 * the other commands do not need it. */
static void
test_consume_module_missing (void **state)
{
  g_autofree char *dir = fresh_dir ("jetstream-no-module");
  g_autofree char *consumer = consumer_config (dir, "consumer", "nats://127.0.0.1:1", "g", "");
  g_autofree char *module = g_build_filename (dir, "nowhere", "chime-consume.so", NULL);
  g_autofree char *module_setting = g_strdup_printf ("CHIME_CONSUME_MODULE=%s", module);
  const char *env[] = { module_setting, NULL };
  const char *consume_args[] = { "consume", consumer, NULL };
  const char *check_args[] = { "check", consumer, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) consume = run_chime_argv (&options, consume_args);
  g_autoptr (RunResult) check = run_chime_argv (&options, check_args);

  assert_status (consume, 1);
  assert_string_contains (consume->err, "chime: consume is not available: its module did not load (");
  assert_string_contains (consume->err, module);
  assert_string_contains (consume->err, "install chime completely, or set CHIME_CONSUME_MODULE to the "
                                        "path of chime-consume.so");
  assert_status (check, 0);
}

static void
test_server_gone_mid_run_counts_lost_events_without_hanging (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autofree char *publisher = NULL, *local = NULL, *err_path = NULL, *err = NULL;
  g_autoptr (GSubprocess) runner = NULL;
  gint64 killed_at;

  if (skip_without_server ())
    return;
  dir = fresh_dir ("jetstream-gone");
  server = nats_server_start (dir);
  publisher = publisher_config (dir, "runner", server->url, "chunk_delay_ms = 1",
                                "max_pending = 100\nack_timeout_ms = 300\npublish_timeout_ms = 1000\n"
                                "flush_timeout_ms = 1000", "");
  local = g_build_filename (dir, "runner.jsonl", NULL);
  err_path = g_build_filename (dir, "runner.err", NULL);
  runner = start_chime (dir, (const char *[]) { "run", publisher, NULL }, err_path);
  wait_for_lines (local, 300, 30);
  nats_server_kill (server);
  killed_at = g_get_monotonic_time ();
  /* The run's answer is complete, but events were not stored: status 4. */
  assert_int_equal (wait_exit (runner, 30), 4);
  /* Within the timeouts: the run's tokens (~3 s) plus publish and flush. */
  assert_true (g_get_monotonic_time () - killed_at < 15 * G_USEC_PER_SEC);
  err = read_text (err_path);
  assert_string_contains (err, "disconnected from NATS, reconnecting");
  assert_string_contains (err, "events were not stored in stream CHIME_EVENTS");
  assert_null (strstr (err, ", 0 lost"));
  /* Every event reached the runner's other handler all the same. */
  assert_int_equal (count_lines (local), N_EVENTS);
}

/* `chime consume` of @config (counter from the test plugins) in @dir until
 * it has been idle 1.5 s; its stderr. */
static char *
consume_until_idle (const char *dir,
                    const char *config)
{
  const char *env[] = { "CHIME_PLUGIN_PATH=" TEST_PLUGIN_DIR, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) result = run_chime_argv (&options, (const char *[]) { "consume", config, "--idle-exit-ms",
                                                                              "1500", NULL });

  assert_status (result, 0);
  return g_strdup (result->err);
}

/* A handler that fails on an event: its message is nak'ed and handled
 * again after nak_delay_ms, or terminated once delivered max_deliver
 * times; both counted. batch = 1 names the failed event exactly. */
static void
test_handler_failure_naks_then_terminates (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autofree char *retrying = NULL, *giving_up = NULL;
  g_autofree char *retried = NULL, *terminated = NULL;
  g_autoptr (RunResult) result = NULL;
  const char *failing = "[handler count]\nplugin = counter\nfail_at = 5\n";

  if (skip_without_server ())
    return;
  /* A message per event, so that the nak'ed message is the one event. */
  result = published_run ("jetstream-failure", "batch_max = 1", &dir, &server);

  retrying = consumer_config_with (dir, "retrying", server->url, "retrying",
                                   "batch = 1\nmax_deliver = 3\nnak_delay_ms = 100", failing);
  retried = consume_until_idle (dir, retrying);
  assert_string_contains (retried, "handler 'count' (counter) failed");
  assert_string_contains (retried, "consume: 2009 events handled, 2008 acked, 1 nak'ed, 0 terminated");

  giving_up = consumer_config_with (dir, "giving-up", server->url, "giving-up",
                                    "batch = 1\nmax_deliver = 1", failing);
  terminated = consume_until_idle (dir, giving_up);
  assert_string_contains (terminated, "consume: 2008 events handled, 2007 acked, 0 nak'ed, 1 terminated");
}

/* With the default batching a 2,000-token run is a few messages in the
 * stream (counted there), and a consumer hands its handlers every event,
 * in order, as the runner's own handler got them. */
static void
test_default_batching_sends_far_fewer_messages_than_events (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autofree char *consumer = NULL, *local_text = NULL, *consumed_text = NULL;
  g_autofree char *local = NULL, *consumed = NULL, *report = NULL;
  g_autoptr (RunResult) run = NULL;
  g_autoptr (RunResult) consume = NULL;
  guint64 messages;

  if (skip_without_server ())
    return;
  run = published_run ("jetstream-batched", "", &dir, &server);
  messages = nats_stream_message_count (server->url, "CHIME_EVENTS");
  /* 2,000 tokens are at least 8 messages of batch_max (256) events. */
  assert_true (messages >= 8);
  assert_true (messages * 20 < N_EVENTS);
  report = g_strdup_printf ("; %" G_GUINT64_FORMAT " messages", messages);
  assert_string_contains (run->err, report);

  consumer = consumer_config (dir, "consumer", server->url, "batched",
                              "[handler out]\nplugin = jsonl\npath = consumed.jsonl\n");
  consume = run_chime_in (dir, "consume", consumer, "--idle-exit-ms", "1000", NULL);
  assert_status (consume, 0);
  g_free (report);
  report = g_strdup_printf ("consume: 2008 events handled, 2008 acked, 0 nak'ed, 0 terminated after max_deliver; %"
                            G_GUINT64_FORMAT " messages, 0 not whole", messages);
  assert_string_contains (consume->err, report);
  local = g_build_filename (dir, "runner.jsonl", NULL);
  consumed = g_build_filename (dir, "consumed.jsonl", NULL);
  local_text = read_text (local);
  consumed_text = read_text (consumed);
  assert_string_equal (consumed_text, local_text);
}

/* batch_max = 1: a message per event, as before batching. */
static void
test_batch_max_1_sends_a_message_per_event (void **state)
{
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autoptr (RunResult) run = NULL;

  if (skip_without_server ())
    return;
  run = published_run ("jetstream-unbatched", "batch_max = 1", &dir, &server);
  assert_string_contains (run->err, "; 2008 messages");
  assert_int_equal (nats_stream_message_count (server->url, "CHIME_EVENTS"), N_EVENTS);
}

/* Messages that are not whole: terminated at once (never redelivered),
 * each named by its stream sequence with what is wrong, and counted. */
static void
test_message_not_whole_is_terminated_with_a_clear_error (void **state)
{
  /* Counted before any line is read: what the lines are does not matter. */
  const char *event = "{\"type\":\"text\"}";
  g_autofree char *dir = NULL;
  g_autoptr (NatsServer) server = NULL;
  g_autofree char *publisher = NULL, *consumer = NULL, *torn = NULL, *short_body = NULL;
  g_autofree char *torn_error = NULL, *short_error = NULL, *bad_count_error = NULL;
  g_autoptr (RunResult) check = NULL;
  g_autoptr (RunResult) consume = NULL;
  guint64 torn_at, short_at, bad_count_at;

  if (skip_without_server ())
    return;
  dir = fresh_dir ("jetstream-not-whole");
  server = nats_server_start (dir);
  /* `chime check` starts the handler, which creates the stream. */
  publisher = publisher_config (dir, "runner", server->url, "", "", "");
  check = run_chime_in (dir, "check", publisher, NULL);
  assert_status (check, 0);
  torn = g_strdup ("{\"type\":\"te\n{\"type\":\"text\"}");
  short_body = g_strdup_printf ("%s\n%s", event, event);
  torn_at = nats_publish_raw (server->url, "chime.events.r.text", "Chime-Count", "2", torn);
  short_at = nats_publish_raw (server->url, "chime.events.r.text", "Chime-Count", "3", short_body);
  bad_count_at = nats_publish_raw (server->url, "chime.events.r.text", "Chime-Count", "many", event);

  /* ack_wait_ms is 1 s: a message left un-acked would come back. */
  consumer = consumer_config (dir, "consumer", server->url, "strict",
                              "[handler out]\nplugin = jsonl\npath = out.jsonl\n");
  consume = run_chime_in (dir, "consume", consumer, "--idle-exit-ms", "2000", NULL);
  assert_status (consume, 0);
  torn_error = g_strdup_printf ("consume: message %" G_GUINT64_FORMAT " of stream CHIME_EVENTS (subject "
                                "chime.events.r.text) is not whole: line 1 of 2 is not a chime event: not JSON (",
                                torn_at);
  short_error = g_strdup_printf ("consume: message %" G_GUINT64_FORMAT " of stream CHIME_EVENTS (subject "
                                 "chime.events.r.text) is not whole: it has 2 events, not the 3 its Chime-Count "
                                 "header says; terminated", short_at);
  bad_count_error = g_strdup_printf ("consume: message %" G_GUINT64_FORMAT " of stream CHIME_EVENTS (subject "
                                     "chime.events.r.text) is not whole: its Chime-Count header is not a number "
                                     "from 1 to 65535; terminated", bad_count_at);
  assert_string_contains (consume->err, torn_error);
  assert_string_contains (consume->err, short_error);
  assert_string_contains (consume->err, bad_count_error);
  assert_string_contains (consume->err, "consume: 0 events handled, 0 acked, 0 nak'ed, 0 terminated after "
                                        "max_deliver; 3 messages, 3 not whole");
}

/* docs/scale-out.md's two INI files, as written but for the server's
 * address: the runner publishes, the consumer writes the audit file. */
static void
test_scale_out_doc_files_run_as_written (void **state)
{
  g_autofree char *doc = read_source_file ("docs/scale-out.md");
  g_auto (GStrv) runner_lines = doc_block (doc, "## Two INI files", "ini", "[pipeline]");
  g_auto (GStrv) consumer_lines = doc_block (doc, "## Two INI files", "ini", "[consume]");
  g_autofree char *runner_text = g_strjoinv ("\n", runner_lines);
  g_autofree char *consumer_text = g_strjoinv ("\n", consumer_lines);
  g_autofree char *dir = NULL, *runner = NULL, *consumer = NULL, *audit = NULL;
  g_autoptr (GString) runner_ini = g_string_new (runner_text);
  g_autoptr (GString) consumer_ini = g_string_new (consumer_text);
  g_autoptr (NatsServer) server = NULL;
  g_autoptr (RunResult) run = NULL;
  g_autoptr (RunResult) consume = NULL;
  g_autoptr (GHashTable) ids = NULL;

  if (skip_without_server ())
    return;
  dir = fresh_dir ("jetstream-doc");
  server = nats_server_start (dir);
  assert_true (g_string_replace (runner_ini, "nats://127.0.0.1:4222", server->url, 0) == 1);
  assert_true (g_string_replace (consumer_ini, "nats://127.0.0.1:4222", server->url, 0) == 1);
  runner = write_in (dir, "runner.ini", runner_ini->str);
  consumer = write_in (dir, "consumer.ini", consumer_ini->str);
  run = run_chime_in (dir, "run", runner, "--var", "topic=atoms", NULL);
  assert_status (run, 0);
  assert_string_contains (run->err, "bus (jetstream): ");
  assert_string_contains (run->err, ", 0 lost");
  consume = run_chime_in (dir, "consume", consumer, "--idle-exit-ms", "1000", NULL);
  assert_status (consume, 0);
  audit = g_build_filename (dir, "audit.jsonl", NULL);
  ids = read_ids (audit);
  assert_true (g_hash_table_size (ids) > 8);
  assert_int_equal (g_hash_table_size (ids), count_lines (audit));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_consumer_hands_its_handlers_the_runners_events),
    cmocka_unit_test (test_group_member_killed_loses_nothing),
    cmocka_unit_test (test_server_restarted_mid_publish_loses_nothing),
    cmocka_unit_test (test_server_restarted_mid_publish_loses_no_batched_event),
    cmocka_unit_test (test_unreachable_server_is_a_clear_error_at_start),
    cmocka_unit_test (test_only_consume_loads_libnats),
    cmocka_unit_test (test_consume_module_missing),
    cmocka_unit_test (test_server_gone_mid_run_counts_lost_events_without_hanging),
    cmocka_unit_test (test_handler_failure_naks_then_terminates),
    cmocka_unit_test (test_default_batching_sends_far_fewer_messages_than_events),
    cmocka_unit_test (test_batch_max_1_sends_a_message_per_event),
    cmocka_unit_test (test_message_not_whole_is_terminated_with_a_clear_error),
    cmocka_unit_test (test_scale_out_doc_files_run_as_written),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
