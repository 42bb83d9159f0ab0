#!/bin/sh
# Turns a source file of the trace page into a C string constant, so that
# the page is written and reviewed as HTML, not as C literals:
#
#   embed.sh trace-page.html trace_page_html > trace-page-html.h
#
# Backslashes, quotes and question marks (no trigraphs) are escaped; each
# line becomes one literal ending in "\n".
set -eu
printf '/* Generated from %s by embed.sh: do not edit. */\n' "$(basename "$1")"
printf 'static const char %s[] =\n' "$2"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/  "/' -e 's/$/\\n"/' "$1"
printf ';\n'
