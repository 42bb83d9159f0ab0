#!/bin/sh
# The public face of libchime, checked on an installed tree:
#   1. every symbol the shared library exports is declared CHIME_API in an
#      installed header, and every CHIME_API function is exported;
#   2. every CHIME_API declaration is documented: a comment ends on the line
#      right above it, or above the run of declarations it belongs to.
#
#   check-public-api.sh LIBCHIME.so INCLUDEDIR/chime
set -u
library=$1
headers=$2
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The function name on each CHIME_API line: the identifier before its "(".
cat "$headers"/*.h | sed -n 's/^CHIME_API[^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\) *(.*/\1/p' |
  sort -u > "$tmp/declared"
nm -D --defined-only "$library" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort -u > "$tmp/exported"

if [ ! -s "$tmp/declared" ] || [ ! -s "$tmp/exported" ]; then
  echo "no declarations or no exports found (headers $headers, library $library)"
  exit 1
fi
comm -13 "$tmp/declared" "$tmp/exported" > "$tmp/undeclared"
comm -23 "$tmp/declared" "$tmp/exported" > "$tmp/missing"
if [ -s "$tmp/undeclared" ]; then
  echo "exported by $library but declared CHIME_API in no installed header:"
  sed 's/^/  /' "$tmp/undeclared"
  status=1
fi
if [ -s "$tmp/missing" ]; then
  echo "declared CHIME_API but not exported by $library:"
  sed 's/^/  /' "$tmp/missing"
  status=1
fi

# A declaration is documented when the nearest line above it that is not a
# continuation of a declaration (of this one or of the run it belongs to)
# ends a comment.
for header in "$headers"/*.h; do
  awk -v file="$(basename "$header")" '
    { line[NR] = $0 }
    END {
      bad = 0
      for (n = 1; n <= NR; n++) {
        if (line[n] !~ /^CHIME_API/) continue
        m = n - 1
        # Walk up over the declarations of the same run.
        while (m > 0 && line[m] !~ /\*\/[ \t]*$/ && line[m] !~ /^[ \t]*$/ && line[m] !~ /^(#|G_BEGIN|typedef|})/)
          m--
        if (m == 0 || line[m] !~ /\*\/[ \t]*$/) {
          printf "%s:%d: undocumented: %s\n", file, n, line[n]
          bad = 1
        }
      }
      exit bad
    }' "$header" || status=1
done

if [ $status -eq 0 ]; then
  echo "ok: $(wc -l < "$tmp/exported") exported symbols, each declared CHIME_API and documented"
fi
exit $status
