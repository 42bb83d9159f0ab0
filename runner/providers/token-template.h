/* Token templates (token-template.c), for the streams of the HTTP
 * chat model providers. */
#pragma once

#include <glib.h>

/* Token events of a stream are nearly all alike: the same JSON with a
 * different string in one place ({"id":"chatcmpl-1",...,"delta":
 * {"content":"TOKEN"},...}). Parsing each into a DOM costs far more than
 * everything else a token does, so a stream remembers the last event that
 * yielded a token and where that token's string literal was, and takes
 * the token straight out of any next event that is byte for byte the
 * same outside that literal. Such an event would be handled exactly as
 * the remembered one (the contract of ChimeProviderOps.handle_event, in
 * provider-model.h), so nothing is lost by not parsing it. Anything else
 * is handled in full. */
typedef struct _ChimeTokenTemplate ChimeTokenTemplate;

ChimeTokenTemplate *chime_token_template_new    (void);
void                chime_token_template_free   (ChimeTokenTemplate *template);
/* Remembers @data (of SSE type @event_type), which yielded @token, when
 * exactly one string literal in it decodes to @token. FALSE otherwise,
 * and the template is then empty. */
gboolean            chime_token_template_learn  (ChimeTokenTemplate *template,
                                                 const char         *event_type,
                                                 const char         *data,
                                                 gsize               length,
                                                 const char         *token);
/* The token of an event that differs from the remembered one only inside
 * the token's literal, decoded (valid until the next call); NULL when the
 * event must be handled in full, or the token would be empty. */
const char         *chime_token_template_match  (ChimeTokenTemplate *template,
                                                 const char         *event_type,
                                                 const char         *data,
                                                 gsize               length);
/* The same for an event seen in the raw stream, before any SSE parsing:
 * the data of a `message` event starts at @data, its end unknown, the
 * stream's bytes ending at @end. On a match, *@data_end is the byte after
 * the data. */
const char         *chime_token_template_match_raw (ChimeTokenTemplate *template,
                                                    const char         *data,
                                                    const char         *end,
                                                    const char        **data_end);
/* The length of the token the last match returned. */
gsize               chime_token_template_get_token_length (const ChimeTokenTemplate *template);
void                chime_token_template_forget (ChimeTokenTemplate *template);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeTokenTemplate, chime_token_template_free)
