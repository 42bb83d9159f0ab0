/* "Did you mean ...?" for misspelt keys, sections and values. */
#pragma once

#include <glib.h>

/* The candidate closest to @word by edit distance when it is close enough
 * to be a likely typo, else NULL. @candidates is NULL-terminated. */
const char *chime_suggest (const char         *word,
                           const char * const *candidates);

/* "; did you mean 'threads'?" or "; valid keys: a, b, c" (using @noun),
 * for appending to an error message. Newly allocated. */
char *chime_suggestion_suffix (const char         *word,
                               const char * const *candidates,
                               const char         *noun);

/* For a value that does not parse: " (a '# ...' after a value is part of
 * the value here: put the comment on a line of its own)" when @value has
 * what looks like an inline comment, else "". Static. */
const char *chime_suggest_inline_comment (const char *value);
