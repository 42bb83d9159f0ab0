/* libFuzzer harness for the JSON form of events (core/events/event-json.c):
 * runs and events built through the public API from fuzzed strings and
 * JSON, each turned into JSON with chime_event_to_json() and written out
 * as the jsonl plugin writes it.
 *
 * Strings are any bytes, valid UTF-8 or not, as a plugin or an embedder
 * may pass them. The text written must be valid UTF-8 and valid JSON that
 * reads back to the same value, and must keep every member the event
 * has (docs/events.md): a member silently left out is a lost event field.
 *
 * Input: a byte for the run's kind, then the run's strings and JSON
 * values (see read_run()), then one byte per event and its arguments,
 * all through FuzzReader (fuzz-common.h). */
#include "config.h"

#include <string.h>

#include <chime/chime.h>
#include "fuzz-common.h"
#include "fuzz-runtime.h"

static ChimeRuntime *runtime;

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_make_warnings_fatal ();
  runtime = fuzz_runtime_without_handlers ();
  return 0;
}

/* A JSON value from the next string, or NULL when it is not JSON. */
static json_t *
read_json (FuzzReader *reader)
{
  g_autofree char *text = fuzz_read_string (reader);

  return json_loads (text, JSON_DECODE_ANY, NULL);
}

static void
check_member (json_t     *object,
              const char *key,
              const char *text)
{
  if (json_object_get (object, key) == NULL)
    fuzz_fail ("an event's JSON lost a member", key, text);
}

/* Writes @event as the jsonl plugin does and checks what was written. */
static void
check_event (ChimeEvent *event)
{
  static const char *const always[] = {
    "event", "run_id", "parent_run_id", "run_type", "name", "tags", "metadata", "time", NULL
  };
  g_autoptr (json_t) json = chime_event_to_json (event);
  g_autoptr (json_t) read_back = NULL;
  g_autofree char *text = NULL;
  json_error_t error;

  g_assert (json_is_object (json));
  text = json_dumps (json, JSON_COMPACT);
  if (text == NULL)
    fuzz_fail ("an event could not be written as JSON", "text", NULL);
  if (!g_utf8_validate (text, -1, NULL))
    fuzz_fail ("an event's JSON is not valid UTF-8", "UTF-8", text);
  read_back = json_loads (text, 0, &error);
  if (read_back == NULL)
    fuzz_fail ("an event's JSON does not read back", error.text, text);
  if (!json_equal (read_back, json))
    fuzz_fail ("an event's JSON reads back as another value", "the same", text);

  for (guint i = 0; always[i] != NULL; i++)
    check_member (json, always[i], text);
  if (chime_event_get_token (event) != NULL)
    check_member (json, "token", text);
  if (chime_event_get_error (event) != NULL)
    check_member (json, "error", text);
  if (chime_event_get_text (event) != NULL)
    check_member (json, "text", text);
  if (chime_event_get_custom_name (event) != NULL)
    check_member (json, "event_name", text);
  if (json_array_size (json_object_get (json, "tags")) !=
      g_strv_length ((char **) chime_run_info_get_tags (chime_event_get_run (event))))
    fuzz_fail ("an event's JSON lost a tag", "every tag", text);
}

static GError *
read_error (FuzzReader *reader)
{
  g_autofree char *message = fuzz_read_string (reader);

  return g_error_new_literal (G_IO_ERROR, fuzz_read_byte (reader), message);
}

/* Starts a run of the kind the next byte names, with its start event. */
static ChimeRun *
read_run (FuzzReader           *reader,
          ChimeCallbackManager *manager,
          ChimeEvent          **start)
{
  guint8 kind = fuzz_read_byte (reader) % 5;
  g_autofree char *name = fuzz_read_string (reader);
  g_autofree char *text = fuzz_read_string (reader);
  g_autoptr (json_t) serialized = read_json (reader);
  g_autoptr (json_t) value = read_json (reader);
  /* An empty name: let the run pick one from @serialized. */
  const char *run_name = name[0] != '\0' ? name : NULL;

  switch (kind)
    {
    case 0:
      return chime_callback_manager_prepare_chain_start (manager, serialized, value, run_name,
                                                         text[0] != '\0' ? text : NULL, start);
    case 1:
      return chime_callback_manager_prepare_llm_start (manager, serialized, text, run_name, value, start);
    case 2:
      if (!json_is_array (value))
        {
          json_decref (value);
          value = json_pack ("[{s:s, s:s}]", "type", "human", "content", "hi");
        }
      return chime_callback_manager_prepare_chat_model_start (manager, serialized, value, run_name,
                                                              NULL, start);
    case 3:
      return chime_callback_manager_prepare_tool_start (manager, serialized, text, value, run_name, start);
    default:
      return chime_callback_manager_prepare_retriever_start (manager, serialized, text, run_name, start);
    }
}

/* The end or error event of @run's kind. */
static ChimeEvent *
prepare_end (ChimeRun   *run,
             FuzzReader *reader,
             gboolean    failed)
{
  g_autoptr (json_t) value = read_json (reader);
  g_autoptr (GError) failure = failed ? read_error (reader) : NULL;

  switch (chime_run_info_get_kind (chime_run_get_info (run)))
    {
    case CHIME_RUN_KIND_CHAIN:
      return failed ? chime_run_prepare_chain_error (run, failure) : chime_run_prepare_chain_end (run, value);
    case CHIME_RUN_KIND_LLM:
      return failed ? chime_run_prepare_llm_error (run, failure, value) : chime_run_prepare_llm_end (run, value);
    case CHIME_RUN_KIND_TOOL:
      return failed ? chime_run_prepare_tool_error (run, failure) : chime_run_prepare_tool_end (run, value);
    default:
      return failed ? chime_run_prepare_retriever_error (run, failure)
                    : chime_run_prepare_retriever_end (run, value);
    }
}

/* One more event of @run, as the next byte says. */
static ChimeEvent *
prepare_event (ChimeRun   *run,
               FuzzReader *reader)
{
  guint8 op = fuzz_read_byte (reader) % 6;
  gboolean is_llm = chime_run_info_get_kind (chime_run_get_info (run)) == CHIME_RUN_KIND_LLM;
  g_autofree char *text = NULL;
  g_autoptr (json_t) value = NULL;

  if (op == 0 && is_llm)
    {
      text = fuzz_read_string (reader);
      value = read_json (reader);
      return chime_run_prepare_llm_new_token (run, text, value);
    }
  if (op == 1)
    {
      text = fuzz_read_string (reader);
      return chime_run_prepare_text (run, text);
    }
  if (op == 2)
    {
      text = fuzz_read_string (reader);
      value = read_json (reader);
      return chime_run_prepare_custom_event (run, text, value);
    }
  if (op == 3)
    {
      value = read_json (reader);
      return chime_run_prepare_retry (run, value);
    }
  return prepare_end (run, reader, op == 5);
}

/* Tags and metadata for the runs the manager starts. */
static void
read_manager (FuzzReader           *reader,
              ChimeCallbackManager *manager)
{
  guint n_tags = fuzz_read_byte (reader) % 4;
  g_autoptr (json_t) metadata = NULL;

  for (guint i = 0; i < n_tags; i++)
    {
      g_autofree char *tag = fuzz_read_string (reader);
      const char *tags[] = { tag, NULL };

      chime_callback_manager_add_tags (manager, tags, i % 2 == 0);
    }
  metadata = read_json (reader);
  if (json_is_object (metadata))
    chime_callback_manager_add_metadata (manager, metadata, TRUE);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  FuzzReader reader = { data, size, 0 };
  ChimeCallbackManager *manager = chime_runtime_new_callback_manager (runtime);
  ChimeCallbackManager *child_manager = NULL;
  ChimeRun *run, *child = NULL;
  ChimeEvent *event = NULL;

  read_manager (&reader, manager);
  run = read_run (&reader, manager, &event);
  check_event (event);
  chime_event_unref (event);
  /* A child run, so that parent ids and inherited tags are written too. */
  if (fuzz_read_byte (&reader) % 2 == 1)
    {
      g_autofree char *tag = fuzz_read_string (&reader);

      child_manager = chime_run_get_child (run, tag[0] != '\0' ? tag : NULL);
      child = read_run (&reader, child_manager, &event);
      check_event (event);
      chime_event_unref (event);
    }
  for (guint i = 0; i < 16 && reader.offset < reader.size; i++)
    {
      event = prepare_event (child != NULL && i % 2 == 1 ? child : run, &reader);
      check_event (event);
      chime_event_unref (event);
    }
  g_clear_pointer (&child, chime_run_unref);
  g_clear_pointer (&child_manager, chime_callback_manager_unref);
  chime_run_unref (run);
  chime_callback_manager_unref (manager);
  return 0;
}
