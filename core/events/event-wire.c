/* Events across a process boundary: every field a handler can read, as
 * JSON, and back.
 *
 * A handler isolated in a process of its own is called with the event
 * rebuilt from this form, so that a plugin cannot tell the difference.
 * chime_event_to_json() is the documented, LangChain-shaped form and
 * drops what its readers do not need; this one keeps everything the
 * accessors of <chime/event.h> return: the monotonic stamp, the run's kind
 * and start time, its ancestors, an error's domain and code. The raise_error
 * trace of a run tree stays with the runtime: a rebuilt run has its own. */
#include "config.h"

#include "event-wire.h"
#include "event-json.h"
#include "trace.h"

#include <string.h>

#define WIRE_ERROR (g_quark_from_static_string ("chime-event-wire-error"))

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeRunInfo, chime_run_info_unref)

/* ------------------------------------------------------------------
 * To the wire
 * ---------------------------------------------------------------- */

/* A run id as the wire writes it: 32 lowercase hex digits. */
#define RUN_ID_HEX_LEN (2 * sizeof ((ChimeRunId *) NULL)->bytes)

static void
run_id_to_hex (const ChimeRunId *id,
               char              hex[RUN_ID_HEX_LEN + 1])
{
  static const char digits[] = "0123456789abcdef";

  for (guint i = 0; i < sizeof id->bytes; i++)
    {
      hex[2 * i] = digits[id->bytes[i] >> 4];
      hex[2 * i + 1] = digits[id->bytes[i] & 0xf];
    }
  hex[RUN_ID_HEX_LEN] = '\0';
}

static json_t *
run_id_to_wire (const ChimeRunId *id)
{
  char hex[RUN_ID_HEX_LEN + 1];

  run_id_to_hex (id, hex);
  return json_string (hex);
}

json_t *
chime_run_info_to_wire (const ChimeRunInfo *info)
{
  json_t *object = json_pack ("{s:o, s:i, s:s?, s:s?, s:o, s:O?, s:I}",
                              "id", run_id_to_wire (&info->id),
                              "kind", (int) info->kind,
                              "run_type", info->run_type,
                              "name", info->name,
                              "tags", chime_strv_to_json ((const char * const *) info->tags),
                              "metadata", info->metadata,
                              "start_time", (json_int_t) info->start_time);

  if (info->has_parent)
    json_object_set_new (object, "parent_id", run_id_to_wire (&info->parent_id));
  if (info->parent != NULL)
    json_object_set_new (object, "parent", chime_run_info_to_wire (info->parent));
  return object;
}

static void
set_json (json_t     *object,
          const char *key,
          json_t     *value)
{
  if (value != NULL)
    json_object_set (object, key, value);
}

json_t *
chime_event_to_wire (ChimeEvent *event,
                     gboolean    with_run)
{
  const ChimeEventPayload *payload = event->payload;
  json_t *wire = json_pack ("{s:s, s:o, s:I, s:I}",
                            "type", chime_event_type_to_string (event->type),
                            "run", with_run ? chime_run_info_to_wire (event->run)
                                            : run_id_to_wire (&event->run->id),
                            "monotonic_time", (json_int_t) event->monotonic_time,
                            "sequence", (json_int_t) event->sequence);

  if (event->token != NULL)
    json_object_set_new (wire, "token", json_string (event->token));
  /* Atomic: chime_event_get_chunk() may be building it on another thread. */
  set_json (wire, "chunk", g_atomic_pointer_get (&event->chunk));
  if (payload == NULL)
    return wire;
  if (payload->text != NULL)
    json_object_set_new (wire, "text", json_string (payload->text));
  if (payload->custom_name != NULL)
    json_object_set_new (wire, "custom_name", json_string (payload->custom_name));
  set_json (wire, "serialized", payload->serialized);
  set_json (wire, "prompts", payload->prompts);
  set_json (wire, "messages", payload->messages);
  set_json (wire, "inputs", payload->inputs);
  set_json (wire, "outputs", payload->outputs);
  set_json (wire, "response", payload->response);
  set_json (wire, "data", payload->data);
  set_json (wire, "kwargs", payload->kwargs);
  if (payload->error != NULL)
    json_object_set_new (wire, "error", json_pack ("{s:s, s:i, s:s}",
                                                   "domain", g_quark_to_string (payload->error->domain),
                                                   "code", payload->error->code,
                                                   "message", payload->error->message));
  return wire;
}

gsize
chime_wire_format_int64 (char   out[20],
                         gint64 value)
{
  char reversed[20];
  guint64 magnitude = value < 0 ? 0 - (guint64) value : (guint64) value;
  gsize n = 0, length = 0;

  do
    {
      reversed[n++] = (char) ('0' + magnitude % 10);
      magnitude /= 10;
    }
  while (magnitude != 0);
  if (value < 0)
    out[length++] = '-';
  while (n > 0)
    out[length++] = reversed[--n];
  return length;
}

/* A token as a JSON string: quotes, backslashes and control characters
 * escaped, the rest (UTF-8) as it is. */
void
chime_wire_append_json_string (GString    *out,
                    const char *text)
{
  static const char digits[] = "0123456789ABCDEF";
  const char *run = text;

  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      g_string_append_len (out, run, p - run);
      run = p + 1;
      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
        }
      else if (c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f')
        {
          /* jansson's short forms, so that the text is what it writes. */
          g_string_append_c (out, '\\');
          g_string_append_c (out, c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : c == '\b' ? 'b' : 'f');
        }
      else
        {
          char escape[] = { '\\', 'u', '0', '0', digits[c >> 4], digits[c & 0xf] };

          g_string_append_len (out, escape, sizeof escape);
        }
    }
  g_string_append (out, run);
  g_string_append_c (out, '"');
}

gboolean
chime_event_append_token_wire (ChimeEvent *event,
                               GString    *out)
{
  char number[24];
  char run_id[RUN_ID_HEX_LEN + 1];

  if (event->type != CHIME_EVENT_LLM_NEW_TOKEN || event->payload != NULL || event->token == NULL ||
      g_atomic_pointer_get (&event->chunk) != NULL || !g_utf8_validate (event->token, -1, NULL))
    return FALSE;
  run_id_to_hex (&event->run->id, run_id);
  g_string_append (out, "{\"type\":\"llm_new_token\",\"run\":\"");
  g_string_append_len (out, run_id, RUN_ID_HEX_LEN);
  g_snprintf (number, sizeof number, "%" G_GINT64_FORMAT, event->monotonic_time);
  g_string_append (out, "\",\"monotonic_time\":");
  g_string_append (out, number);
  g_snprintf (number, sizeof number, "%" G_GUINT64_FORMAT, event->sequence);
  g_string_append (out, ",\"sequence\":");
  g_string_append (out, number);
  g_string_append (out, ",\"token\":");
  chime_wire_append_json_string (out, event->token);
  g_string_append_c (out, '}');
  return TRUE;
}

/* ------------------------------------------------------------------
 * From the wire
 * ---------------------------------------------------------------- */

static gboolean
run_id_from_wire (json_t     *value,
                  ChimeRunId *out)
{
  const char *hex = json_string_value (value);

  if (hex == NULL || strlen (hex) != 2 * sizeof out->bytes)
    return FALSE;
  for (guint i = 0; i < sizeof out->bytes; i++)
    {
      int high = g_ascii_xdigit_value (hex[2 * i]);
      int low = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (high < 0 || low < 0)
        return FALSE;
      out->bytes[i] = (guint8) (high << 4 | low);
    }
  return TRUE;
}

static char **
strv_from_wire (json_t *array)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  json_t *value;
  gsize i;

  json_array_foreach (array, i, value)
    g_strv_builder_add (builder, json_string_value (value));
  return g_strv_builder_end (builder);
}

static gboolean
strings_only (json_t *array)
{
  json_t *value;
  gsize i;

  if (!json_is_array (array))
    return FALSE;
  json_array_foreach (array, i, value)
    if (!json_is_string (value))
      return FALSE;
  return TRUE;
}

static ChimeRunInfo *
run_info_from_wire_at (json_t  *wire,
                    guint    depth,
                    GError **error)
{
  g_autoptr (ChimeRunInfo) info = NULL;
  json_t *parent_id = json_object_get (wire, "parent_id");
  json_t *parent = json_object_get (wire, "parent");
  json_t *tags = json_object_get (wire, "tags");
  json_t *metadata = json_object_get (wire, "metadata");
  json_int_t kind = json_integer_value (json_object_get (wire, "kind"));

  /* Run trees are shallow; a deep one is not something chime sent. */
  if (depth > 1000 || !json_is_object (wire) || !strings_only (tags) ||
      (metadata != NULL && !json_is_object (metadata)) ||
      !json_is_integer (json_object_get (wire, "start_time")) ||
      /* Every run has both; a run without them would crash its first
       * reader (chime_event_to_json). */
      !json_is_string (json_object_get (wire, "run_type")) ||
      !json_is_string (json_object_get (wire, "name")) ||
      kind < CHIME_RUN_KIND_CHAIN || kind > CHIME_RUN_KIND_RETRIEVER)
    {
      g_set_error (error, WIRE_ERROR, 0, "a run of the event is not well formed");
      return NULL;
    }
  info = g_aligned_alloc0 (1, sizeof (ChimeRunInfo), 64);
  info->ref_count = 1;
  if (!run_id_from_wire (json_object_get (wire, "id"), &info->id) ||
      (parent_id != NULL && !run_id_from_wire (parent_id, &info->parent_id)))
    {
      g_set_error (error, WIRE_ERROR, 0, "a run id of the event is not 32 hex digits");
      return NULL;
    }
  info->has_parent = parent_id != NULL;
  if (parent != NULL && (info->parent = run_info_from_wire_at (parent, depth + 1, error)) == NULL)
    return NULL;
  info->kind = (ChimeRunKind) kind;
  info->run_type = g_strdup (json_string_value (json_object_get (wire, "run_type")));
  info->name = g_strdup (json_string_value (json_object_get (wire, "name")));
  info->tags = strv_from_wire (tags);
  info->metadata = metadata != NULL ? json_incref (metadata) : json_object ();
  info->start_time = json_integer_value (json_object_get (wire, "start_time"));
  info->trace = chime_trace_new ();
  return g_steal_pointer (&info);
}

ChimeRunInfo *
chime_run_info_from_wire (json_t  *wire,
                          GError **error)
{
  return run_info_from_wire_at (wire, 0, error);
}

const char *
chime_run_info_wire_id (json_t *wire)
{
  return json_string_value (json_object_get (wire, "id"));
}

/* A string member, copied; FALSE when it is there and not a string. */
static gboolean
take_string (json_t      *wire,
             const char  *key,
             char       **out)
{
  json_t *value = json_object_get (wire, key);

  if (value != NULL && !json_is_string (value))
    return FALSE;
  *out = g_strdup (json_string_value (value));
  return TRUE;
}

static void
take_json (json_t      *wire,
           const char  *key,
           json_t     **out)
{
  chime_event_set_json (out, json_object_get (wire, key));
}

static gboolean
payload_from_wire (json_t            *wire,
                   ChimeEventPayload *payload)
{
  json_t *error = json_object_get (wire, "error");

  take_json (wire, "serialized", &payload->serialized);
  take_json (wire, "prompts", &payload->prompts);
  take_json (wire, "messages", &payload->messages);
  take_json (wire, "inputs", &payload->inputs);
  take_json (wire, "outputs", &payload->outputs);
  take_json (wire, "response", &payload->response);
  take_json (wire, "data", &payload->data);
  take_json (wire, "kwargs", &payload->kwargs);
  if (error != NULL)
    {
      const char *domain = json_string_value (json_object_get (error, "domain"));
      const char *message = json_string_value (json_object_get (error, "message"));

      if (domain == NULL || message == NULL || !json_is_integer (json_object_get (error, "code")))
        return FALSE;
      payload->error = g_error_new_literal (g_quark_from_string (domain),
                                            (gint) json_integer_value (json_object_get (error, "code")),
                                            message);
    }
  return take_string (wire, "text", &payload->text) &&
         take_string (wire, "custom_name", &payload->custom_name);
}

ChimeEvent *
chime_event_from_wire (json_t     *wire,
                       GHashTable *runs,
                       GError    **error)
{
  g_autoptr (ChimeRunInfo) run = NULL;
  g_autoptr (ChimeEvent) event = NULL;
  json_t *token = json_object_get (wire, "token");
  json_t *run_wire;
  const char *type_name = json_string_value (json_object_get (wire, "type"));
  ChimeEventType type;

  if (!json_is_object (wire) || type_name == NULL || !chime_event_type_from_string (type_name, &type) ||
      !json_is_integer (json_object_get (wire, "monotonic_time")) ||
      json_integer_value (json_object_get (wire, "sequence")) < 0 ||
      (token != NULL && !json_is_string (token)))
    {
      g_set_error (error, WIRE_ERROR, 0, "not an event: no known type, no time, or a token that is not text");
      return NULL;
    }
  run_wire = json_object_get (wire, "run");
  if (json_is_string (run_wire))
    {
      /* A run sent before, by its id. */
      run = runs != NULL ? g_hash_table_lookup (runs, json_string_value (run_wire)) : NULL;
      if (run == NULL)
        {
          g_set_error (error, WIRE_ERROR, 0, "the event's run %s was not sent before it",
                       json_string_value (run_wire));
          return NULL;
        }
      chime_run_info_ref (run);
    }
  else if ((run = run_info_from_wire_at (run_wire, 0, error)) == NULL)
    return NULL;
  event = chime_event_new (type, run, json_string_value (token));
  event->monotonic_time = json_integer_value (json_object_get (wire, "monotonic_time"));
  if (json_is_integer (json_object_get (wire, "sequence")))
    event->sequence = (guint64) json_integer_value (json_object_get (wire, "sequence"));
  take_json (wire, "chunk", &event->chunk);
  if (event->payload != NULL && !payload_from_wire (wire, event->payload))
    {
      g_set_error (error, WIRE_ERROR, 0, "the %s event's payload is not well formed",
                   chime_event_type_to_string (type));
      return NULL;
    }
  return g_steal_pointer (&event);
}

/* ------------------------------------------------------------------
 * A token's text, read back without a JSON tree
 * ---------------------------------------------------------------- */

gboolean
chime_wire_skip_literal (const char **p,
              const char  *end,
              const char  *literal)
{
  gsize length = strlen (literal);

  if ((gsize) (end - *p) < length || memcmp (*p, literal, length) != 0)
    return FALSE;
  *p += length;
  return TRUE;
}

gboolean
chime_wire_read_integer (const char **p,
              const char  *end,
              gint64      *out)
{
  gboolean negative = *p < end && **p == '-';
  guint64 value = 0;
  const char *start;

  if (negative)
    (*p)++;
  start = *p;
  while (*p < end && g_ascii_isdigit (**p) && *p - start < 18)
    value = value * 10 + (guint64) (*(*p)++ - '0');
  /* JSON has no leading zeros; past 18 digits jansson reads it. */
  if (*p == start || (*p < end && g_ascii_isdigit (**p)) || (*start == '0' && *p - start > 1))
    return FALSE;
  *out = negative ? -(gint64) value : (gint64) value;
  return TRUE;
}

/* The string chime_event_append_token_wire() wrote: only \" \\ \n \t
 * \r \b \f and \u00XX for a control character. */
char *
chime_wire_read_string (const char **p,
                   const char  *end)
{
  g_autoptr (GString) token = g_string_sized_new (16);

  while (*p < end && **p != '"')
    {
      const char *run = *p;

      while (*p < end && **p != '"' && **p != '\\' && (guchar) **p >= 0x20)
        (*p)++;
      g_string_append_len (token, run, *p - run);
      /* A raw control character is not JSON: the JSON reader says so. */
      if (*p < end && (guchar) **p < 0x20)
        return NULL;
      if (*p >= end || **p == '"')
        break;
      if (end - *p >= 2 && strchr ("\"\\ntrbf", (*p)[1]) != NULL && (*p)[1] != '\0')
        {
          char c = (*p)[1];

          g_string_append_c (token, c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' :
                                    c == 'b' ? '\b' : c == 'f' ? '\f' : c);
          *p += 2;
        }
      else if (end - *p >= 6 && (*p)[1] == 'u' && (*p)[2] == '0' && (*p)[3] == '0' &&
               ((*p)[4] == '0' || (*p)[4] == '1') && g_ascii_xdigit_value ((*p)[5]) >= 0)
        {
          g_string_append_c (token, (char) (g_ascii_xdigit_value ((*p)[4]) << 4 |
                                            g_ascii_xdigit_value ((*p)[5])));
          *p += 6;
        }
      else
        return NULL;
    }
  /* Nor is text that is not UTF-8, which the writer never sends. */
  if (*p >= end || !g_utf8_validate_len (token->str, token->len, NULL))
    return NULL;
  (*p)++;
  return g_string_free (g_steal_pointer (&token), FALSE);
}

ChimeEvent *
chime_event_from_token_wire (const char *text,
                             gsize       length,
                             GHashTable *runs)
{
  const char *p = text;
  const char *end = text + length;
  char run_id[RUN_ID_HEX_LEN + 1];
  g_autofree char *token = NULL;
  ChimeRunInfo *run;
  ChimeEvent *event;
  gint64 time, sequence;

  if (!chime_wire_skip_literal (&p, end, "{\"type\":\"llm_new_token\",\"run\":\"") ||
      (gsize) (end - p) < sizeof run_id - 1)
    return NULL;
  memcpy (run_id, p, sizeof run_id - 1);
  run_id[sizeof run_id - 1] = '\0';
  p += sizeof run_id - 1;
  if (!chime_wire_skip_literal (&p, end, "\",\"monotonic_time\":") ||
      !chime_wire_read_integer (&p, end, &time) ||
      !chime_wire_skip_literal (&p, end, ",\"sequence\":") ||
      !chime_wire_read_integer (&p, end, &sequence) || sequence < 0 ||
      !chime_wire_skip_literal (&p, end, ",\"token\":\"") || (token = chime_wire_read_string (&p, end)) == NULL ||
      !chime_wire_skip_literal (&p, end, "}") || p != end)
    return NULL;
  run = runs != NULL ? g_hash_table_lookup (runs, run_id) : NULL;
  if (run == NULL)
    return NULL;
  event = chime_event_new (CHIME_EVENT_LLM_NEW_TOKEN, run, token);
  event->monotonic_time = time;
  event->sequence = (guint64) sequence;
  return event;
}
