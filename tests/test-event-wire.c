/* Events across a process boundary (core/events/event-wire.c): every
 * event type, with every field a handler can read, comes back from its
 * wire form the same, ancestors and error included; what is not a wire
 * event is refused with a reason. */
#include "test-helpers.h"

#include "events/event-private.h"
#include "events/event-wire.h"
#include "isolation/host-frames.h"

#include <string.h>

typedef struct {
  ChimeRuntime         *runtime;
  ChimeCallbackManager *manager;
  ChimeRun             *root;
  ChimeRun             *llm;     /* a child of root */
} WireFixture;

static int
wire_setup (void **state)
{
  WireFixture *f = g_new0 (WireFixture, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) child = NULL;
  g_autoptr (json_t) inputs = json_pack ("{s:s}", "topic", "atoms");
  g_autoptr (json_t) messages = test_messages ("human", "hi", NULL);
  g_autoptr (json_t) metadata = json_pack ("{s:s}", "user", "ada");
  const char *tags[] = { "demo", "wire", NULL };

  f->runtime = test_runtime_new (&error, "%s", "");
  assert_null (error);
  f->manager = chime_runtime_new_callback_manager (f->runtime);
  chime_callback_manager_add_tags (f->manager, tags, TRUE);
  chime_callback_manager_add_metadata (f->manager, metadata, TRUE);
  f->root = chime_callback_manager_on_chain_start (f->manager, NULL, inputs, "RunnableSequence", NULL, &error);
  assert_non_null (f->root);
  child = chime_run_get_child (f->root, "seq:step:2");
  f->llm = chime_callback_manager_on_chat_model_start (child, NULL, messages, "FakeChat", NULL, &error);
  assert_non_null (f->llm);
  *state = f;
  return 0;
}

static int
wire_teardown (void **state)
{
  WireFixture *f = *state;

  chime_run_unref (f->llm);
  chime_run_unref (f->root);
  chime_callback_manager_unref (f->manager);
  chime_runtime_unref (f->runtime);
  g_free (f);
  return 0;
}

/* An event of @type on the chat model's run with every payload field set. */
static ChimeEvent *
full_event (WireFixture   *f,
            ChimeEventType type)
{
  ChimeEvent *event = chime_event_new (type, (ChimeRunInfo *) chime_run_get_info (f->llm),
                                       type == CHIME_EVENT_LLM_NEW_TOKEN ? "Why don't scientists"
                                                                         : NULL);
  ChimeEventPayload *payload = event->payload;

  event->chunk = json_pack ("{s:s}", "content", "Why");
  if (payload == NULL)
    return event;
  payload->text = g_strdup ("some text");
  payload->custom_name = g_strdup ("my_event");
  payload->serialized = json_pack ("{s:i}", "lc", 1);
  payload->prompts = json_pack ("[s]", "Human: hi");
  payload->messages = json_pack ("[[{s:s, s:s}]]", "type", "human", "content", "hi");
  payload->inputs = json_pack ("{s:s}", "topic", "atoms");
  payload->outputs = json_pack ("{s:s}", "output", "a joke");
  payload->response = json_pack ("{s:[]}", "generations");
  payload->data = json_pack ("{s:b}", "ok", TRUE);
  payload->kwargs = json_pack ("{s:i}", "batch_size", 1);
  payload->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "took too long");
  return event;
}

/* The wire form, through text, back to an event. */
static ChimeEvent *
round_trip (ChimeEvent *event)
{
  g_autoptr (json_t) wire = chime_event_to_wire (event, TRUE);
  g_autofree char *text = json_dumps (wire, JSON_COMPACT);
  g_autoptr (json_t) parsed = json_loads (text, 0, NULL);
  g_autoptr (GError) error = NULL;
  ChimeEvent *back = chime_event_from_wire (parsed, NULL, &error);

  assert_null (error);
  assert_non_null (back);
  return back;
}

static void
assert_same_json (json_t *expected,
                  json_t *actual)
{
  g_autofree char *a = expected != NULL ? json_dumps (expected, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
  g_autofree char *b = actual != NULL ? json_dumps (actual, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

  assert_string_equal (a != NULL ? a : "(none)", b != NULL ? b : "(none)");
}

static void
assert_same_run (const ChimeRunInfo *expected,
                 const ChimeRunInfo *actual)
{
  assert_memory_equal (chime_run_info_get_id (expected), chime_run_info_get_id (actual), sizeof (ChimeRunId));
  assert_int_equal (chime_run_info_get_parent_id (expected) != NULL, chime_run_info_get_parent_id (actual) != NULL);
  if (chime_run_info_get_parent_id (expected) != NULL)
    assert_memory_equal (chime_run_info_get_parent_id (expected), chime_run_info_get_parent_id (actual),
                         sizeof (ChimeRunId));
  assert_int_equal (chime_run_info_get_kind (expected), chime_run_info_get_kind (actual));
  assert_string_equal (chime_run_info_get_run_type (expected), chime_run_info_get_run_type (actual));
  assert_string_equal (chime_run_info_get_name (expected), chime_run_info_get_name (actual));
  assert_true (g_strv_equal ((const char * const *) chime_run_info_get_tags (expected),
                             (const char * const *) chime_run_info_get_tags (actual)));
  assert_same_json (chime_run_info_get_metadata (expected), chime_run_info_get_metadata (actual));
  assert_int_equal (chime_run_info_get_start_time (expected), chime_run_info_get_start_time (actual));
  assert_int_equal (chime_run_info_get_parent (expected) != NULL, chime_run_info_get_parent (actual) != NULL);
  if (chime_run_info_get_parent (expected) != NULL)
    assert_same_run (chime_run_info_get_parent (expected), chime_run_info_get_parent (actual));
}

static void
test_every_event_type_comes_back_the_same (void **state)
{
  WireFixture *f = *state;

  for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
    {
      g_autoptr (ChimeEvent) event = full_event (f, type);
      g_autoptr (ChimeEvent) back = round_trip (event);
      const GError *error = chime_event_get_error (event);

      assert_int_equal (chime_event_get_event_type (back), type);
      assert_int_equal (chime_event_get_monotonic_time (back), chime_event_get_monotonic_time (event));
      assert_int_equal (chime_event_get_sequence (back), chime_event_get_sequence (event));
      assert_string_equal (chime_event_get_token (event) != NULL ? chime_event_get_token (event) : "(none)",
                           chime_event_get_token (back) != NULL ? chime_event_get_token (back) : "(none)");
      assert_same_json (chime_event_get_chunk (event), chime_event_get_chunk (back));
      assert_same_run (chime_event_get_run (event), chime_event_get_run (back));
      assert_same_json (chime_event_get_serialized (event), chime_event_get_serialized (back));
      assert_same_json (chime_event_get_prompts (event), chime_event_get_prompts (back));
      assert_same_json (chime_event_get_messages (event), chime_event_get_messages (back));
      assert_same_json (chime_event_get_inputs (event), chime_event_get_inputs (back));
      assert_same_json (chime_event_get_outputs (event), chime_event_get_outputs (back));
      assert_same_json (chime_event_get_response (event), chime_event_get_response (back));
      assert_same_json (chime_event_get_data (event), chime_event_get_data (back));
      assert_same_json (chime_event_get_kwargs (event), chime_event_get_kwargs (back));
      assert_int_equal (error != NULL, chime_event_get_error (back) != NULL);
      if (error != NULL)
        {
          assert_true (g_error_matches (chime_event_get_error (back), error->domain, error->code));
          assert_string_equal (chime_event_get_error (back)->message, error->message);
          assert_string_equal (chime_event_get_text (back), "some text");
          assert_string_equal (chime_event_get_custom_name (back), "my_event");
        }
    }
}

/* A long token (past the event's inline room) and non-ASCII text. */
static void
test_long_and_unicode_tokens (void **state)
{
  WireFixture *f = *state;
  g_autofree char *long_token = g_strnfill (1000, 'x');
  const char *tokens[] = { long_token, "caf\xc3\xa9 \xf0\x9f\x98\x80", "", NULL };

  for (guint i = 0; tokens[i] != NULL; i++)
    {
      g_autoptr (ChimeEvent) event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN,
                                                      (ChimeRunInfo *) chime_run_get_info (f->llm),
                                                      tokens[i]);
      g_autoptr (ChimeEvent) back = round_trip (event);

      assert_string_equal (chime_event_get_token (back), tokens[i]);
    }
}

/* A token goes to a host process as text written by hand and is read
 * back by hand, with its run sent once before; the text must be exactly
 * what jansson makes of the event's tree, and read back the same. */
static void
test_tokens_by_run_id_and_text (void **state)
{
  WireFixture *f = *state;
  const ChimeRunInfo *info = chime_run_get_info (f->llm);
  g_autoptr (json_t) run_wire = chime_run_info_to_wire (info);
  g_autoptr (GHashTable) runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) chime_run_info_unref);
  const char *tokens[] = { "plain", "a \"quote\" and a \\ backslash", "tab\tnew\nline\x01\x1f",
                           "caf\xc3\xa9 \xf0\x9f\x98\x80", "", NULL };

  g_hash_table_insert (runs, g_strdup (chime_run_info_wire_id (run_wire)),
                       chime_run_info_from_wire (run_wire, NULL));
  for (guint i = 0; tokens[i] != NULL; i++)
    {
      g_autoptr (ChimeEvent) event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, (ChimeRunInfo *) info,
                                                      tokens[i]);
      g_autoptr (GString) text = g_string_new (NULL);
      g_autoptr (json_t) tree = chime_event_to_wire (event, FALSE);
      g_autofree char *tree_text = json_dumps (tree, JSON_COMPACT);
      g_autoptr (ChimeEvent) back = NULL;
      g_autoptr (ChimeEvent) parsed_back = NULL;
      g_autoptr (json_t) parsed = NULL;
      g_autoptr (GError) error = NULL;

      event->monotonic_time = -42 - (gint64) i;
      g_clear_pointer (&tree, json_decref);
      g_clear_pointer (&tree_text, g_free);
      tree = chime_event_to_wire (event, FALSE);
      tree_text = json_dumps (tree, JSON_COMPACT);
      assert_true (chime_event_append_token_wire (event, text));
      assert_string_equal (text->str, tree_text);
      back = chime_event_from_token_wire (text->str, text->len, runs);
      assert_non_null (back);
      assert_string_equal (chime_event_get_token (back), tokens[i]);
      assert_int_equal (chime_event_get_monotonic_time (back), chime_event_get_monotonic_time (event));
      assert_same_run (info, chime_event_get_run (back));
      /* The tree reader takes the same text and the same run table. */
      parsed = json_loads (text->str, 0, NULL);
      parsed_back = chime_event_from_wire (parsed, runs, &error);
      assert_null (error);
      assert_string_equal (chime_event_get_token (parsed_back), tokens[i]);
    }
}

/* The transport text is jansson's text of the transport tree, for the
 * tokens written by hand (run kept as text) and every other event, and
 * reads back as the same event, its sequence and wall clock included. */
static void
test_transport_text_is_the_transport_tree (void **state)
{
  WireFixture *f = *state;
  const char *tokens[] = { "plain", "a \"quote\" and a \\ backslash", "tab\tnew\nline\x01",
                           "caf\xc3\xa9 \xf0\x9f\x98\x80", NULL };

  for (guint i = 0; tokens[i] != NULL; i++)
    {
      g_autoptr (ChimeEvent) event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN,
                                                      (ChimeRunInfo *) chime_run_get_info (f->llm), tokens[i]);
      g_autoptr (json_t) tree = chime_event_to_transport (event);
      g_autofree char *tree_text = json_dumps (tree, JSON_COMPACT);
      g_autoptr (GString) text = g_string_new (NULL);
      g_autoptr (json_t) parsed = NULL;
      g_autoptr (ChimeEvent) back = NULL;
      g_autoptr (GError) error = NULL;

      chime_event_append_transport (event, text);
      assert_string_equal (text->str, tree_text);
      parsed = json_loads (text->str, 0, NULL);
      back = chime_event_from_transport (parsed, &error);
      assert_null (error);
      assert_string_equal (chime_event_get_token (back), tokens[i]);
      assert_int_equal (chime_event_get_sequence (back), chime_event_get_sequence (event));
      assert_int_equal (chime_event_get_real_time (back), chime_event_get_real_time (event));
      assert_same_run (chime_event_get_run (event), chime_event_get_run (back));
    }
  for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
    {
      g_autoptr (ChimeEvent) event = full_event (f, type);
      g_autoptr (json_t) tree = chime_event_to_transport (event);
      g_autofree char *tree_text = json_dumps (tree, JSON_COMPACT);
      g_autoptr (GString) text = g_string_new (NULL);

      chime_event_append_transport (event, text);
      assert_string_equal (text->str, tree_text);
    }
}

/* @event's transport text through @reader: the event
 * chime_event_from_transport() makes of it, accessor for accessor. */
static ChimeEvent *
read_back (ChimeTransportReader *reader,
           ChimeEvent           *event)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (json_t) parsed = NULL;
  g_autoptr (ChimeEvent) expected = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) expected_json = NULL;
  g_autoptr (json_t) actual_json = NULL;
  ChimeEvent *back;

  chime_event_append_transport (event, text);
  parsed = json_loads (text->str, 0, NULL);
  expected = chime_event_from_transport (parsed, &error);
  assert_null (error);
  back = chime_transport_reader_read (reader, text->str, text->len, &error);
  assert_null (error);
  assert_non_null (back);
  assert_int_equal (chime_event_get_event_type (back), chime_event_get_event_type (expected));
  assert_int_equal (chime_event_get_sequence (back), chime_event_get_sequence (expected));
  assert_int_equal (chime_event_get_real_time (back), chime_event_get_real_time (expected));
  assert_same_run (chime_event_get_run (expected), chime_event_get_run (back));
  expected_json = chime_event_to_json (expected);
  actual_json = chime_event_to_json (back);
  assert_same_json (expected_json, actual_json);
  return back;
}

/* A reader of transport texts one after another reads each as
 * chime_event_from_transport() does; a run's consecutive tokens share one
 * rebuilt run, and a token of another run or any other event is read in
 * full; text that is not an event is an error saying why. */
static void
test_transport_reader_reads_as_from_transport (void **state)
{
  WireFixture *f = *state;
  g_autoptr (ChimeTransportReader) reader = chime_transport_reader_new ();
  ChimeRunInfo *llm = (ChimeRunInfo *) chime_run_get_info (f->llm);
  ChimeRunInfo *root = (ChimeRunInfo *) chime_run_get_info (f->root);
  const char *tokens[] = { "plain", "a \"quote\" and a \\ backslash", "tab\tnew\nline\x01",
                           "caf\xc3\xa9 \xf0\x9f\x98\x80", NULL };
  g_autoptr (ChimeEvent) first = NULL;
  g_autoptr (GError) error = NULL;
  const char *torn = "{\"type\":\"llm_new_token\",\"run\":{\"id\":\"01";

  for (guint i = 0; tokens[i] != NULL; i++)
    {
      g_autoptr (ChimeEvent) event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, llm, tokens[i]);
      g_autoptr (ChimeEvent) back = read_back (reader, event);

      assert_string_equal (chime_event_get_token (back), tokens[i]);
      if (first == NULL)
        first = chime_event_ref (back);
      else
        assert_ptr_equal (chime_event_get_run (back), chime_event_get_run (first));
    }
  for (guint type = 0; type < CHIME_EVENT_N_TYPES; type++)
    {
      g_autoptr (ChimeEvent) event = full_event (f, type);
      g_autoptr (ChimeEvent) back = read_back (reader, event);
    }
  {
    g_autoptr (ChimeEvent) of_root = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, root, "root's");
    g_autoptr (ChimeEvent) back = read_back (reader, of_root);
    g_autoptr (ChimeEvent) again = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, llm, "again");
    g_autoptr (ChimeEvent) again_back = read_back (reader, again);

    assert_string_equal (chime_event_get_token (back), "root's");
    assert_true (chime_event_get_run (again_back) != chime_event_get_run (back));
  }
  assert_null (chime_transport_reader_read (reader, torn, strlen (torn), &error));
  assert_true (g_str_has_prefix (error->message, "not JSON ("));
  g_clear_error (&error);
  assert_null (chime_transport_reader_read (reader, "{\"type\":\"text\"}", 15, &error));
  assert_string_equal (error->message, "not a chime event: no run object or no real_time");
  g_clear_error (&error);
  /* A line whose run has no name, as a message off the network may
   * carry: refused, not an event that crashes its first handler. */
  {
    const char *nameless = "{\"type\":\"text\",\"run\":{\"id\":\"01a23bc1f3f9737d9087bf4e645edfe5\",\"kind\":0,"
                           "\"run_type\":\"chain\",\"tags\":[],\"metadata\":{},\"start_time\":1},"
                           "\"monotonic_time\":2,\"sequence\":1,\"text\":\"t\",\"real_time\":3}";

    assert_null (chime_transport_reader_read (reader, nameless, strlen (nameless), &error));
    assert_string_contains (error->message, "a run of the event is not well formed");
  }
}

/* What the hand-written reader does not know exactly falls back to the
 * JSON reader, which names what is wrong. */
static void
test_token_text_it_does_not_know (void **state)
{
  WireFixture *f = *state;
  g_autoptr (json_t) run_wire = chime_run_info_to_wire (chime_run_get_info (f->llm));
  g_autoptr (GHashTable) runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) chime_run_info_unref);
  g_autofree char *id = g_strdup (chime_run_info_wire_id (run_wire));
  g_autofree char *good = g_strdup_printf ("{\"type\":\"llm_new_token\",\"run\":\"%s\","
                                           "\"monotonic_time\":7,\"sequence\":3,\"token\":\"x\"}", id);
  g_autofree char *escaped = g_strdup_printf ("{\"type\":\"llm_new_token\",\"run\":\"%s\","
                                              "\"monotonic_time\":7,\"sequence\":3,\"token\":\"\\u00e9\"}", id);
  g_autofree char *spaced = g_strdup_printf ("{\"type\": \"llm_new_token\",\"run\":\"%s\","
                                             "\"monotonic_time\":7,\"sequence\":3,\"token\":\"x\"}", id);
  g_autofree char *trailing = g_strdup_printf ("%s ", good);
  /* What the fuzzer found the hand-written reader took and jansson does
   * not: a leading zero, bytes that are not UTF-8, a raw control byte. */
  g_autofree char *leading_zero = g_strdup_printf ("{\"type\":\"llm_new_token\",\"run\":\"%s\","
                                                   "\"monotonic_time\":07,\"sequence\":3,\"token\":\"x\"}", id);
  g_autofree char *latin1 = g_strdup_printf ("{\"type\":\"llm_new_token\",\"run\":\"%s\","
                                             "\"monotonic_time\":7,\"sequence\":3,\"token\":\"caf\xe9\"}", id);
  g_autofree char *raw_tab = g_strdup_printf ("{\"type\":\"llm_new_token\",\"run\":\"%s\","
                                              "\"monotonic_time\":7,\"sequence\":3,\"token\":\"a\tb\"}", id);
  g_autoptr (ChimeEvent) unknown_run = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) parsed = json_loads (good, 0, NULL);

  /* No run sent yet. */
  assert_null (chime_event_from_token_wire (good, strlen (good), runs));
  unknown_run = chime_event_from_wire (parsed, runs, &error);
  assert_null (unknown_run);
  assert_string_contains (error->message, "was not sent before it");
  g_hash_table_insert (runs, g_strdup (id), chime_run_info_from_wire (run_wire, NULL));
  {
    g_autoptr (ChimeEvent) event = chime_event_from_token_wire (good, strlen (good), runs);

    assert_non_null (event);
    assert_string_equal (chime_event_get_token (event), "x");
    assert_int_equal (chime_event_get_sequence (event), 3);
  }
  /* \u00e9 is not a control character: chime never writes it so. */
  assert_null (chime_event_from_token_wire (escaped, strlen (escaped), runs));
  assert_null (chime_event_from_token_wire (spaced, strlen (spaced), runs));
  assert_null (chime_event_from_token_wire (trailing, strlen (trailing), runs));
  assert_null (chime_event_from_token_wire (leading_zero, strlen (leading_zero), runs));
  assert_null (chime_event_from_token_wire (latin1, strlen (latin1), runs));
  assert_null (chime_event_from_token_wire (raw_tab, strlen (raw_tab), runs));
  assert_null (chime_event_from_token_wire (good, strlen (good) - 1, runs));
}

/* The `{"seq":N` both readers of the host protocol take by hand: only
 * what jansson reads as the same number; the rest goes to jansson. */
static void
test_frame_seq_is_read_as_json_reads_it (void **state)
{
  static const struct {
    const char *text;
    gsize       end;     /* 0: not taken by hand */
    guint64     seq;
  } cases[] = {
    { "{\"seq\":12}", 9, 12 },
    { "{\"seq\":0,\"event\":{}}", 8, 0 },
    { "{\"seq\":999999999999999999}", 25, G_GUINT64_CONSTANT (999999999999999999) },
    { "{\"seq\":9999999999999999999}", 0, 0 },       /* past a json_int_t */
    { "{\"seq\":012}", 0, 0 },                       /* a leading zero */
    { "{\"seq\":18446744073709551616}", 0, 0 },      /* 20 digits */
    { "{\"seq\":}", 0, 0 },
    { "{\"seq\":-1}", 0, 0 },
    { "{\"seq\": 1}", 0, 0 },
    { "{\"sequence\":1}", 0, 0 },
    { "{\"seq\":", 0, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint64 seq = 77;
      gsize end = chime_frame_read_seq (cases[i].text, strlen (cases[i].text), &seq);

      assert_int_equal (end, cases[i].end);
      if (end == 0)
        continue;
      assert_true (seq == cases[i].seq);
      /* Taken by hand only where jansson reads the same number. */
      if (cases[i].text[end] == '}')
        {
          g_autoptr (json_t) parsed = json_loads (cases[i].text, 0, NULL);

          assert_non_null (parsed);
          assert_true ((guint64) json_integer_value (json_object_get (parsed, "seq")) == seq);
        }
    }
}

static void
assert_refused (const char *text,
                const char *reason)
{
  g_autoptr (json_t) wire = json_loads (text, JSON_DECODE_ANY, NULL);
  g_autoptr (GError) error = NULL;
  ChimeEvent *event = chime_event_from_wire (wire, NULL, &error);

  assert_null (event);
  assert_non_null (error);
  assert_string_contains (error->message, reason);
}

static void
test_what_is_not_a_wire_event_is_refused (void **state)
{
  static const char run[] = "{\"id\": \"0123456789abcdef0123456789abcdef\", \"kind\": 1, "
                            "\"run_type\": \"llm\", \"name\": \"Fake\", \"tags\": [], \"start_time\": 5}";
  g_autofree char *no_type = g_strdup_printf ("{\"run\": %s, \"monotonic_time\": 1}", run);
  g_autofree char *bad_type = g_strdup_printf ("{\"type\": \"llm_new_tokens\", \"run\": %s, \"monotonic_time\": 1}",
                                               run);
  g_autofree char *number_token = g_strdup_printf ("{\"type\": \"llm_new_token\", \"token\": 5, \"run\": %s, "
                                                   "\"monotonic_time\": 1}", run);
  g_autofree char *number_text = g_strdup_printf ("{\"type\": \"text\", \"text\": 5, \"run\": %s, "
                                                  "\"monotonic_time\": 1}", run);

  assert_refused ("[1, 2]", "not an event");
  assert_refused (no_type, "not an event");
  assert_refused (bad_type, "not an event");
  assert_refused (number_token, "not an event");
  assert_refused (number_text, "the text event's payload is not well formed");
  assert_refused ("{\"type\": \"text\", \"monotonic_time\": 1, \"run\": {\"id\": \"xyz\", \"kind\": 0, "
                  "\"run_type\": \"chain\", \"name\": \"C\", \"tags\": [], \"start_time\": 5}}", "a run id of the event is not 32 hex digits");
  assert_refused ("{\"type\": \"text\", \"monotonic_time\": 1, \"run\": {\"id\": "
                  "\"0123456789abcdef0123456789abcdef\", \"kind\": 9, \"tags\": [], \"start_time\": 5}}",
                  "a run of the event is not well formed");
  assert_refused ("{\"type\": \"text\", \"monotonic_time\": 1, \"run\": {\"id\": "
                  "\"0123456789abcdef0123456789abcdef\", \"kind\": 0, \"tags\": [3], \"start_time\": 5}}",
                  "a run of the event is not well formed");
  /* A run without its name or type (found by fuzz-event-wire: it was
   * taken, and its event crashed chime_event_to_json). */
  assert_refused ("{\"type\": \"text\", \"text\": \"t\", \"monotonic_time\": 1, \"run\": {\"id\": "
                  "\"0123456789abcdef0123456789abcdef\", \"kind\": 0, \"run_type\": \"chain\", \"nbme\": \"C\", "
                  "\"tags\": [], \"start_time\": 5}}",
                  "a run of the event is not well formed");
  assert_refused ("{\"type\": \"text\", \"text\": \"t\", \"monotonic_time\": 1, \"run\": {\"id\": "
                  "\"0123456789abcdef0123456789abcdef\", \"kind\": 0, \"run_type\": 7, \"name\": \"C\", "
                  "\"tags\": [], \"start_time\": 5}}",
                  "a run of the event is not well formed");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_every_event_type_comes_back_the_same, wire_setup, wire_teardown),
    cmocka_unit_test_setup_teardown (test_long_and_unicode_tokens, wire_setup, wire_teardown),
    cmocka_unit_test_setup_teardown (test_tokens_by_run_id_and_text, wire_setup, wire_teardown),
    cmocka_unit_test_setup_teardown (test_token_text_it_does_not_know, wire_setup, wire_teardown),
    cmocka_unit_test_setup_teardown (test_transport_text_is_the_transport_tree, wire_setup, wire_teardown),
    cmocka_unit_test_setup_teardown (test_transport_reader_reads_as_from_transport, wire_setup, wire_teardown),
    cmocka_unit_test (test_frame_seq_is_read_as_json_reads_it),
    cmocka_unit_test (test_what_is_not_a_wire_event_is_refused),
  };

  return test_run_group (tests, G_N_ELEMENTS (tests));
}
