/* libFuzzer harness for the hand-written token path of the wire form
 * (core/events/event-wire.c), which isolation = process uses for nearly
 * every event instead of a JSON tree. It must agree with the tree form
 * both ways:
 *
 *   - a token (any bytes) written by chime_event_append_token_wire() is
 *     exactly the text jansson makes of chime_event_to_wire(), and reads
 *     back, by hand and through jansson, as the same token;
 *   - any text chime_event_from_token_wire() accepts, jansson reads as an
 *     event with the same token and time (so the hand-written reader
 *     never takes what the JSON reader would read otherwise).
 *
 *   - the transport reader (core/events/event-transport-reader.c), which
 *     `chime consume` runs on every line a NATS message brings, reads a
 *     token's transport text, and any text at all, as
 *     chime_event_from_transport() does: the same event, or a refusal
 *     from both, also when its hand-written path for a known run's
 *     tokens is the one taken.
 *
 * Input: the first string is the token; the rest of the input is also
 * tried as a frame's text, with the fuzzer's run id spliced in when it
 * says "RUN". */
#include "config.h"

#include <string.h>

#include <chime/chime.h>
#include "events/event-private.h"
#include "events/event-wire.h"
#include "fuzz-common.h"
#include "fuzz-runtime.h"

static ChimeRuntime *runtime;
static ChimeRun *run;
static GHashTable *runs;
static char *run_id;

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeCallbackManager) manager = NULL;
  g_autoptr (json_t) messages = json_pack ("[[{s:s, s:s}]]", "type", "human", "content", "hi");
  g_autoptr (json_t) wire = NULL;

  fuzz_make_warnings_fatal ();
  runtime = fuzz_runtime_without_handlers ();
  manager = chime_runtime_new_callback_manager (runtime);
  run = chime_callback_manager_on_chat_model_start (manager, NULL, messages, "FakeChat", NULL, &error);
  g_assert_no_error (error);
  wire = chime_run_info_to_wire (chime_run_get_info (run));
  run_id = g_strdup (chime_run_info_wire_id (wire));
  runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) chime_run_info_unref);
  g_hash_table_insert (runs, g_strdup (run_id), chime_run_info_from_wire (wire, &error));
  g_assert_no_error (error);
  return 0;
}

/* The token through both writers and both readers. */
static void
check_token (const char *token)
{
  g_autoptr (ChimeEvent) event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN,
                                                  (ChimeRunInfo *) chime_run_get_info (run), token);
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (json_t) tree = NULL;
  g_autofree char *tree_text = NULL;
  g_autoptr (ChimeEvent) back = NULL;

  if (!chime_event_append_token_wire (event, text))
    {
      if (g_utf8_validate (token, -1, NULL))
        fuzz_fail ("a UTF-8 token was not written by hand", token, NULL);
      return;
    }
  tree = chime_event_to_wire (event, FALSE);
  tree_text = json_dumps (tree, JSON_COMPACT);
  if (g_strcmp0 (tree_text, text->str) != 0)
    fuzz_fail ("the hand-written token is not what jansson writes", tree_text, text->str);
  back = chime_event_from_token_wire (text->str, text->len, runs);
  if (back == NULL || g_strcmp0 (chime_event_get_token (back), token) != 0)
    fuzz_fail ("a token written by hand does not read back by hand", token,
               back != NULL ? chime_event_get_token (back) : NULL);
}

/* Whatever the hand-written reader takes, jansson reads the same. */
static void
check_text (const char *text,
            gsize       length)
{
  g_autoptr (ChimeEvent) event = chime_event_from_token_wire (text, length, runs);
  g_autoptr (json_t) parsed = NULL;
  g_autoptr (ChimeEvent) tree_event = NULL;

  if (event == NULL)
    return;
  parsed = json_loadb (text, length, 0, NULL);
  tree_event = parsed != NULL ? chime_event_from_wire (parsed, runs, NULL) : NULL;
  if (tree_event == NULL)
    fuzz_fail ("the hand-written reader took what jansson refuses", "(refused)", text);
  if (g_strcmp0 (chime_event_get_token (event), chime_event_get_token (tree_event)) != 0 ||
      chime_event_get_monotonic_time (event) != chime_event_get_monotonic_time (tree_event) ||
      chime_event_get_event_type (tree_event) != CHIME_EVENT_LLM_NEW_TOKEN)
    fuzz_fail ("the two readers read different events", chime_event_get_token (tree_event),
               chime_event_get_token (event));
}

/* The event jansson and chime_event_from_transport() make of @text, as
 * JSON text; NULL when either refuses it. */
static char *
from_transport_json (const char *text,
                     gsize       length)
{
  g_autoptr (json_t) parsed = json_loadb (text, length, 0, NULL);
  g_autoptr (ChimeEvent) event = NULL;
  g_autoptr (json_t) json = NULL;

  if (parsed == NULL)
    return NULL;
  event = chime_event_from_transport (parsed, NULL);
  if (event == NULL)
    return NULL;
  json = chime_event_to_json (event);
  return json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS);
}

/* @reader's event of @text agrees with chime_event_from_transport()'s. */
static void
check_reader_text (ChimeTransportReader *reader,
                   const char           *text,
                   gsize                 length)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ChimeEvent) event = chime_transport_reader_read (reader, text, length, &error);
  g_autofree char *expected = from_transport_json (text, length);
  g_autoptr (json_t) json = NULL;
  g_autofree char *got = NULL;

  if (event == NULL)
    {
      if (error == NULL)
        fuzz_fail ("the transport reader refused without an error", "(an error)", text);
      if (expected != NULL)
        fuzz_fail ("the transport reader refused what from_transport reads", expected, text);
      return;
    }
  if (expected == NULL)
    fuzz_fail ("the transport reader took what from_transport refuses", "(refused)", text);
  json = chime_event_to_json (event);
  got = json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS);
  if (g_strcmp0 (expected, got) != 0)
    fuzz_fail ("the transport reader and from_transport read different events", expected, got);
}

/* The token's transport text, read after the run is known (the reader's
 * hand-written path) and then @text: both as from_transport reads them. */
static void
check_transport_reader (const char *token,
                        const char *text,
                        gsize       length)
{
  g_autoptr (ChimeTransportReader) reader = chime_transport_reader_new ();
  g_autoptr (ChimeEvent) first = chime_event_new (CHIME_EVENT_TEXT,
                                                  (ChimeRunInfo *) chime_run_get_info (run), "first");
  g_autoptr (ChimeEvent) event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN,
                                                  (ChimeRunInfo *) chime_run_get_info (run), token);
  g_autoptr (GString) first_text = g_string_new (NULL);
  g_autoptr (GString) token_text = g_string_new (NULL);

  chime_event_append_transport (first, first_text);
  check_reader_text (reader, first_text->str, first_text->len);
  chime_event_append_transport (event, token_text);
  check_reader_text (reader, token_text->str, token_text->len);
  check_reader_text (reader, token_text->str, token_text->len);
  check_reader_text (reader, text, length);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  FuzzReader reader = { data, size, 0 };
  g_autofree char *token = fuzz_read_string (&reader);
  g_autofree char *rest = g_strndup ((const char *) data + MIN (reader.offset, size),
                                     size - MIN (reader.offset, size));
  g_auto (GStrv) pieces = g_strsplit (rest, "RUN", -1);
  g_autofree char *text = g_strjoinv (run_id, pieces);

  check_token (token);
  check_text (text, strlen (text));
  check_transport_reader (token, text, strlen (text));
  return 0;
}
