#!/bin/sh
# SPDX-License-Identifier: MIT
# "Who holds my memory": pprof_probe writes a heap profile and folded stacks
# for two allocation sites; `go tool pprof` (Debian's golang-go) must read
# the profile and put site_big on top with its 300000 bytes, site_small on
# top by count (10 buffers); the folded stacks must end in each site with
# its bytes.
#   check_pprof.sh PPROF_PROBE
set -eu
probe="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v go >/dev/null || fail "go is not installed (make test installs golang-go)"
"$probe" "$tmp/heap.pb.gz" "$tmp/heap.folded" || fail "pprof_probe"
export GOCACHE="$tmp/gocache" HOME="$tmp" GOFLAGS=-mod=mod GOTOOLCHAIN=local
go tool pprof -top -unit=B -sample_index=inuse_space "$tmp/heap.pb.gz" > "$tmp/space" 2>"$tmp/err" \
  || { cat "$tmp/err"; fail "go tool pprof could not read the profile"; }
top=$(awk '$1 ~ /B$/ && $1 != "0" { print; exit }' "$tmp/space")
echo "$top" | grep -q '^ *300000B .* site_big$' || { cat "$tmp/space"; fail "top by bytes: $top"; }
go tool pprof -top -sample_index=inuse_objects "$tmp/heap.pb.gz" > "$tmp/count" 2>/dev/null
top=$(awk '$1 ~ /^[0-9]+$/ && $1 != "0" { print; exit }' "$tmp/count")
echo "$top" | grep -q '^ *10 .* site_small$' || { cat "$tmp/count"; fail "top by count: $top"; }
grep -q ';main;site_big 300000$' "$tmp/heap.folded" || { cat "$tmp/heap.folded"; fail "folded big"; }
grep -q ';main;site_small 1000$' "$tmp/heap.folded" || fail "folded small"
echo "pprof: go tool pprof reads the profile: site_big 300000 B on top, site_small 10 buffers"
