/* `chime consume`: the [consume] section (consume-settings.c). */
#pragma once

#include <chime/chime.h>

typedef struct {
  char   **urls;
  char    *stream;
  char    *durable;
  char    *filter;
  gint64   max_ack_pending;
  gint64   ack_wait_ms;
  gint64   batch;
  gint64   max_deliver;
  gint64   nak_delay_ms;
  gint64   fetch_wait_ms;
  gint64   connect_timeout_ms;
  gint64   reconnect_wait_ms;
  /* "[consume] of FILE", for messages. */
  char    *who;
} ConsumeSettings;

/* Declares [consume] to @config (so the runtime does not call it unknown)
 * and reads it, recording a problem in @config for every bad key. */
ConsumeSettings *consume_settings_read (ChimeConfig *config);
void             consume_settings_free (ConsumeSettings *settings);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ConsumeSettings, consume_settings_free)
