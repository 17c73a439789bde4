#!/bin/sh
# SPDX-License-Identifier: MIT
# Used through add_subdirectory or FetchContent, the project builds its
# libraries only: no tests, benches or examples, and no -Werror.
#   check_subproject.sh SOURCE_DIR
set -eu
src="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for how in OFF ON; do
  b="$tmp/b$how"
  cmake -S "$src/tests/subproject" -B "$b" -DBP_SRC="$src" -DUSE_FETCHCONTENT=$how \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
  targets=$(cmake --build "$b" --target help)
  for t in test_tier fanout bench icount stress; do
    if printf '%s\n' "$targets" | grep -q "^\.\.\. $t\$\|^$t:"; then
      echo "FAIL: as a subproject (FetchContent=$how) it defines the target $t"; exit 1
    fi
  done
  if grep -q -- '-Werror' "$b/compile_commands.json"; then
    echo "FAIL: as a subproject (FetchContent=$how) it compiles with -Werror"; exit 1
  fi
  cmake --build "$b" >/dev/null
  "$b/app"
done
echo "subproject: libraries only, no -Werror (add_subdirectory and FetchContent)"
