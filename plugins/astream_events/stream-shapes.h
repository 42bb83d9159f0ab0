/* astream_events — LangChain's message and generation shapes, as its
 * astream_events v2 stream writes them (stream-shapes.c). Each returns a
 * new reference. */
#pragma once

#include <chime/plugin.h>

/* on_chat_model_stream's chunk: the ChatGenerationChunk's message. */
json_t *astream_chat_stream_chunk (ChimeEvent *event);
/* on_llm_stream's chunk: a GenerationChunk. */
json_t *astream_llm_stream_chunk  (ChimeEvent *event);
/* on_chat_model_end's output: the first generation's message, else an
 * AIMessage of its text. */
json_t *astream_chat_end_output   (json_t     *response);
/* on_llm_end's output: {"generations": [[{"text", "generation_info",
 * "type"}]], "llm_output": ...}. */
json_t *astream_llm_end_output    (json_t     *response);
