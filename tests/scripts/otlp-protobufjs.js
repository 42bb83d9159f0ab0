// Decodes OTLP ExportTraceServiceRequest bodies with protobufjs (npm),
// loading the project's own plugins/otlp/otlp-trace.proto: an
// independent check of what the otlp plugin encodes with protobuf-c.
// Prints one JSON array, an entry per body, in the shape of
// tests/otlp-receiver.h ({"resource", "spans"}), so that the C test can
// compare it with protobuf-c's decoding.
//
//   node otlp-protobufjs.js otlp-trace.proto BODY...
"use strict";
const fs = require("fs");
const protobuf = require("protobufjs");

const root = protobuf.loadSync(process.argv[2]);
const Request = root.lookupType("chime.otlp.v1.ExportTraceServiceRequest");
const hex = (bytes) => Buffer.from(bytes || []).toString("hex");
// 64-bit values (nanosecond times) do not fit a JavaScript number: they
// are carried as text and written as bare digits at the end.
const int = (long) => ({ __raw: long === undefined || long === null ? "0" : long.toString() });

// protobufjs names the member of a oneof that is set in its virtual
// property (AnyValue's oneof is "value").
function value(any) {
  const which = any ? any.value : undefined;
  if (which === "stringValue" || which === "boolValue") return any[which];
  if (which === "intValue") return int(any.intValue);
  if (which === "doubleValue") return { double: any.doubleValue };
  if (which === "arrayValue") return (any.arrayValue.values || []).map(value);
  if (which === "kvlistValue") return attributes(any.kvlistValue.values);
  return null;
}

function attributes(pairs) {
  const object = {};
  for (const pair of pairs || []) object[pair.key] = value(pair.value);
  return object;
}

const out = [];
for (const path of process.argv.slice(3)) {
  const request = Request.decode(fs.readFileSync(path));
  const entry = { resource: {}, spans: [] };
  for (const rs of request.resourceSpans || []) {
    if (rs.resource) entry.resource = attributes(rs.resource.attributes);
    for (const ss of rs.scopeSpans || []) {
      for (const span of ss.spans || []) {
        entry.spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: span.name,
          kind: span.kind || 0,
          start: int(span.startTimeUnixNano),
          end: int(span.endTimeUnixNano),
          attributes: attributes(span.attributes),
          events: (span.events || []).map((e) => ({
            name: e.name, time: int(e.timeUnixNano), attributes: attributes(e.attributes),
          })),
          status: { code: (span.status && span.status.code) || 0, message: (span.status && span.status.message) || "" },
        });
      }
    }
  }
  out.push(entry);
}
// Doubles are written with a marker the C side cannot confuse with an
// integer: {"double": x} becomes x with a fraction in JSON text.
process.stdout.write(JSON.stringify(out, (k, v) =>
  v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "double" in v
    ? { __double: v.double } : v)
  .replace(/\{"__double":(-?[0-9.eE+-]+)\}/g, (m, x) => (/[.eE]/.test(x) ? x : x + ".0"))
  .replace(/\{"__raw":"(-?[0-9]+)"\}/g, "$1"));
