#!/bin/sh
# SPDX-License-Identifier: MIT
# uring_echo smoke: the server with pool buffers (64 of them, so ENOBUFS and
# the re-arm happen), with pool buffers in incremental mode, and with private
# rings; each time echo_client sends random bytes on 200 connections and
# checks every byte; on SIGTERM the server must exit 0 with 0 outstanding
# buffers. Then, where Chromium is, the dashboard of a server run with
# --http must show the ring's cards and chart. Skips (exit 0, with a
# message) where the kernel has no io_uring.
#   check_uring_echo.sh SERVER CLIENT
set -eu
server="$1"; client="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for mode in "--bufs pool --nbufs 64" "--bufs pool --inc" "--bufs private"; do
  "$server" --port 0 $mode > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  # its port, a whole line (up to 30 s: a sanitizer build on a loaded machine is slow to start)
  for _ in $(seq 300); do [ "$(wc -l < "$tmp/out")" -ge 1 ] && break; sleep 0.1; done
  if grep -q "io_uring_queue_init" "$tmp/err"; then
    echo "io_uring not available here: skipped ($(cat "$tmp/err"))"; exit 0
  fi
  if grep -q "Operation not supported" "$tmp/err"; then
    echo "[$mode] the kernel has no incremental buffer rings: skipped"; wait $pid || true; continue
  fi
  port=$(head -1 "$tmp/out")
  [ -n "$port" ] || { kill $pid; cat "$tmp/err"; echo "FAIL: [$mode] the server printed no port"; exit 1; }
  "$client" --port "$port" --conns 200 --bytes 50000 --chunk 3000 || { kill $pid; echo "FAIL: [$mode] echo"; exit 1; }
  kill -TERM $pid
  rc=0; wait $pid || rc=$?
  summary=$(tail -1 "$tmp/out")
  echo "[$mode] $summary"
  [ "$rc" = 0 ] || { cat "$tmp/err"; echo "FAIL: [$mode] server exit $rc"; exit 1; }
  echo "$summary" | grep -q 'connections 200, bytes 10000000, .*outstanding buffers 0$' ||
    { echo "FAIL: [$mode] summary"; exit 1; }
done

# The dashboard shows the ring (when uring_echo has libbytepool_http and
# Chromium is here): its cards and its chart, while connections are idle.
browser=$(command -v chromium || true)
if [ -n "$browser" ]; then
  "$server" --port 0 --http 127.0.0.1:0 > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  for _ in $(seq 300); do [ "$(wc -l < "$tmp/out")" -ge 2 ] && break; sleep 0.1; done
  hport=$(sed -n 's/^http //p' "$tmp/out")
  if [ -n "$hport" ]; then
    "$client" --port "$(head -1 "$tmp/out")" --conns 20 --bytes 20000 --hold-ms 3000 > /dev/null &
    cpid=$!
    sleep 0.5
    curl -sf "http://127.0.0.1:$hport/metrics" > "$tmp/metrics" || { echo "FAIL: /metrics"; exit 1; }
    "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
      --virtual-time-budget=3000 --dump-dom "http://127.0.0.1:$hport/" > "$tmp/dom" 2>/dev/null
    wait $cpid
    kill -TERM $pid; wait $pid || { echo "FAIL: server with --http"; exit 1; }
    grep -q 'data-ring="echo_ring"' "$tmp/dom" || { echo "FAIL: the dashboard shows no ring"; exit 1; }
    grep -q 'id="echo_ring-kernel">1,024<' "$tmp/dom" || { echo "FAIL: ring card"; exit 1; }
    grep -q 'id="echo_ring-ring" data-points="[1-9]' "$tmp/dom" || { echo "FAIL: ring chart"; exit 1; }
    grep -q '^bytepool_uring_in_kernel{var="echo_ring"} ' "$tmp/metrics" ||
      { echo "FAIL: /metrics has no ring"; exit 1; }
    if command -v promtool > /dev/null; then
      promtool check metrics < "$tmp/metrics" > /dev/null 2>&1 || { echo "FAIL: promtool"; exit 1; }
    fi
    echo "dashboard: the ring's cards and chart are shown; /metrics has the ring"
  else
    kill -TERM $pid; wait $pid || true
    echo "uring_echo has no --http here: dashboard check skipped"
  fi
fi
