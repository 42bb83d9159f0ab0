/* astream_events — the shapes LangChain gives a message, a chunk and a
 * generation in the v2 stream (see stream-shapes.h). */
#include "stream-shapes.h"

/* AIMessage(content=text) or AIMessageChunk(content=text) as LangChain
 * serializes it. */
static json_t *
ai_message (const char *type,
            const char *text)
{
  return json_pack ("{s:s, s:{}, s:{}, s:s, s:n, s:n, s:b, s:[], s:[], s:n}",
                    "content", text != NULL ? text : "",
                    "additional_kwargs",
                    "response_metadata",
                    "type", type,
                    "name",
                    "id",
                    "example", FALSE,
                    "tool_calls",
                    "invalid_tool_calls",
                    "usage_metadata");
}

/* on_chat_model_stream's chunk: the ChatGenerationChunk's message. */
json_t *
astream_chat_stream_chunk (ChimeEvent *event)
{
  json_t *message = json_object_get (chime_event_get_chunk (event), "message");

  if (json_is_object (message))
    return json_incref (message);
  return ai_message ("AIMessageChunk", chime_event_get_token (event));
}

/* on_llm_stream's chunk: a GenerationChunk. A chunk with a message (a chat
 * chunk, or the one chime builds when the emitter gave none) is reduced to
 * the generation's fields. */
json_t *
astream_llm_stream_chunk (ChimeEvent *event)
{
  json_t *chunk = chime_event_get_chunk (event);
  json_t *text = json_object_get (chunk, "text");
  json_t *info = json_object_get (chunk, "generation_info");

  if (json_is_object (chunk) && json_object_get (chunk, "message") == NULL)
    return json_incref (chunk);
  return json_pack ("{s:o, s:o, s:s}",
                    "text", json_is_string (text) ? json_incref (text)
                                                  : json_string (chime_event_get_token (event)),
                    "generation_info", json_is_object (info) ? json_incref (info) : json_null (),
                    "type", "GenerationChunk");
}

/* on_chat_model_end's output: the first generation's message, else an
 * AIMessage of its text. */
json_t *
astream_chat_end_output (json_t *response)
{
  json_t *generation = json_array_get (json_array_get (json_object_get (response, "generations"), 0), 0);
  json_t *message = json_object_get (generation, "message");

  if (json_is_object (message))
    return json_incref (message);
  return ai_message ("ai", json_string_value (json_object_get (generation, "text")));
}

/* on_llm_end's output: {"generations": [[{"text", "generation_info",
 * "type"}]], "llm_output": ...}. */
json_t *
astream_llm_end_output (json_t *response)
{
  json_t *generations = json_object_get (response, "generations");
  json_t *llm_output = json_object_get (response, "llm_output");
  json_t *out = json_array ();
  gsize i, j;
  json_t *list, *generation;

  json_array_foreach (generations, i, list)
    {
      json_t *out_list = json_array ();

      json_array_foreach (list, j, generation)
        {
          json_t *text = json_object_get (generation, "text");
          json_t *info = json_object_get (generation, "generation_info");
          json_t *type = json_object_get (generation, "type");

          json_array_append_new (out_list,
                                 json_pack ("{s:o, s:o, s:o}",
                                            "text", json_is_string (text) ? json_incref (text) : json_string (""),
                                            "generation_info", info != NULL ? json_incref (info) : json_null (),
                                            "type", json_is_string (type) ? json_incref (type)
                                                                          : json_string ("Generation")));
        }
      json_array_append_new (out, out_list);
    }
  return json_pack ("{s:o, s:o}", "generations", out,
                    "llm_output", llm_output != NULL ? json_incref (llm_output) : json_null ());
}

