/* `chime consume`: the [consume] section. Every key has a default but
 * none is guessed: the durable name is the consumer group, and members of
 * one group must give the same one. */
#include "config.h"

#include "consume-settings.h"

#include <string.h>

#define SECTION "consume"

static const char *const consume_keys[] = {
  "url", "stream", "durable", "filter", "max_ack_pending", "ack_wait_ms", "batch",
  "max_deliver", "nak_delay_ms", "fetch_wait_ms", "connect_timeout_ms", "reconnect_wait_ms", NULL
};

/* A whole number of @key from @min to @max, @fallback when absent. */
static gint64
read_number (ChimeConfig *config,
             const char  *key,
             gint64       fallback,
             gint64       min,
             gint64       max)
{
  gint64 value = fallback;

  chime_config_read_int (config, SECTION, key, fallback, min, max, &value);
  return value;
}

ConsumeSettings *
consume_settings_read (ChimeConfig *config)
{
  ConsumeSettings *self = g_new0 (ConsumeSettings, 1);
  g_autofree char *where = chime_config_describe_location (config, SECTION, NULL);

  chime_config_accept_section (config, SECTION, FALSE);
  self->who = g_strdup_printf ("[consume] of %s", chime_config_get_source_name (config));
  if (!g_key_file_has_group (chime_config_get_key_file (config), SECTION))
    chime_config_add_problem (config, "%s has no [consume] section: add one with at least "
                              "'durable = GROUP' (docs/scale-out.md)", chime_config_get_source_name (config));
  chime_config_check_keys (config, SECTION, consume_keys);
  self->urls = chime_config_read_list (config, SECTION, "url", "nats://127.0.0.1:4222");
  if (self->urls[0] == NULL)
    chime_config_add_problem (config, "key 'url'%s is empty: give nats://HOST:PORT", where);
  self->stream = chime_config_read_string (config, SECTION, "stream", "CHIME_EVENTS");
  self->durable = chime_config_read_string (config, SECTION, "durable", "chime");
  if (strpbrk (self->durable, ". *>") != NULL || self->durable[0] == '\0')
    chime_config_add_problem (config, "key 'durable'%s is \"%s\": a consumer name has no dots, "
                              "spaces, '*' or '>'", where, self->durable);
  self->filter = chime_config_read_string (config, SECTION, "filter", "chime.events.>");
  self->max_ack_pending = read_number (config, "max_ack_pending", 1000, 1, G_MAXINT32);
  self->ack_wait_ms = read_number (config, "ack_wait_ms", 30000, 100, 24 * 3600 * 1000);
  self->batch = read_number (config, "batch", 100, 1, 10000);
  self->max_deliver = read_number (config, "max_deliver", 5, 1, G_MAXINT32);
  self->nak_delay_ms = read_number (config, "nak_delay_ms", 1000, 0, 24 * 3600 * 1000);
  self->fetch_wait_ms = read_number (config, "fetch_wait_ms", 500, 1, 60000);
  self->connect_timeout_ms = read_number (config, "connect_timeout_ms", 2000, 1, 600000);
  self->reconnect_wait_ms = read_number (config, "reconnect_wait_ms", 250, 1, 600000);
  return self;
}

void
consume_settings_free (ConsumeSettings *self)
{
  if (self == NULL)
    return;
  g_strfreev (self->urls);
  g_free (self->stream);
  g_free (self->durable);
  g_free (self->filter);
  g_free (self->who);
  g_free (self);
}
