#!/bin/sh
# The public face of libchime, checked on the installed tree (make check
# installs it into tests/test-install first):
#   1. every symbol the shared library exports is declared CHIME_API in an
#      installed header, and every CHIME_API function is exported;
#   2. every CHIME_API declaration is documented: a comment ends on the line
#      right above it, or above the run of declarations it belongs to;
#   3. chime.pc requires every package the installed headers include;
#   4. the chime binary links the shared libchime and defines none of the
#      runtime's code (no symbol of libchime's objects, hidden ones included).
#
# Environment (set by tests/runner.inc): CHIME_TEST_LIBDIR, CHIME_TEST_INCLUDEDIR,
# CHIME_TEST_BINDIR of the installed tree, CHIME_TEST_CORE_ARCHIVE (the static
# archive of libchime's objects in the build tree).
set -u
library=$CHIME_TEST_LIBDIR/libchime.so
headers=$CHIME_TEST_INCLUDEDIR/chime
binary=$CHIME_TEST_BINDIR/chime
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- 1. exports against declarations ---------------------------------
# The function name on each CHIME_API line: the identifier before its "(".
cat "$headers"/*.h | sed -n 's/^CHIME_API[^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\) *(.*/\1/p' |
  sort -u > "$tmp/declared"
nm -D --defined-only "$library" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u > "$tmp/exported"
if [ ! -s "$tmp/declared" ] || [ ! -s "$tmp/exported" ]; then
  echo "FAIL: no declarations or no exports found (headers $headers, library $library)"
  exit 1
fi
comm -13 "$tmp/declared" "$tmp/exported" > "$tmp/undeclared"
comm -23 "$tmp/declared" "$tmp/exported" > "$tmp/missing"
if [ -s "$tmp/undeclared" ]; then
  echo "FAIL: exported by $library but declared CHIME_API in no installed header:"
  sed 's/^/  /' "$tmp/undeclared"
  status=1
fi
if [ -s "$tmp/missing" ]; then
  echo "FAIL: declared CHIME_API but not exported by $library:"
  sed 's/^/  /' "$tmp/missing"
  status=1
fi
echo "exports: $(wc -l < "$tmp/exported") symbols, $(wc -l < "$tmp/declared") CHIME_API declarations"

# --- 2. every declaration documented ---------------------------------
# Walk up from each declaration over the declarations of its run (lines
# that are not blank, not a comment's end, not a directive or typedef);
# the line reached must end a comment.
for header in "$headers"/*.h; do
  awk -v file="$(basename "$header")" '
    { line[NR] = $0 }
    END {
      bad = 0
      for (n = 1; n <= NR; n++) {
        if (line[n] !~ /^CHIME_API/) continue
        m = n - 1
        while (m > 0 && line[m] !~ /\*\/[ \t]*$/ && line[m] !~ /^[ \t]*$/ && line[m] !~ /^(#|G_BEGIN|typedef|})/)
          m--
        if (m == 0 || line[m] !~ /\*\/[ \t]*$/) {
          printf "FAIL: %s:%d: undocumented: %s\n", file, n, line[n]
          bad = 1
        }
      }
      exit bad
    }' "$header" || status=1
done

# --- chime.pc names every package the headers include -----------------
pc=$CHIME_TEST_LIBDIR/pkgconfig/chime.pc
requires=$(sed -n 's/^Requires: *//p' "$pc")
for pair in glib.h:glib-2.0 gio/gio.h:gio-2.0 gmodule.h:gmodule-2.0 jansson.h:jansson; do
  header=${pair%%:*} package=${pair#*:}
  if grep -q "^#include <$header>" "$headers"/*.h; then
    case " $requires " in
      *" $package "*) ;;
      *) echo "FAIL: an installed header includes <$header> but $pc does not require $package"
         status=1 ;;
    esac
  fi
done

# --- 4. the runner is an ordinary embedder ----------------------------
if ! readelf -d "$binary" | grep -q 'NEEDED.*libchime\.so'; then
  echo "FAIL: $binary does not link the shared libchime"
  status=1
fi
# Global symbols only: file-local (static) names may well repeat.
nm --defined-only "$CHIME_TEST_CORE_ARCHIVE" 2>/dev/null | awk '$2 ~ /^[TDBR]$/ { print $3 }' |
  sort -u > "$tmp/core"
nm --defined-only "$binary" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u > "$tmp/binary"
comm -12 "$tmp/core" "$tmp/binary" > "$tmp/both"
if [ ! -s "$tmp/core" ]; then
  echo "FAIL: no symbols read from $CHIME_TEST_CORE_ARCHIVE"
  status=1
elif [ -s "$tmp/both" ]; then
  echo "FAIL: $binary defines code of libchime itself:"
  sed 's/^/  /' "$tmp/both"
  status=1
fi

[ $status -eq 0 ] && echo "ok: the public face holds"
exit $status
