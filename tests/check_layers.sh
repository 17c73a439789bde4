#!/bin/sh
# SPDX-License-Identifier: MIT
# The dependencies run one way (docs/design.md):
#  - no core object (src/core) refers to a symbol an observability object
#    (src/obs) defines: checked on the compiled objects, so a call through
#    any header counts;
#  - observability sources include the core only through core/observe.h.
#   check_layers.sh SOURCE_DIR OBJECT_DIR (the bytepool_obj objects)
set -eu
src="$1"; objs="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
core=$(find "$objs" -path '*src/core/*.o' | sort); obs=$(find "$objs" -path '*src/obs/*.o' | sort)
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

# Inside the core, files form a ladder (docs/design.md, "The core's
# ladder"): each may call only files listed before it. A call that runs back
# up fails, unless it is one of the edges still listed in BACK below (what is
# left of the restructuring; the list may only shrink).
LADDER="os env ring tier checked resv segmap leaks registry refuse thread segment depot history
tcache stats leak_report home wrap watch buffer ref adopt background fork pool objpool abi"
BACK=""
rank() { i=0; for f in $LADDER; do [ "$f" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo -1; }
for o in $core; do
  nm --defined-only "$o" | awk -v f="$(basename "$o" .c.o)" 'NF == 3 && $2 ~ /[TDBR]/ { print $3, f }'
done | sort > "$tmp/defs"
used=""
for o in $core; do
  from=$(basename "$o" .c.o)
  rf=$(rank "$from")
  [ "$rf" -ge 0 ] || { echo "FAIL: $from.c is not on the ladder in check_layers.sh"; fail=1; continue; }
  for to in $(nm -u "$o" | awk '{ print $2 }' | sort -u | join - "$tmp/defs" | awk '{ print $2 }' | sort -u); do
    [ "$to" = "$from" ] && continue
    [ "$(rank "$to")" -lt "$rf" ] && continue
    case " $(echo $BACK) " in
      *" $from>$to "*) used="$used $from>$to" ;;
      *) echo "FAIL: $from.c calls up the ladder into $to.c:" \
           "$(nm -u "$o" | awk '{ print $2 }' | sort -u | join - "$tmp/defs" | awk -v t="$to" '$2 == t { print $1 }' | sort -u | tr '\n' ' ')"
         fail=1 ;;
    esac
  done
done
for e in $BACK; do
  case " $used " in *" $e "*) ;; *) echo "FAIL: the back edge $e is gone: take it off BACK"; fail=1 ;; esac
done
[ "$fail" = 0 ] || exit 1
echo "layers: $(echo $core | wc -w) core objects use none of the $(wc -l < "$tmp/obs") symbols of $(echo $obs | wc -w) observability objects"
echo "ladder: $(echo $LADDER | wc -w) core files call only down, but for $(echo $BACK | wc -w) edges left"
