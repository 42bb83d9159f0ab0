/* The members of a provider's events, read with their types checked
 * (provider-fields.c). */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "provider-model.h"

/* Where a member sits in an event, for messages: a chain from the member
 * up to the event's top level, kept on the stack, so that a path costs
 * nothing until a message names it ("choices[0].delta.content"). */
typedef struct _ChimeFieldPath ChimeFieldPath;
struct _ChimeFieldPath {
  const ChimeFieldPath *parent;   /* NULL: a member of the event itself */
  const char           *key;      /* NULL: element @index of the parent array */
  gsize                 index;
};

/* What the API documents a member to be. */
typedef enum {
  CHIME_FIELD_STRING,
  CHIME_FIELD_OBJECT,
  CHIME_FIELD_ARRAY,
  CHIME_FIELD_INTEGER,
  CHIME_FIELD_COUNT,              /* an integer of 0 or more: tokens */
} ChimeFieldType;

/* "choices[0].delta.content". */
char     *chime_field_path_to_string     (const ChimeFieldPath *path);
/* NULL when @value is NULL (absent), JSON null or of @type; otherwise
 * what is wrong: "choices[0].delta.content as a number; expected a
 * string". */
char     *chime_field_check              (json_t               *value,
                                          const ChimeFieldPath *path,
                                          ChimeFieldType        type);

/* Checks @value (at @path) with chime_field_check(), and fails @stream
 * ("the stream sent …") and returns FALSE when it is of another type. */
gboolean  chime_provider_stream_check    (ChimeModelStream     *stream,
                                          json_t               *value,
                                          const ChimeFieldPath *path,
                                          ChimeFieldType        type);
/* The member @path->key of @object (NULL: none) in *@value, NULL when
 * absent or null, checked as chime_provider_stream_check() does. */
gboolean  chime_provider_stream_member   (ChimeModelStream     *stream,
                                          json_t               *object,
                                          const ChimeFieldPath *path,
                                          ChimeFieldType        type,
                                          json_t              **value);
/* The string member @path->key of @object in *@value, NULL when absent
 * or null. */
gboolean  chime_provider_stream_string   (ChimeModelStream     *stream,
                                          json_t               *object,
                                          const ChimeFieldPath *path,
                                          const char          **value);
/* Keeps the string member @path->key of @object in *@slot (replacing
 * what was there) when it has one; FALSE when it is not a string. */
gboolean  chime_provider_stream_keep_string (ChimeModelStream     *stream,
                                             char                **slot,
                                             json_t               *object,
                                             const ChimeFieldPath *path);
/* The count member @path->key of @object in *@value, -1 when absent or
 * null. */
gboolean  chime_provider_stream_count    (ChimeModelStream     *stream,
                                          json_t               *object,
                                          const ChimeFieldPath *path,
                                          gint64               *value);
