/* What the libFuzzer harnesses of tests/fuzz/ share: a reader of the
 * fuzzer's bytes, piece sizes for feeding them as a network would, and
 * how a broken invariant is reported (an abort, which libFuzzer records
 * as a crash with the input that caused it). */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports a broken invariant with what was compared, then aborts. */
G_GNUC_NORETURN static inline void
fuzz_fail (const char *what,
           const char *expected,
           const char *actual)
{
  fprintf (stderr, "fuzz: %s\n  expected: %s\n  actual:   %s\n", what,
           expected != NULL ? expected : "(null)", actual != NULL ? actual : "(null)");
  abort ();
}

/* The size of the next piece, from a xorshift generator: mostly a few
 * bytes (every split point matters), sometimes a few kilobytes. */
static inline gsize
fuzz_next_piece (guint32 *state)
{
  guint32 x = *state;

  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  if ((x & 0xf) == 0)
    return 1 + (x >> 4) % 4096;
  return 1 + (x >> 4) % 16;
}

/* Reads the fuzzer's input as a sequence of values. Past the end every
 * read gives zeros or empty strings, so a harness never runs out. */
typedef struct {
  const uint8_t *data;
  size_t         size;
  size_t         offset;
} FuzzReader;

static inline guint8
fuzz_read_byte (FuzzReader *reader)
{
  if (reader->offset >= reader->size)
    return 0;
  return reader->data[reader->offset++];
}

/* The bytes up to the next 0xff (or the end), NUL-terminated: any bytes,
 * valid UTF-8 or not, as callers of the API may pass. Free with g_free(). */
static inline char *
fuzz_read_string (FuzzReader *reader)
{
  const uint8_t *start = reader->data + MIN (reader->offset, reader->size);
  const uint8_t *end = reader->data + reader->size;
  const uint8_t *stop = memchr (start, 0xff, (size_t) (end - start));
  size_t length = (size_t) ((stop != NULL ? stop : end) - start);

  reader->offset += length + (stop != NULL ? 1 : 0);
  return g_strndup ((const char *) start, length);
}

static inline GLogWriterOutput
fuzz_log_writer (GLogLevelFlags   level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  GLogWriterOutput output = g_log_writer_default (level, fields, n_fields, user_data);

  /* abort() rather than GLib's breakpoint trap (SIGTRAP), which libFuzzer
   * does not catch: it would die without saving the input. */
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
  return output;
}

/* Makes GLib's criticals (a g_return_if_fail() that failed) and warnings
 * crashes, so that the fuzzer reports them with their input. */
static inline void
fuzz_make_warnings_fatal (void)
{
  g_log_set_writer_func (fuzz_log_writer, NULL, NULL);
}
