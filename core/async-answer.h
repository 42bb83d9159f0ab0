/* A GAsyncResult for an operation that answers yes or an error, without
 * GTask (async-answer.c says why). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define CHIME_TYPE_ASYNC_ANSWER (chime_async_answer_get_type ())
G_DECLARE_FINAL_TYPE (ChimeAsyncAnswer, chime_async_answer, CHIME, ASYNC_ANSWER, GObject)

/* An answer for @callback, owed on the calling thread's default main
 * context; @source_tag names the operation (its _async function). */
ChimeAsyncAnswer *chime_async_answer_new       (gpointer            source_tag,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
/* Answers (TRUE, or @error, taken) and drops the caller's reference: at
 * once from a later dispatch of the answer's context, else from an idle,
 * as GTask does; never from inside the _async call. */
void              chime_async_answer_return    (ChimeAsyncAnswer   *answer,
                                                GError             *error);
/* The answer of @result, which must be one of @source_tag's. */
gboolean          chime_async_answer_propagate (GAsyncResult       *result,
                                                gpointer            source_tag,
                                                GError            **error);

G_END_DECLS
