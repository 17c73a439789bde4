#!/bin/sh
# SPDX-License-Identifier: MIT
# uring_echo smoke: the server with pool buffers (64 of them, so ENOBUFS and
# the re-arm happen), with pool buffers in incremental mode, and with private
# rings; each time echo_client sends random bytes on 200 connections and
# checks every byte; on SIGTERM the server must exit 0 with 0 outstanding
# buffers. Skips (exit 0, with a message) where the kernel has no io_uring.
#   check_uring_echo.sh SERVER CLIENT
set -eu
server="$1"; client="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for mode in "--bufs pool --nbufs 64" "--bufs pool --inc" "--bufs private"; do
  "$server" --port 0 $mode > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  for _ in $(seq 50); do [ -s "$tmp/out" ] && break; sleep 0.1; done
  if grep -q "io_uring_queue_init" "$tmp/err"; then
    echo "io_uring not available here: skipped ($(cat "$tmp/err"))"; exit 0
  fi
  if grep -q "Operation not supported" "$tmp/err"; then
    echo "[$mode] the kernel has no incremental buffer rings: skipped"; wait $pid || true; continue
  fi
  port=$(head -1 "$tmp/out")
  "$client" --port "$port" --conns 200 --bytes 50000 --chunk 3000 || { kill $pid; echo "FAIL: [$mode] echo"; exit 1; }
  kill -TERM $pid
  rc=0; wait $pid || rc=$?
  summary=$(tail -1 "$tmp/out")
  echo "[$mode] $summary"
  [ "$rc" = 0 ] || { cat "$tmp/err"; echo "FAIL: [$mode] server exit $rc"; exit 1; }
  echo "$summary" | grep -q 'connections 200, bytes 10000000, .*outstanding buffers 0$' ||
    { echo "FAIL: [$mode] summary"; exit 1; }
done
