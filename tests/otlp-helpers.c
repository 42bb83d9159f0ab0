/* Reading decoded spans (see otlp-helpers.h). */
#include "otlp-helpers.h"

#include <gio/gio.h>
#include <string.h>

int
otlp_setup_receiver (void **state)
{
  *state = otlp_receiver_new ();
  return 0;
}

int
otlp_teardown_receiver (void **state)
{
  static const char *const variables[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION", NULL
  };

  g_clear_pointer ((OtlpReceiver **) state, otlp_receiver_free);
  for (guint i = 0; variables[i] != NULL; i++)
    g_unsetenv (variables[i]);
  return 0;
}

json_t *
otlp_span_named (json_t     *spans,
                 const char *name)
{
  json_t *found = NULL, *span;
  size_t i;

  json_array_foreach (spans, i, span)
    if (g_strcmp0 (json_string_value (json_object_get (span, "name")), name) == 0)
      {
        if (found != NULL)
          fail_msg ("more than one span is named \"%s\"", name);
        found = span;
      }
  if (found == NULL)
    {
      g_autofree char *text = json_dumps (spans, JSON_COMPACT);

      fail_msg ("no span named \"%s\" in %s", name, text);
    }
  return found;
}

json_t *
otlp_attribute (json_t     *span,
                const char *key)
{
  return json_object_get (json_object_get (span, "attributes"), key);
}

const char *
otlp_string_attribute (json_t     *span,
                       const char *key)
{
  json_t *value = otlp_attribute (span, key);

  if (!json_is_string (value))
    fail_msg ("span \"%s\": %s is not a string attribute",
              json_string_value (json_object_get (span, "name")), key);
  return json_string_value (value);
}

json_int_t
otlp_int_attribute (json_t     *span,
                    const char *key)
{
  json_t *value = otlp_attribute (span, key);

  if (!json_is_integer (value))
    fail_msg ("span \"%s\": %s is not an integer attribute",
              json_string_value (json_object_get (span, "name")), key);
  return json_integer_value (value);
}

/* "01a23b0b-612b-7374-867a-5c5317d150fc" -> 32 hex digits. */
static char *
run_id_hex (const char *run_id)
{
  g_autoptr (GString) hex = g_string_new (NULL);

  for (const char *c = run_id; *c != '\0'; c++)
    if (*c != '-')
      g_string_append_c (hex, *c);
  return g_string_free (g_steal_pointer (&hex), FALSE);
}

void
otlp_assert_run_tree (json_t *spans,
                      guint   n_roots)
{
  g_autoptr (GHashTable) by_span = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) traces = g_hash_table_new (g_str_hash, g_str_equal);
  guint roots = 0;
  json_t *span;
  size_t i;

  json_array_foreach (spans, i, span)
    {
      g_autofree char *hex = run_id_hex (otlp_string_attribute (span, "chime.run.id"));
      const char *span_id = json_string_value (json_object_get (span, "spanId"));

      /* The documented derivation: span id = the run id's last 8 bytes. */
      assert_string_equal (span_id, hex + 16);
      assert_null (g_hash_table_lookup (by_span, span_id));
      g_hash_table_insert (by_span, (gpointer) span_id, span);
    }
  json_array_foreach (spans, i, span)
    {
      const char *parent = json_string_value (json_object_get (span, "parentSpanId"));
      const char *trace = json_string_value (json_object_get (span, "traceId"));
      json_t *parent_span;

      if (parent[0] == '\0')
        {
          g_autofree char *hex = run_id_hex (otlp_string_attribute (span, "chime.run.id"));

          /* trace id = the root run's id: one trace per root run. */
          assert_string_equal (trace, hex);
          assert_null (g_hash_table_lookup (traces, trace));
          g_hash_table_insert (traces, (gpointer) trace, span);
          roots++;
          continue;
        }
      parent_span = g_hash_table_lookup (by_span, parent);
      if (parent_span == NULL)
        fail_msg ("span \"%s\" has a parent %s that was not exported",
                  json_string_value (json_object_get (span, "name")), parent);
      assert_string_equal (trace, json_string_value (json_object_get (parent_span, "traceId")));
      assert_true (json_integer_value (json_object_get (span, "start")) >=
                   json_integer_value (json_object_get (parent_span, "start")));
    }
  assert_int_equal (roots, n_roots);
}

void
otlp_assert_no_secret (json_t     *requests,
                       const char *secret)
{
  g_autofree char *text = json_dumps (requests, JSON_COMPACT);
  json_t *request;
  size_t i;

  if (strstr (text, secret) != NULL)
    fail_msg ("the key %s was exported", secret);
  /* The decoded view could hide bytes: look at the raw bodies too. */
  json_array_foreach (requests, i, request)
    {
      g_autofree char *body = NULL;
      gsize length;

      if (g_file_get_contents (json_string_value (json_object_get (request, "body_path")), &body, &length, NULL))
        assert_null (g_strstr_len (body, length, secret));
    }
}

void
otlp_assert_protobufjs_agrees (json_t *requests)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) node = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (json_t) decoded = NULL;
  json_t *request;
  size_t i;

  g_ptr_array_add (argv, (gpointer) "node");
  g_ptr_array_add (argv, (gpointer) OTLP_PROTOBUFJS_SCRIPT);
  g_ptr_array_add (argv, (gpointer) OTLP_PROTO_FILE);
  json_array_foreach (requests, i, request)
    g_ptr_array_add (argv, (gpointer) json_string_value (json_object_get (request, "body_path")));
  g_ptr_array_add (argv, NULL);
  /* protobufjs is installed globally by autogen.sh (npm install -g). */
  g_subprocess_launcher_setenv (launcher, "NODE_PATH", OTLP_NODE_PATH, TRUE);
  node = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  if (node == NULL)
    fail_msg ("cannot run node (./autogen.sh installs it): %s", error->message);
  g_subprocess_communicate_utf8 (node, NULL, NULL, &out, &err, &error);
  assert_null (error);
  if (g_subprocess_get_exit_status (node) != 0)
    fail_msg ("protobufjs could not decode the requests:\n%s", err);
  decoded = json_loads (out, 0, NULL);
  assert_non_null (decoded);
  assert_int_equal (json_array_size (decoded), json_array_size (requests));
  json_array_foreach (requests, i, request)
    {
      json_t *theirs = json_array_get (decoded, i);

      if (!json_equal (json_object_get (theirs, "spans"), json_object_get (request, "spans")) ||
          !json_equal (json_object_get (theirs, "resource"), json_object_get (request, "resource")))
        {
          g_autofree char *a = json_dumps (theirs, JSON_SORT_KEYS);
          g_autofree char *b = json_dumps (json_pack ("{s:O, s:O}", "resource", json_object_get (request, "resource"),
                                                      "spans", json_object_get (request, "spans")), JSON_SORT_KEYS);

          fail_msg ("protobufjs decoded\n%s\nprotobuf-c decoded\n%s", a, b);
        }
    }
}
