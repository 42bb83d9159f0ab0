/* What the otlp plugin's tests share (tests/test-otlp-*.c): reading the
 * spans a receiver decoded (tests/otlp-receiver.h) by run, by trace and by
 * attribute. */
#pragma once

#include "otlp-receiver.h"
#include "test-helpers.h"

/* cmocka fixtures: a fresh receiver in *@state, and its end (which also
 * unsets the OTEL_* variables a test may have set). */
int         otlp_setup_receiver    (void **state);
int         otlp_teardown_receiver (void **state);

/* The span whose name is @name (fails the test when none or several). */
json_t     *otlp_span_named       (json_t     *spans,
                                   const char *name);
/* Attribute @key of @span, or NULL. */
json_t     *otlp_attribute        (json_t     *span,
                                   const char *key);
/* Its string value (fails the test when it is not a string). */
const char *otlp_string_attribute (json_t     *span,
                                   const char *key);
/* Its integer value (fails the test when it is not an integer). */
json_int_t  otlp_int_attribute    (json_t     *span,
                                   const char *key);

/* Every span's ids follow from its run's id, one trace per root run,
 * every parent in the same trace, and @n_roots roots. */
void        otlp_assert_run_tree  (json_t     *spans,
                                   guint       n_roots);

/* No attribute of any span or event, nor the resource, holds @secret. */
void        otlp_assert_no_secret (json_t     *requests,
                                   const char *secret);

/* The protobuf bodies of @requests, decoded by protobufjs from npm with
 * plugins/otlp/otlp-trace.proto (tests/scripts/otlp-protobufjs.js), agree
 * with what protobuf-c decoded. */
void        otlp_assert_protobufjs_agrees (json_t *requests);
