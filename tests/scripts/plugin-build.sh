#!/bin/sh
# What the compiler, not the docs, keeps out of a plugin — checked by
# compiling small plugins with the flags shipped plugins get (the public
# headers only):
#   1. a sync plugin's entry points take ChimeSyncFunc: an async function in
#      a CHIME_SYNC_PLUGIN_DEFINE slot does not compile (nor the reverse);
#   2. a plugin cannot include a private header of libchime;
#   3. the correct plugins compile (so the checks above can fail for the
#      right reason only).
#
# Environment (set by tests/Makefile.inc): CC, CHIME_TEST_PLUGIN_CFLAGS.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# compiles NAME EXPECT(ok|fail) NEEDLE: NEEDLE must appear in a failure.
compiles () {
  name=$1 expect=$2 needle=$3
  if $CC $CHIME_TEST_PLUGIN_CFLAGS -Werror=incompatible-pointer-types -c -o "$tmp/$name.o" \
       "$tmp/$name.c" > "$tmp/$name.log" 2>&1; then
    result=ok
  else
    result=fail
  fi
  if [ "$result" != "$expect" ]; then
    echo "FAIL: $name.c: expected the build to $expect, it did $result:"
    sed 's/^/  /' "$tmp/$name.log"
    status=1
  elif [ "$expect" = fail ] && ! grep -q -- "$needle" "$tmp/$name.log"; then
    echo "FAIL: $name.c failed to build, but not with '$needle':"
    sed 's/^/  /' "$tmp/$name.log"
    status=1
  else
    echo "ok: $name.c: $expect"
  fi
}

cat > "$tmp/sync_ok.c" <<'C'
#include <chime/plugin.h>
static gboolean on_token (gpointer instance, ChimeEvent *event, GError **error) { return TRUE; }
CHIME_SYNC_PLUGIN_DEFINE (.name = "sync_ok", .on_llm_new_token = on_token);
C
cat > "$tmp/async_ok.c" <<'C'
#include <chime/plugin.h>
static void on_start (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{ chime_completion_complete (completion); }
CHIME_ASYNC_PLUGIN_DEFINE (.name = "async_ok", .on_llm_start = on_start);
C
cat > "$tmp/sync_with_async_entry.c" <<'C'
#include <chime/plugin.h>
static void on_start (gpointer instance, ChimeEvent *event, ChimeCompletion *completion)
{ chime_completion_complete (completion); }
CHIME_SYNC_PLUGIN_DEFINE (.name = "wrong", .on_llm_start = on_start);
C
cat > "$tmp/async_with_sync_entry.c" <<'C'
#include <chime/plugin.h>
static gboolean on_token (gpointer instance, ChimeEvent *event, GError **error) { return TRUE; }
CHIME_ASYNC_PLUGIN_DEFINE (.name = "wrong", .on_llm_new_token = on_token);
C
cat > "$tmp/private_header.c" <<'C'
#include <chime/plugin.h>
#include "plugins/handler.h"
static gboolean on_token (gpointer instance, ChimeEvent *event, GError **error) { return TRUE; }
CHIME_SYNC_PLUGIN_DEFINE (.name = "sneaky", .on_llm_new_token = on_token);
C
cat > "$tmp/private_header_by_path.c" <<'C'
#include <chime/plugin.h>
#include "core/runtime-private.h"
CHIME_SYNC_PLUGIN_DEFINE (.name = "sneaky");
C

compiles sync_ok ok ""
compiles async_ok ok ""
compiles sync_with_async_entry fail "incompatible pointer type"
compiles async_with_sync_entry fail "incompatible pointer type"
compiles private_header fail "plugins/handler.h"
compiles private_header_by_path fail "core/runtime-private.h"
exit $status
