/* LLMResult and ChatGenerationChunk as LangChain serializes them. */
#include "config.h"

#include "llm-result.h"

#include <string.h>

char *
chime_llm_message_id (const ChimeRunId *run_id)
{
  char text[CHIME_RUN_ID_STRING_LEN];

  chime_run_id_to_string (run_id, text);
  return g_strconcat ("run-", text, NULL);
}

/* @text: a JSON string, which the message takes a reference to. */
static json_t *
ai_message_chunk (json_t     *text,
                  const char *message_id)
{
  return json_pack ("{s:O, s:{}, s:{}, s:s, s:n, s:s, s:b, s:[], s:[], s:n, s:[]}",
                    "content", text,
                    "additional_kwargs",
                    "response_metadata",
                    "type", "AIMessageChunk",
                    "name",
                    "id", message_id,
                    "example", FALSE,
                    "tool_calls",
                    "invalid_tool_calls",
                    "usage_metadata",
                    "tool_call_chunks");
}

json_t *
chime_llm_chunk_build (const char *text,
                       const char *message_id)
{
  g_autoptr (json_t) text_json = json_string (text);

  return json_pack ("{s:O, s:n, s:o, s:s}",
                    "text", text_json,
                    "generation_info",
                    "message", ai_message_chunk (text_json, message_id),
                    "type", "ChatGenerationChunk");
}

/* Whether @length bytes at @text are all ASCII, eight at a time. */
static gboolean
is_ascii (const char *text,
          gsize       length)
{
  const guint64 highs = G_GUINT64_CONSTANT (0x8080808080808080);
  guint64 seen = 0;
  gsize i = 0;

  for (; i + 8 <= length; i += 8)
    {
      guint64 word;

      memcpy (&word, text + i, 8);
      seen |= word;
    }
  for (; i < length; i++)
    seen |= (guchar) text[i];
  return (seen & highs) == 0;
}

/* json_string() of the whole response text. jansson checks UTF-8 one code
 * point at a time, about 15 instructions a byte (6 M of bench row h1's
 * 130 M); ASCII, the usual case, is valid UTF-8 and is checked here a word
 * at a time. Anything else still goes through jansson's check, so invalid
 * text gives NULL as before. */
static json_t *
text_string (const char *text)
{
  gsize length = strlen (text);

  return is_ascii (text, length) ? json_stringn_nocheck (text, length) : json_stringn (text, length);
}

json_t *
chime_llm_result_build (const char *text,
                        const char *message_id,
                        json_t     *response_metadata,
                        json_t     *usage_metadata,
                        json_t     *generation_info)
{
  /* The text appears twice (the generation's and the message's): one
   * JSON string for both, checked and copied once (it is the whole
   * response, 400 kB for bench row h1's stream). */
  g_autoptr (json_t) text_json = text_string (text);
  json_t *message = ai_message_chunk (text_json, message_id);
  json_t *generation;

  if (response_metadata != NULL)
    json_object_set (message, "response_metadata", response_metadata);
  if (usage_metadata != NULL)
    json_object_set (message, "usage_metadata", usage_metadata);
  generation = json_pack ("{s:O, s:O?, s:o, s:s}",
                          "text", text_json,
                          "generation_info", generation_info,
                          "message", message,
                          "type", "ChatGenerationChunk");
  return json_pack ("{s:[[o]], s:n, s:n, s:s}",
                    "generations", generation,
                    "llm_output",
                    "run",
                    "type", "LLMResult");
}
