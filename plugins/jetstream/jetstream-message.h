/* jetstream — the form of a message that carries several events, shared
 * by the `jetstream` plugin and `chime consume` (jetstream-message.c). */
#pragma once

#include <glib.h>
#include <nats/nats.h>

/* The header that says how many events a message carries. A message
 * without it carries one (the form of one event per message). */
#define JETSTREAM_COUNT_HEADER "Chime-Count"

/* A message carries at most this many events: a count header beyond it
 * is refused as malformed rather than believed. */
#define JETSTREAM_MAX_COUNT 65535

/* How many events @message carries: its count header, 1 without one.
 * 0 when the header is not a number from 1 to JETSTREAM_MAX_COUNT. */
guint jetstream_message_get_count (natsMsg *message);
