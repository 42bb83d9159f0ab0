/* jetstream — the form of a message that carries several events.
 *
 * The body is the events' transport forms (compact JSON, which has no
 * raw newline) joined by "\n", in emission order; the Chime-Count header
 * gives their number, so a torn body is told from a whole one. A single
 * event is sent without the header, as it always was. */
#include "jetstream-message.h"

#include <stdlib.h>

guint
jetstream_message_get_count (natsMsg *message)
{
  const char *text = NULL;
  char *end = NULL;
  guint64 count;

  if (natsMsgHeader_Get (message, JETSTREAM_COUNT_HEADER, &text) != NATS_OK || text == NULL)
    return 1;
  if (!g_ascii_isdigit (text[0]))
    return 0;
  count = g_ascii_strtoull (text, &end, 10);
  if (*end != '\0' || count == 0 || count > JETSTREAM_MAX_COUNT)
    return 0;
  return (guint) count;
}
