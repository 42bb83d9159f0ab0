/* Compact JSON text of a value, byte for byte what json_dumps (value,
 * JSON_COMPACT | JSON_ENCODE_ANY) writes, several times faster on long
 * strings.
 *
 * A run's result holds its whole output three times (the output, the
 * generation's text, the message's content), and jansson escapes strings
 * one code point at a time: for a 100,000-token stream, writing the
 * result cost as much CPU as receiving the stream (docs/benchmarks.md).
 * Here a string is copied in runs of bytes that need no escape. */
#pragma once

#include <glib.h>
#include <jansson.h>

G_BEGIN_DECLS

/* Appends the compact JSON text of @value to @out. */
void  chime_json_append_compact (GString      *out,
                                 const json_t *value);
/* The compact JSON text of @value, and its length in *@length (may be
 * NULL). Free with g_free(). */
char *chime_json_dump_compact   (const json_t *value,
                                 gsize        *length);

G_END_DECLS
