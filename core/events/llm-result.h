/* LangChain-shaped results of a streamed chat model call: the chunk each
 * llm_new_token carries and the LLMResult llm_end carries. */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <chime/event.h>

/* "run-<uuid>", the id LangChain gives the AI message of a streamed run. */
char   *chime_llm_message_id (const ChimeRunId *run_id);

/* A ChatGenerationChunk: {"text", "message": AIMessageChunk, "type"}.
 * New reference. */
json_t *chime_llm_chunk_build (const char *text,
                               const char *message_id);

/* An LLMResult (chime_llm_result_new() builds it for a run) with one ChatGenerationChunk for the whole @text, usage and
 * response metadata on its message (any of them may be NULL). New
 * reference. */
json_t *chime_llm_result_build (const char *text,
                              const char *message_id,
                              json_t     *response_metadata,
                              json_t     *usage_metadata,
                              json_t     *generation_info);
