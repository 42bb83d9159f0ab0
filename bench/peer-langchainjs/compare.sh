#!/bin/sh
# The same pipeline in LangChain.js and in chime, side by side:
# prompt | streaming fake chat model | parser, tags and metadata on the
# root; ok (str parser), fail (the model fails after 2 chunks), json.
#
#   bench/peer-langchainjs/compare.sh [BUILDDIR]
#
# Needs node and the pinned @langchain/core of ../shared/peers/langchainjs
# (installed into a temporary folder with npm ci). Prints, for each case,
# the diff of (event, name, tags, metadata keys, data keys, stream chunk)
# between LangChain.js's streamEvents v2 and `chime run --events`, then
# the callbacks LangChain.js sends under stream() and invoke().
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../..}" && pwd)
peer=${CHIME_PEER_DIR:-$here/../../../shared/peers/langchainjs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$peer/package.json" "$peer/package-lock.json" "$here"/*.mjs "$here"/*.ini "$work"
cd "$work"
npm ci --no-audit --no-fund >/dev/null 2>&1
node stream-events.mjs > js-ok.jsonl
FAIL=1 node stream-events.mjs > js-fail.jsonl
PARSER=json node stream-events.mjs > js-json.jsonl
export CHIME_PLUGIN_PATH="$build/plugins/astream_events/.libs"
for case in ok fail json; do
  "$build/chime" run "$case.ini" --events "chime-$case.jsonl" >/dev/null 2>&1 || true
done
python3 - <<'PY'
import difflib, json
def rows(path):
    out = []
    for line in open(path):
        e = json.loads(line)
        if "event" not in e:
            continue
        d = e["data"]
        chunk = json.dumps(d.get("chunk")) if e["event"] in ("on_parser_stream", "on_chain_stream") else ""
        out.append(str((e["event"], e["name"], e["tags"], sorted(e["metadata"]), sorted(d), chunk)))
    return out
for case in ("ok", "fail", "json"):
    js, ch = rows(f"js-{case}.jsonl"), rows(f"chime-{case}.jsonl")
    print(f"== {case}: LangChain.js {len(js)} events, chime {len(ch)}")
    for line in difflib.unified_diff(js, ch, "langchainjs", "chime", n=0, lineterm=""):
        print(line)
PY
node stream-callbacks.mjs
