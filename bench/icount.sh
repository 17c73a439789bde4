#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions per operation, from callgrind at two iteration counts.
#   bench/icount.sh [BUILD_DIR]
set -eu
b=${1:-build}
ir() { exe=$1; shift
       valgrind --tool=callgrind --callgrind-out-file=/dev/null "$b/bench/$exe" "$@" 2>&1 |
       awk '/Collected :/ {print $4}'; }
for case in "icount getput 4096" "icount getrelease 4096" "icount getput 128" "icount getput 65536" \
            "icount getput_norec 4096" "icount retain 4096" "icount retain_n 4096" \
            "icount retain_watched 4096" "icount lend 4096" "icount ref 4096" \
            "icount fanout 4096" "icount fanout_ref 4096" \
            "icount_shared getput 4096" "icount_shared retain 4096"; do
  set -- $case
  a=$(ir "$1" "$2" "$3" 100000); c=$(ir "$1" "$2" "$3" 200000)
  lib=static; [ "$1" = icount_shared ] && lib=shared
  echo "$2 $3 ($lib): $(( (c - a) / 100000 )) instructions per iteration"
done
