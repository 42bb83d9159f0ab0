/* The jetstream tests' own libnats client: the tests read what the
 * server holds rather than believe the runner's report of it. */
#include "nats-client.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <nats/nats.h>
#include <string.h>

typedef struct {
  natsConnection *connection;
  jsCtx          *js;
} Client;

static void
client_open (Client     *client,
             const char *url)
{
  natsStatus status = natsConnection_ConnectTo (&client->connection, url);

  if (status != NATS_OK)
    fail_msg ("cannot connect to %s: %s", url, natsStatus_GetText (status));
  status = natsConnection_JetStream (&client->js, client->connection, NULL);
  if (status != NATS_OK)
    fail_msg ("no JetStream at %s: %s", url, natsStatus_GetText (status));
}

static void
client_close (Client *client)
{
  jsCtx_Destroy (client->js);
  natsConnection_Destroy (client->connection);
}

guint64
nats_stream_message_count (const char *url,
                           const char *stream)
{
  Client client = { 0 };
  jsStreamInfo *info = NULL;
  jsErrCode code = 0;
  natsStatus status;
  guint64 count;

  client_open (&client, url);
  status = js_GetStreamInfo (&info, client.js, stream, NULL, &code);
  if (status != NATS_OK)
    fail_msg ("cannot read stream %s: %s (error %d)", stream, natsStatus_GetText (status), (int) code);
  count = info->State.Msgs;
  jsStreamInfo_Destroy (info);
  client_close (&client);
  return count;
}

guint64
nats_publish_raw (const char *url,
                  const char *subject,
                  const char *header,
                  const char *value,
                  const char *body)
{
  Client client = { 0 };
  natsMsg *message = NULL;
  jsPubAck *ack = NULL;
  jsErrCode code = 0;
  natsStatus status;
  guint64 sequence;

  client_open (&client, url);
  assert_int_equal (natsMsg_Create (&message, subject, NULL, body, (int) strlen (body)), NATS_OK);
  if (header != NULL)
    assert_int_equal (natsMsgHeader_Set (message, header, value), NATS_OK);
  status = js_PublishMsg (&ack, client.js, message, NULL, &code);
  if (status != NATS_OK)
    fail_msg ("cannot publish on %s: %s (error %d)", subject, natsStatus_GetText (status), (int) code);
  sequence = ack->Sequence;
  jsPubAck_Destroy (ack);
  natsMsg_Destroy (message);
  client_close (&client);
  return sequence;
}
