#!/bin/sh
# Instructions per operation, from callgrind at two iteration counts.
#   bench/icount.sh [BUILD_DIR]
set -eu
b=${1:-build}
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$b/bench/icount" "$@" 2>&1 |
       awk '/Collected :/ {print $4}'; }
for case in "getput 4096" "getrelease 4096" "getput 128" "getput 65536" "getput_norec 4096" "retain 4096"; do
  set -- $case
  a=$(ir "$1" "$2" 100000); c=$(ir "$1" "$2" 200000)
  echo "$1 $2: $(( (c - a) / 100000 )) instructions per iteration"
done
