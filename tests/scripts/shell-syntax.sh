#!/bin/sh
# The shell scripts of the tree parse: a merge that loses a brace in
# bench/run (it happened) breaks `make bench` without failing any build,
# since nothing else runs the script. bash -n reads without running.
#
# Environment: CHIME_TEST_SRCDIR, the top of the source tree.
set -u
status=0
count=0
for file in autogen.sh .ci/run bench/run bench/peer-langchainjs/*.sh tests/scripts/*.sh; do
  path=$CHIME_TEST_SRCDIR/$file
  [ -f "$path" ] || continue
  count=$((count + 1))
  if ! bash -n "$path" 2>"${TMPDIR:-/tmp}/shell-syntax.$$"; then
    echo "FAIL: $file does not parse:"
    sed 's/^/  /' "${TMPDIR:-/tmp}/shell-syntax.$$"
    status=1
  fi
done
rm -f "${TMPDIR:-/tmp}/shell-syntax.$$"
[ $count -gt 2 ] || { echo "FAIL: the scripts were not found under $CHIME_TEST_SRCDIR"; exit 1; }
[ $status -eq 0 ] && echo "ok: $count scripts parse"
exit $status
