#!/bin/sh
# SPDX-License-Identifier: MIT
# bytepool.hpp compiles cleanly with g++ and clang++ at C++17 and C++20
# (-Wall -Wextra -Werror -pedantic) and its test passes under ASan+UBSan.
#   check_cxx.sh SOURCE_DIR LIBBYTEPOOL_A
set -eu
src="$1"; lib="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null || { echo "FAIL: $cxx not installed (make deps)"; exit 1; }
  for std in 17 20; do
    "$cxx" -std=c++$std -Wall -Wextra -Werror -pedantic -g -fsanitize=address,undefined \
      -fno-sanitize-recover=all -I"$src/include" -o "$tmp/t" "$src/tests/cxx/test_cxx.cpp" \
      "$lib" -lpthread
    ASAN_OPTIONS=detect_leaks=1 "$tmp/t" | sed "s/^/$cxx: /"
    n=$((n + 1))
  done
done
echo "C++ header: $n builds, all passed"
