#!/bin/sh
# A build target on its own works on a fresh tree, not only `make` (which
# makes BUILT_SOURCES first): the distributed sources are configured in a
# new folder and the object that includes a generated header is built
# alone, as `make chime` or `make bench` on a fresh clone first does.
#
# Environment (set by tests/Makefile.inc): CC, CHIME_TEST_BUILDDIR.
set -u
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
make=${MAKE:-make}

if ! $make -s -C "$CHIME_TEST_BUILDDIR" distdir distdir="$tmp/src" > "$tmp/distdir.log" 2>&1; then
  echo "FAIL: make distdir:"
  sed 's/^/  /' "$tmp/distdir.log"
  exit 1
fi
mkdir "$tmp/build"
if ! (cd "$tmp/build" && "$tmp/src/configure" -q CC="$CC") > "$tmp/configure.log" 2>&1; then
  echo "FAIL: configure of the distributed sources:"
  sed 's/^/  /' "$tmp/configure.log"
  exit 1
fi
# runner/command-run.c includes runner/seed-ini.h, generated from
# examples/seed.ini.
if ! $make -s -C "$tmp/build" runner/chime-command-run.o > "$tmp/target.log" 2>&1; then
  echo "FAIL: make runner/chime-command-run.o on a fresh tree:"
  sed 's/^/  /' "$tmp/target.log"
  exit 1
fi
echo "ok: make runner/chime-command-run.o on a fresh tree"
