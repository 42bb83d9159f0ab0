/* JSON string literals decoded without jansson: for the hot paths that
 * read one string out of a text without building a JSON tree (the token
 * templates of streamed events, the fake model's chunk list). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Decodes the JSON string literal whose opening quote is at @p into @out
 * (emptied first). Returns the byte after its closing quote, or NULL when
 * it is not one that jansson would turn into the same C string:
 * unterminated before @end, a raw control character, a bad escape,
 * \u0000, a lone surrogate, invalid UTF-8. Those are left to jansson. */
const char *chime_json_decode_string_literal (const char *p,
                                              const char *end,
                                              GString    *out);

G_END_DECLS
