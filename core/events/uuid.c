/* UUIDv7 generation. Ids are created once per run (not per event), so one
 * lock guarding the monotonic counter costs nothing that matters. */
#include "config.h"

#include "uuid.h"

#include <string.h>

static GMutex uuid_lock;
static guint64 last_ms;
static guint32 counter;

void
chime_run_id_generate (ChimeRunId *out)
{
  guint64 ms = (guint64) (g_get_real_time () / 1000);
  guint32 seq;
  guint32 r0 = g_random_int ();
  guint32 r1 = g_random_int ();
  guint32 r2 = g_random_int ();

  g_mutex_lock (&uuid_lock);
  if (ms <= last_ms)
    {
      /* Same (or an earlier, if the clock stepped back) millisecond: count
       * up so ids stay ordered; borrow a millisecond on overflow. */
      ms = last_ms;
      if (++counter > 0xfff)
        {
          ms = ++last_ms;
          counter = r0 & 0x3ff;
        }
    }
  else
    {
      last_ms = ms;
      /* Start low in the counter space to leave room to count up. */
      counter = r0 & 0x3ff;
    }
  seq = counter;
  g_mutex_unlock (&uuid_lock);

  out->bytes[0] = (guint8) (ms >> 40);
  out->bytes[1] = (guint8) (ms >> 32);
  out->bytes[2] = (guint8) (ms >> 24);
  out->bytes[3] = (guint8) (ms >> 16);
  out->bytes[4] = (guint8) (ms >> 8);
  out->bytes[5] = (guint8) ms;
  out->bytes[6] = (guint8) (0x70 | ((seq >> 8) & 0x0f));
  out->bytes[7] = (guint8) seq;
  out->bytes[8] = (guint8) (0x80 | ((r1 >> 24) & 0x3f));
  out->bytes[9] = (guint8) (r1 >> 16);
  out->bytes[10] = (guint8) (r1 >> 8);
  out->bytes[11] = (guint8) r1;
  memcpy (&out->bytes[12], &r2, 4);
}

void
chime_run_id_to_string (const ChimeRunId *id,
                        char              out[CHIME_RUN_ID_STRING_LEN])
{
  static const char hex[] = "0123456789abcdef";
  guint o = 0;

  for (guint i = 0; i < 16; i++)
    {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        out[o++] = '-';
      out[o++] = hex[id->bytes[i] >> 4];
      out[o++] = hex[id->bytes[i] & 0x0f];
    }
  out[o] = '\0';
}

gboolean
chime_run_id_equal (const ChimeRunId *a,
                    const ChimeRunId *b)
{
  return memcmp (a->bytes, b->bytes, sizeof a->bytes) == 0;
}
