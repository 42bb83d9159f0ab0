#!/bin/sh
# Makes docs/images/trace-page.png, the screenshot README.md and
# docs/plugins.md show: the trace page of the batch example (three inputs,
# two at once), its first chat model run selected, in headless Chromium.
#
#   tests/scripts/trace-screenshot.sh [CHIME]     (default: chime on PATH)
#
# tests/test-runner-trace.c takes the same kind of screenshot on every
# `make check`; this script only refreshes the committed one.
set -eu
top="$(cd "$(dirname "$0")/../.." && pwd)"
chime="${1:-chime}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The example as it is, writing its page into $work instead of /tmp.
sed "s|^path = .*|path = $work/trace.html|" "$top/examples/trace.ini" >"$work/trace.ini"
"$chime" run "$work/trace.ini" --inputs "$top/examples/batch.jsonl" --concurrency 2 >/dev/null
# The first chat model run, selected through the page's #run=ID link.
model="$(grep -o '"id":"[0-9a-f-]*","parent_id":"[0-9a-f-]*","run_type":"chat_model"' "$work/trace.html" |
  head -n 1 | cut -d '"' -f 4)"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile" \
  --window-size=1280,600 --virtual-time-budget=3000 \
  --screenshot="$top/docs/images/trace-page.png" "file://$work/trace.html#run=$model" 2>/dev/null
echo "wrote $top/docs/images/trace-page.png"
