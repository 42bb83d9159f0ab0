/* Events across a process boundary (event-wire.c). */
#pragma once

#include "event-private.h"

/* Every field of @event a handler can read. Its run, ancestors included,
 * with @with_run; else only the run's id, for a reader that has the run
 * from chime_run_info_to_wire() already (a host process gets each run
 * once, not with every token). */
json_t       *chime_event_to_wire      (ChimeEvent         *event,
                                        gboolean            with_run);
json_t       *chime_run_info_to_wire   (const ChimeRunInfo *info);
/* Appends to @out the JSON text chime_event_to_wire (@event, FALSE) would
 * make, written directly, for a token without a chunk (the common event,
 * worth no JSON tree); FALSE, with nothing appended, for any other. */
gboolean      chime_event_append_token_wire (ChimeEvent *event,
                                             GString    *out);

/* The event @wire describes (a new reference), or NULL with @error set
 * when @wire is not what chime_event_to_wire() makes. A run given by id
 * is looked up in @runs (id -> ChimeRunInfo *; may be NULL). */
ChimeEvent   *chime_event_from_wire    (json_t             *wire,
                                        GHashTable         *runs,
                                        GError            **error);
/* The run chime_run_info_to_wire() describes, or NULL with @error. */
ChimeRunInfo *chime_run_info_from_wire (json_t             *wire,
                                        GError            **error);
/* The id of the run @wire describes, as event wires name it. */
const char   *chime_run_info_wire_id   (json_t             *wire);

/* Appends @text as a JSON string, as jansson writes it (its short
 * escapes, \u00XX for other control characters, UTF-8 as it is). */
void          chime_wire_append_json_string (GString    *out,
                                             const char *text);

/* Writes @value in decimal to @out (no terminator) and returns the length:
 * what "%" G_GINT64_FORMAT writes, without printf's cost, which was a
 * fifth of a published event's formatting (docs/benchmarks.md, j1). */
gsize         chime_wire_format_int64 (char   out[20],
                                       gint64 value);

/* Readers of the text the writers above make, without a JSON parser:
 * each moves *@p past what it read, or returns FALSE (NULL) when the text
 * there is not that form (a JSON reader then reads it, or says what is
 * wrong). @literal, exactly; an integer as jansson writes one; a string's
 * body after its opening quote, as chime_wire_append_json_string() writes
 * it (a new string; its closing quote read too). */
gboolean      chime_wire_skip_literal (const char **p,
                                       const char  *end,
                                       const char  *literal);
gboolean      chime_wire_read_integer (const char **p,
                                       const char  *end,
                                       gint64      *out);
char         *chime_wire_read_string  (const char **p,
                                       const char  *end);

/* The token event chime_event_append_token_wire() wrote as @text, read
 * without a JSON parser (a new reference); NULL when @text is not exactly
 * that form or names a run not in @runs: then chime_event_from_wire()
 * reads it, or says what is wrong. */
ChimeEvent   *chime_event_from_token_wire (const char *text,
                                           gsize       length,
                                           GHashTable *runs);
