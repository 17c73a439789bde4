#!/bin/sh
# SPDX-License-Identifier: MIT
# The man pages render without warnings, every exported bp_ function of the
# libraries appears in a page's synopsis, and `man bp_FUNCTION` finds its
# group's page through the one-line alias pages.
#   check_man.sh MAN_BUILD_DIR LIBRARY...
set -eu
dir="$1"; shift
command -v man >/dev/null || { echo "FAIL: man not installed (make deps installs man-db)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/man3"
fail=0
for page in "$dir"/*.3; do
  cp "$page" "$tmp/man3/"
  err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >"$tmp/out") || { echo "FAIL: man -l $page"; fail=1; }
  [ -z "$err" ] || { echo "FAIL: $(basename "$page"): $err"; fail=1; }
  [ -s "$tmp/out" ] || { echo "FAIL: $(basename "$page") renders empty"; fail=1; }
  grep -q '^NAME' "$tmp/out" || { echo "FAIL: $(basename "$page") has no NAME"; fail=1; }
  MANWIDTH=200 man -l "$page" 2>/dev/null | sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' \
    > "$tmp/$(basename "$page" .3).syn"
done
cp "$dir"/alias-*/*.3 "$tmp/man3/"
# Every exported function: in the synopsis (between SYNOPSIS and DESCRIPTION)
# of one page, and reachable by its own name.
for lib in "$@"; do
  for fn in $(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^bp_/ { sub(/@.*/, "", $3); print $3 }'); do
    found=$(grep -l "[ *]$fn(" "$tmp"/*.syn || true)
    [ -n "$found" ] || { echo "FAIL: $fn (exported by $(basename "$lib")) is in no man page"; fail=1; continue; }
    MANWIDTH=200 man -M "$tmp" 3 "$fn" 2>/dev/null | grep -q "[ *]$fn(" ||
      { echo "FAIL: man $fn does not open its page ($found)"; fail=1; }
    n=$((${n:-0} + 1))
  done
done
# Each function's page shows its prototype first, then its description
# (the convention of man pages), e.g. bp_get before "Returns a buffer".
MANWIDTH=200 man -l "$dir/bytepool_buffer.3" 2>/dev/null > "$tmp/buffer.txt"
proto=$(grep -n 'void \*bp_get(bp_pool \*pool, size_t len);' "$tmp/buffer.txt" | tail -1 | cut -d: -f1)
text=$(grep -n 'Returns a buffer of at least len bytes' "$tmp/buffer.txt" | head -1 | cut -d: -f1)
if [ -z "$proto" ] || [ -z "$text" ] || [ "$proto" -gt "$text" ]; then
  echo "FAIL: bytepool_buffer(3) does not show bp_get's prototype before its description"; fail=1
fi
# The README names every function the headers declare (the overview table
# and the sections around it), so a new call cannot go unmentioned there.
src=$(dirname "$0")/..
for fn in $(grep -ho 'BP_API [^;]*' "$src"/include/bytepool*.h | grep -o 'bp_[a-z0-9_]*(' | tr -d '(' | sort -u); do
  short=$(echo "$fn" | sed 's/^bp_uring_bufs_/_/; s/^bp_ring_/_/')
  grep -q "\b$fn\b\|\`$short\`" "$src/README.md" || { echo "FAIL: README does not mention $fn"; fail=1; }
done
[ "$fail" = 0 ] || exit 1
echo "man pages: $(ls "$dir"/*.3 | wc -l) pages render cleanly; ${n:-0} exported functions each in a synopsis and under man NAME"
