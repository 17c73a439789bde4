#!/bin/sh
# SPDX-License-Identifier: MIT
# A failed or interrupted first configure is not sticky: with a build
# directory that has a CMakeCache.txt but no build files, `make configure`
# must configure again (it used to skip, and every later make failed on the
# missing build.ninja until `make clean`).
#   check_configure.sh SOURCE_DIR
set -eu
src="$1"; dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
make -s -C "$src" configure BUILD="$dir/b" >/dev/null
[ -f "$dir/b/CMakeCache.txt" ] || { echo "FAIL: no first configure"; exit 1; }
rm -f "$dir/b/build.ninja" "$dir/b/Makefile" # as an interrupted configure leaves it
make -s -C "$src" configure BUILD="$dir/b" >/dev/null
if [ -f "$dir/b/build.ninja" ] || [ -f "$dir/b/Makefile" ]; then
  echo "configure after an interrupted one: ok"
else
  echo "FAIL: make configure left the build directory without build files"; exit 1
fi
