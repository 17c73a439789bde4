#!/bin/sh
# SPDX-License-Identifier: MIT
# The memory tools see pooled memory: run track_probe's deliberate mistakes
# and expect the tool's report; the clean run must have none.
#   check_track.sh PROBE asan|valgrind
set -u
probe="$1"; tool="$2"
case "$tool" in
  asan) run() { "$probe" "$1" 2>&1; }; want="use-after-poison" ;;
  valgrind) run() { valgrind -q --error-exitcode=99 "$probe" "$1" 2>&1; }; want="Invalid read" ;;
  *) echo "unknown tool $tool"; exit 2 ;;
esac
fail=0
for mode in after-release past-cap past-length; do
  out=$(run $mode); rc=$?
  if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "$want"; then
    echo "$tool reports $mode: ok"
  else
    echo "$tool did NOT report $mode (exit $rc):"; printf '%s\n' "$out" | head -20; fail=1
  fi
done
out=$(run clean); rc=$?
if [ $rc -eq 0 ] && ! printf '%s' "$out" | grep -q "$want"; then
  echo "$tool clean run: ok"
else
  echo "$tool clean run reported something (exit $rc):"; printf '%s\n' "$out" | head -20; fail=1
fi
exit $fail
