/* Helpers shared by the tests of the Server-Sent Events parser
 * (tests/test-sse-parser-*.c): parsing text in pieces, recording the
 * events, and comparing them. */
#pragma once

#include "config.h"

#include "providers/sse-parser.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* An event as the parser handed it out, copied. */
typedef struct
{
  char  *event;
  char  *data;
  gsize  data_len;
  char  *id;
  gint64 retry;
} Recorded;

/* An event a test expects. */
typedef struct
{
  const char *event;
  const char *data;
  const char *id;
  gint64      retry;
} Expected;

/* An array of Recorded events. */
GPtrArray *new_event_list (void);

/* A parser that appends every event it dispatches to @events. */
ChimeSseParser *new_parser (GPtrArray *events);

/* Feeds @text in pieces of @piece_size bytes (all at once when 0) and
 * finishes the stream. */
GPtrArray *parse_in_pieces (const char *text,
                            gsize       length,
                            gsize       piece_size);

/* Feeds @text all at once and finishes the stream. */
GPtrArray *parse_text (const char *text);

/* Feeds @text as two pieces cut at @split. */
GPtrArray *parse_split (const char *text,
                        gsize       length,
                        gsize       split);

/* @actual holds the same events as @expected; @how names the case. */
void assert_same_events (GPtrArray  *expected,
                         GPtrArray  *actual,
                         const char *how);

/* @actual holds exactly the @n_expected events of @expected. */
void assert_events (GPtrArray      *actual,
                    const Expected *expected,
                    gsize           n_expected);

/* @text dispatches nothing. */
void assert_no_events (const char *text);

/* The contents of tests/fixtures/@name (fails the test when it cannot). */
char *read_fixture (const char *name,
                    gsize      *length);

/* Whole, one byte at a time, and cut in two at every position: always the
 * same events. */
void check_every_split (const char *text,
                        gsize       length,
                        const char *name);
