#!/bin/sh
# SPDX-License-Identifier: MIT
# The dependency between the two layers runs one way (docs/design.md):
#  - no core object (src/core) refers to a symbol an observability object
#    (src/obs) defines: checked on the compiled objects, so a call through
#    any header counts;
#  - observability sources include the core only through core/observe.h.
#   check_layers.sh SOURCE_DIR OBJECT_DIR (the bytepool_obj objects)
set -eu
src="$1"; objs="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
core=$(find "$objs" -path '*src/core/*.o'); obs=$(find "$objs" -path '*src/obs/*.o')
[ -n "$core" ] && [ -n "$obs" ] || { echo "FAIL: no objects under $objs"; exit 1; }
nm --defined-only $obs | awk 'NF == 3 && $2 ~ /[TDBR]/ { print $3 }' | sort -u > "$tmp/obs"
fail=0
for o in $core; do
  nm -u "$o" | awk '{ print $2 }' | sort -u > "$tmp/u"
  bad=$(comm -12 "$tmp/u" "$tmp/obs")
  [ -z "$bad" ] || { echo "FAIL: $(basename "$o" .o) (core) uses the observability layer: $bad"; fail=1; }
done
for f in "$src"/src/obs/*.c "$src"/src/obs/*.h; do
  grep -n '#include "' "$f" | grep -v '"obs.h"\|"\.\./core/observe.h"' &&
    { echo "FAIL: $f includes more of the core than core/observe.h"; fail=1; }
done
grep -ln '#include "\.\./obs/' "$src"/src/core/* && { echo "FAIL: the core includes obs headers"; fail=1; }
[ "$fail" = 0 ] || exit 1
echo "layers: $(echo $core | wc -w) core objects use none of the $(wc -l < "$tmp/obs") symbols of $(echo $obs | wc -w) observability objects"
