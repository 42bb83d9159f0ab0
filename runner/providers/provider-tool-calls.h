/* Tool calls streamed by an HTTP chat model provider, assembled from
 * their pieces (provider-tool-calls.c).
 *
 * Both APIs stream a call in pieces keyed by an index (OpenAI's
 * delta.tool_calls[].index, Anthropic's content block index): the first
 * piece names the call (id, name), later ones carry fragments of its
 * arguments' JSON text. The fragments are not JSON until the last one,
 * so the arguments are parsed once, when the stream is over. */
#pragma once

#include <glib.h>
#include <jansson.h>

typedef struct _ChimeToolCallBuffer ChimeToolCallBuffer;

/* How much of a model's tool calls is kept: more is a failed stream,
 * not memory without bound. */
#define CHIME_TOOL_CALLS_MAX       128
#define CHIME_TOOL_CALL_MAX_ARGS   (1024 * 1024)

ChimeToolCallBuffer *chime_tool_call_buffer_new   (void);
void                 chime_tool_call_buffer_free  (ChimeToolCallBuffer *buffer);
/* Adds a piece of the call @index (@id, @name: NULL when the piece does
 * not say; @args: a fragment, may be NULL). NULL, or why not (a bound
 * passed), to free. */
char                *chime_tool_call_buffer_add   (ChimeToolCallBuffer *buffer,
                                                   gint64               index,
                                                   const char          *id,
                                                   const char          *name,
                                                   const char          *args);
/* The calls in index order: @tool_calls gets those whose arguments are
 * a JSON object ("" counts as {}, a call without arguments), and
 * @invalid_tool_calls the others, with the reason in "error". Each is a
 * new array, or NULL when there is none. */
void                 chime_tool_call_buffer_finish (ChimeToolCallBuffer *buffer,
                                                    json_t             **tool_calls,
                                                    json_t             **invalid_tool_calls);
/* A LangChain tool_call_chunk {"name", "args", "id", "index", "type":
 * "tool_call_chunk"}; NULL members become null. New reference. */
json_t              *chime_tool_call_chunk_new     (gint64      index,
                                                    const char *id,
                                                    const char *name,
                                                    const char *args);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeToolCallBuffer, chime_tool_call_buffer_free)
