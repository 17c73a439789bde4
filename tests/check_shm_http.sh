#!/bin/bash
# SPDX-License-Identifier: MIT
# shm_producer --http: /debug/vars has the shared pool and its peers,
# /metrics its bytepool_shm_* families with a peer label (promtool), and the
# dashboard a card with one row per peer (headless Chromium, when present).
#   check_shm_http.sh PRODUCER CONSUMER
set -u
prod="$1"; cons="$2"
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; head -5 "$tmp"/*.err 2>/dev/null; exit 1; }
"$prod" --socket "@bp-shm-http-$$" --rate 500 --http 127.0.0.1:0 --verbose > "$tmp/out" 2> "$tmp/p.err" &
p=$!
for _ in $(seq 3000); do grep -q '^http ' "$tmp/out" && break; sleep 0.01; done
port=$(sed -n 's/^http //p' "$tmp/out")
[ -n "$port" ] || fail "the producer printed no http port"
"$cons" --socket "@bp-shm-http-$$" --hold-ms 50 2> "$tmp/c.err" &
c=$!
# its status lines (one a second) say when the consumer is attached and served
for _ in $(seq 3000); do grep -q 'peers=1 ' "$tmp/out" && break; sleep 0.01; done
grep -q 'peers=1 ' "$tmp/out" || fail "the consumer never attached"
curl -sf "http://127.0.0.1:$port/debug/vars" > "$tmp/vars" || fail "/debug/vars"
jq -e '.shm.shm.role == "owner" and .shm.shm.peers == 1 and (.shm.shm.peer_list | length) == 1
       and .shm.shm.peer_list[0].granted > 0 and has("shm_pool_detail")' "$tmp/vars" > /dev/null ||
  fail "/debug/vars lacks the shared pool: $(head -c 400 "$tmp/vars")"
curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics" || fail "/metrics"
grep -q '^bytepool_shm_granted_total{var="shm"} [1-9]' "$tmp/metrics" || fail "/metrics: no shm_granted"
grep -q '^bytepool_shm_peer_granted_total{var="shm",peer="1"} [1-9]' "$tmp/metrics" ||
  fail "/metrics: no per-peer series"
if command -v promtool > /dev/null; then
  promtool check metrics < "$tmp/metrics" > /dev/null 2>&1 || fail "promtool: $(promtool check metrics < "$tmp/metrics" 2>&1 | head -3)"
fi
browser=$(command -v chromium || true)
if [ -n "$browser" ]; then
  "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
    --virtual-time-budget=3000 --dump-dom "http://127.0.0.1:$port/" > "$tmp/dom" 2>/dev/null
  grep -q 'data-shm="shm"' "$tmp/dom" || fail "the dashboard shows no shared pool"
  grep -q "<td>$c</td>" "$tmp/dom" || fail "the dashboard's peer table has no row for pid $c"
  echo "dashboard: the shared pool's card and its peer"
fi
kill -TERM "$c"; wait "$c" || fail "the consumer exited $?"
kill -TERM "$p"; wait "$p" || fail "the producer exited $? ($(tail -1 "$tmp/out"))"
[ -s "$tmp/p.err" ] && fail "the producer wrote to stderr"
[ -s "$tmp/c.err" ] && fail "the consumer wrote to stderr"
echo "shm http: /debug/vars, /metrics (per-peer series) and the dashboard"
