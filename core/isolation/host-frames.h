/* Messages between chime and a handler's host process (host-frames.c). */
#pragma once

#include <jansson.h>
#include <glib.h>

/* Why a frame could not be read. */
typedef enum {
  CHIME_FRAME_CLOSED,      /* the other side went away (EOF) */
  CHIME_FRAME_TIMED_OUT,   /* nothing came before the deadline */
  CHIME_FRAME_BROKEN,      /* not a frame: a length past the bound, or not JSON */
  CHIME_FRAME_IO,          /* read or write failed */
} ChimeFrameError;

#define CHIME_FRAME_ERROR (chime_frame_error_quark ())
GQuark chime_frame_error_quark (void);

/* The largest frame, either way: an event with a huge prompt is far below. */
#define CHIME_FRAME_MAX (64 * 1024 * 1024)

/* Writes @message as one frame: 4 bytes of length (little endian), then
 * its compact JSON text. */
gboolean chime_frame_write (int       fd,
                            json_t   *message,
                            GError  **error);

/* Adds @message as one frame to @out, for chime_frame_flush() to write
 * with others in one system call. */
gboolean chime_frame_append (GString  *out,
                             json_t   *message,
                             GError  **error);
/* A frame written as text: chime_frame_begin() returns where it starts,
 * the caller appends the JSON text, and chime_frame_end() puts the length
 * in front (FALSE, and the frame taken away, past CHIME_FRAME_MAX). */
gsize    chime_frame_begin  (GString  *out);
gboolean chime_frame_end    (GString  *out,
                             gsize     at,
                             GError  **error);
/* Reads the `{"seq":N` a frame's @text starts with (both an event and
 * its answer do), for the readers that take the common frames by hand:
 * sets @seq and returns the offset just past N, or 0 when @text does not
 * start so. */
gsize    chime_frame_read_seq (const char *text,
                               gsize       length,
                               guint64    *seq);
/* Writes the frames in @out, and empties it. */
gboolean chime_frame_flush  (int       fd,
                             GString  *out,
                             GError  **error);

/* Frames read from one socket, buffered: one read() takes many. */
typedef struct _ChimeFrameReader ChimeFrameReader;

ChimeFrameReader *chime_frame_reader_new  (int fd);
void              chime_frame_reader_free (ChimeFrameReader *reader);

/* Reads one frame; waits until @deadline (monotonic µs; 0: for ever). */
json_t           *chime_frame_reader_read (ChimeFrameReader *reader,
                                           gint64            deadline,
                                           GError          **error);

/* The same, without parsing: the frame's text, valid until the next
 * read, and its @length. For a reader that knows some frames' exact form
 * and can take them faster than a JSON parser. */
const char       *chime_frame_reader_read_text (ChimeFrameReader *reader,
                                                gint64            deadline,
                                                gsize            *length,
                                                GError          **error);
/* A frame's text as JSON; NULL with CHIME_FRAME_BROKEN if it is not. */
json_t           *chime_frame_parse (const char *text,
                                     gsize       length,
                                     GError    **error);

/* Whether a whole frame is buffered already (read() needs no wait). */
gboolean          chime_frame_reader_has_frame (ChimeFrameReader *reader);
