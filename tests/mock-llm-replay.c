/* mock-llm-server: replaying recorded streams event by event, one of
 * their events changed (`patch`), and the synthetic streams of `huge`. */
#include "config.h"

#include "mock-llm-server.h"

#include <string.h>

/* How long a stalled stream waits for the client to give up. */
#define STALL_TIMEOUT_S 600
/* `huge` streams are written in chunks of about this size. */
#define HUGE_BATCH_SIZE (64 * 1024)

/* ------------------------------------------------------------------ */
/* Replaying streams                                                  */
/* ------------------------------------------------------------------ */

typedef struct
{
  const char *data;
  gsize       length;
} Piece;

/* Cuts an SSE stream into events, each ending just after its blank line
 * (any of LF, CR, CRLF); bytes after the last blank line form one more
 * piece. */
static GArray *
split_events (const char *text,
              gsize       length)
{
  GArray *pieces = g_array_new (FALSE, FALSE, sizeof (Piece));
  gsize start = 0;
  gsize line_start = 0;
  gsize i = 0;

  while (i < length)
    {
      gboolean blank;

      if (text[i] != '\r' && text[i] != '\n')
        {
          i++;
          continue;
        }
      blank = i == line_start;
      i += text[i] == '\r' && i + 1 < length && text[i + 1] == '\n' ? 2 : 1;
      line_start = i;
      if (blank)
        {
          Piece piece = { text + start, i - start };

          g_array_append_val (pieces, piece);
          start = i;
        }
    }
  if (start < length)
    {
      Piece piece = { text + start, length - start };

      g_array_append_val (pieces, piece);
    }
  return pieces;
}

static gboolean
has_line (const Piece *piece,
          const char  *wanted)
{
  gsize wanted_len = strlen (wanted);
  const char *p = piece->data;
  const char *end = piece->data + piece->length;

  while (p < end)
    {
      const char *eol = p;

      while (eol < end && *eol != '\n' && *eol != '\r')
        eol++;
      if ((gsize) (eol - p) == wanted_len && memcmp (p, wanted, wanted_len) == 0)
        return TRUE;
      p = eol + 1;
    }
  return FALSE;
}

/* The event that ends a successful stream: `data: [DONE]` for OpenAI,
 * `event: message_stop` for Anthropic. */
static gboolean
is_terminator (const Piece *piece)
{
  return has_line (piece, "data: [DONE]") || has_line (piece, "event: message_stop");
}

static gboolean
fixture_name_is_safe (const char *name)
{
  return name[0] != '\0' && name[0] != '.' && strchr (name, '/') == NULL && strchr (name, '\\') == NULL;
}

static GBytes *
load_fixture (const char *name,
              GError    **error)
{
  g_autofree char *path = g_build_filename (server.fixture_dir, name, NULL);
  char *contents;
  gsize length;

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;
  return g_bytes_new_take (contents, length);
}

GBytes *
load_fixture_or_answer (Exchange   *exchange,
                        const char *name)
{
  g_autoptr (GError) error = NULL;
  GBytes *bytes;

  if (!fixture_name_is_safe (name))
    {
      send_mock_error (exchange, "bad fixture name '%s'", name);
      return NULL;
    }
  bytes = load_fixture (name, &error);
  if (bytes == NULL)
    send_mock_error (exchange, "%s", error->message);
  return bytes;
}

/* ------------------------------------------------------------------ */
/* Patching an event                                                  */
/* ------------------------------------------------------------------ */

/* Sets (or, without a value, removes) the member @path of @root. */
static gboolean
apply_patch (json_t      *root,
             const Patch *patch,
             GError     **error)
{
  guint n = g_strv_length (patch->path);
  json_t *parent = root;
  guint64 index;

  for (guint i = 0; i + 1 < n && parent != NULL; i++)
    parent = json_is_array (parent) && parse_uint (patch->path[i], 0, G_MAXUINT32, &index)
             ? json_array_get (parent, index) : json_object_get (parent, patch->path[i]);
  if (json_is_object (parent))
    {
      if (patch->value != NULL)
        json_object_set (parent, patch->path[n - 1], patch->value);
      else if (json_object_del (parent, patch->path[n - 1]) != 0)
        parent = NULL;
    }
  else if (json_is_array (parent) && parse_uint (patch->path[n - 1], 0, G_MAXUINT32, &index) &&
           index < json_array_size (parent))
    {
      if (patch->value != NULL)
        json_array_set (parent, index, patch->value);
      else
        json_array_remove (parent, index);
    }
  else
    parent = NULL;
  if (parent == NULL)
    {
      g_autofree char *path = g_strjoinv (".", patch->path);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "patch: event %u has no '%s'", patch->event, path);
      return FALSE;
    }
  return TRUE;
}

/* The event @piece with the patch applied to the JSON of its data line. */
static char *
patch_piece (const Piece *piece,
             const Patch *patch,
             GError     **error)
{
  const char *end = piece->data + piece->length;
  const char *line = piece->data;
  g_autoptr (json_t) json = NULL;
  g_autofree char *text = NULL;
  const char *value, *eol;

  while (line < end && strncmp (line, "data:", 5) != 0)
    {
      const char *next = memchr (line, '\n', end - line);

      line = next != NULL ? next + 1 : end;
    }
  if (line >= end)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "patch: event %u has no data", patch->event);
      return NULL;
    }
  value = line + 5 + (line[5] == ' ');
  for (eol = value; eol < end && *eol != '\r' && *eol != '\n'; eol++)
    ;
  json = json_loadb (value, eol - value, 0, NULL);
  if (json == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "patch: event %u is not JSON", patch->event);
      return NULL;
    }
  if (!apply_patch (json, patch, error))
    return NULL;
  text = json_to_text (json);
  return g_strdup_printf ("%.*sdata: %s%.*s", (int) (line - piece->data), piece->data, text,
                          (int) (end - eol), eol);
}

/* Blocks until the client closes the connection (or a long timeout), for
 * streams that stop sending but keep the connection open. */
static void
wait_for_client_close (Exchange *exchange)
{
  char buffer[4096];

  g_socket_set_timeout (exchange->socket, STALL_TIMEOUT_S);
  while (g_input_stream_read (G_INPUT_STREAM (exchange->in), buffer, sizeof buffer, NULL, NULL) > 0)
    ;
}

void
replay (Exchange     *exchange,
        const Replay *replay)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GBytes) error_event = NULL;
  g_autoptr (GArray) pieces = NULL;
  g_autofree char *patched = NULL;
  gboolean is_json = g_str_has_suffix (replay->fixture, ".json");
  const char *data;
  gsize length;
  guint sent = 0;

  bytes = load_fixture_or_answer (exchange, replay->fixture);
  if (bytes == NULL)
    return;
  if (replay->end == REPLAY_END_ERROR_EVENT)
    {
      const char *name = exchange->provider == PROVIDER_ANTHROPIC ?
                         "anthropic-error-event.sse" : "openai-error-event.sse";

      error_event = load_fixture (name, &error);
      if (error_event == NULL)
        {
          send_mock_error (exchange, "%s", error->message);
          return;
        }
    }
  if (is_json && (replay->drop_terminator || replay->end == REPLAY_END_ERROR_EVENT))
    {
      send_mock_error (exchange, "this scenario needs a stream, not '%s'", replay->fixture);
      return;
    }

  data = g_bytes_get_data (bytes, &length);
  pieces = is_json ? g_array_new (FALSE, FALSE, sizeof (Piece)) : split_events (data, length);
  if (is_json)
    g_array_append_val (pieces, ((Piece) { data, length }));
  if (replay->patch != NULL)
    {
      if (replay->patch->event >= pieces->len)
        {
          send_mock_error (exchange, "patch: '%s' has %u events", replay->fixture, pieces->len);
          return;
        }
      patched = patch_piece (&g_array_index (pieces, Piece, replay->patch->event), replay->patch, &error);
      if (patched == NULL)
        {
          send_mock_error (exchange, "%s", error->message);
          return;
        }
      g_array_index (pieces, Piece, replay->patch->event) = (Piece) { patched, strlen (patched) };
    }
  if (is_json)
    send_head (exchange, 200, "application/json", (gssize) g_array_index (pieces, Piece, 0).length,
               replay->extra_headers);
  else
    send_head (exchange, 200, "text/event-stream; charset=utf-8", -1, replay->extra_headers);

  for (guint i = 0; i < pieces->len && sent < replay->limit && exchange->alive; i++)
    {
      const Piece *piece = &g_array_index (pieces, Piece, i);

      if (replay->drop_terminator && is_terminator (piece))
        continue;
      if (sent > 0 && replay->pause_ms > 0)
        g_usleep ((gulong) replay->pause_ms * 1000);
      send_piece (exchange, piece->data, piece->length);
      sent++;
    }

  switch (replay->end)
    {
    case REPLAY_END_NORMAL:
      send_end (exchange);
      break;
    case REPLAY_END_STALL:
      wait_for_client_close (exchange);
      break;
    case REPLAY_END_DISCONNECT:
      /* No final chunk: the client sees the body cut short. */
      break;
    case REPLAY_END_ERROR_EVENT:
      data = g_bytes_get_data (error_event, &length);
      send_piece (exchange, data, length);
      send_end (exchange);
      break;
    }
}

void
send_huge (Exchange *exchange,
           guint     n)
{
  g_autoptr (GString) batch = g_string_sized_new (HUGE_BATCH_SIZE + 1024);
  gboolean anthropic = exchange->provider == PROVIDER_ANTHROPIC;
  const char *openai_prefix =
    "data: {\"id\":\"chatcmpl-mock-huge\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[";

  send_head (exchange, 200, "text/event-stream; charset=utf-8", -1, NULL);
  if (anthropic)
    g_string_append (batch,
                     "event: message_start\n"
                     "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_huge\",\"type\":\"message\","
                     "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-mock\",\"stop_reason\":null,"
                     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
                     "event: content_block_start\n"
                     "data: {\"type\":\"content_block_start\",\"index\":0,"
                     "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
  else
    g_string_append_printf (batch, "%s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                            "\"logprobs\":null,\"finish_reason\":null}]}\n\n", openai_prefix);

  for (guint i = 0; i < n && exchange->alive; i++)
    {
      if (anthropic)
        g_string_append (batch,
                         "event: content_block_delta\n"
                         "data: {\"type\":\"content_block_delta\",\"index\":0,"
                         "\"delta\":{\"type\":\"text_delta\",\"text\":\" tok\"}}\n\n");
      else
        g_string_append_printf (batch, "%s{\"index\":0,\"delta\":{\"content\":\" tok\"},"
                                "\"logprobs\":null,\"finish_reason\":null}]}\n\n", openai_prefix);
      if (batch->len >= HUGE_BATCH_SIZE)
        {
          send_piece (exchange, batch->str, batch->len);
          g_string_truncate (batch, 0);
        }
    }

  if (anthropic)
    g_string_append_printf (batch,
                            "event: content_block_stop\n"
                            "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                            "event: message_delta\n"
                            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                            "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%u}}\n\n"
                            "event: message_stop\n"
                            "data: {\"type\":\"message_stop\"}\n\n", n);
  else
    g_string_append_printf (batch,
                            "%s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
                            "%s],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":%u,\"total_tokens\":%u}}\n\n"
                            "data: [DONE]\n\n", openai_prefix, openai_prefix, n, n + 1);
  send_piece (exchange, batch->str, batch->len);
  send_end (exchange);
}
