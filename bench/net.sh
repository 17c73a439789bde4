#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench-net: uring_echo with pool buffers against private per-connection
# rings, in one run, at 100 and 1,000 connections. For each:
#  - busy: echo_client pushes random bytes through every connection and
#    checks each one; the throughput is its figure;
#  - idle: the same connections then stay open with nothing to send, and
#    the server's resident memory (VmRSS, minus what it had before the
#    first connection) is what it keeps for them.
#   bench/net.sh BUILD_DIR [ROUNDS]
set -eu
b="${1:-build}"; rounds="${2:-3}"
server="$b/examples/uring_echo"; client="$b/examples/echo_client"
[ -x "$server" ] && [ -x "$client" ] || { echo "build uring_echo first (liburing-dev)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
run() { # mode conns bytes -> "MB/s idle_kib"
  "$server" --port 0 $1 > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  for _ in $(seq 50); do [ -s "$tmp/out" ] && break; sleep 0.1; done
  base=$(rss_kb $pid)
  port=$(head -1 "$tmp/out")
  "$client" --port "$port" --conns "$2" --bytes "$3" --chunk 4096 --hold-ms 3000 > "$tmp/c" &
  cpid=$!
  for _ in $(seq 600); do grep -q verified "$tmp/c" && break; sleep 0.1; done
  sleep 1.5 # idle now: the pool's purge thread has had a pass
  idle=$(( $(rss_kb $pid) - base ))
  wait $cpid
  kill -TERM $pid; wait $pid
  mbs=$(sed -n 's/.*verified, \([0-9.]*\) MB\/s.*/\1/p' "$tmp/c")
  echo "$mbs $idle"
}
echo "| connections | bufs | throughput MB/s (median of $rounds) | idle server KiB (median) |"
echo "|---:|---|---:|---:|"
for conns in 100 1000; do
  bytes=$(( conns == 100 ? 4000000 : 400000 ))
  for mode in pool private; do
    opts="--bufs $mode --buf-size 4096"
    [ $mode = pool ] && opts="$opts --nbufs 512"
    : > "$tmp/r"
    for r in $(seq "$rounds"); do run "$opts" $conns $bytes >> "$tmp/r"; done
    t=$(awk '{print $1}' "$tmp/r" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    m=$(awk '{print $2}' "$tmp/r" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "| $conns | $mode | $t | $m |"
    echo "$conns $mode $t $m" >> "$tmp/all"
  done
done
awk '{ t[$1" "$2]=$3; m[$1" "$2]=$4 }
     END { for (c in t) ; 
           n=split("100 1000", cs, " ");
           for (i=1;i<=n;i++) { c=cs[i];
             printf "\n%s connections: pool/private throughput %.2fx, idle memory %.3fx", c,
               t[c" pool"]/t[c" private"], (m[c" private"] ? m[c" pool"]/m[c" private"] : 0) } print "" }' "$tmp/all"
