#!/bin/sh
# SPDX-License-Identifier: MIT
# `make demo` on a machine with only a compiler, make and cmake, as a user
# who is not root: a copy of the tree is built as `nobody` (when this runs
# as root) with a pkg-config that finds nothing (so no cmocka,
# libmicrohttpd, libavutil) and without ninja; the demo must build and run.
#   check_demo.sh SOURCE_DIR
set -eu
src="$1"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$src" && git ls-files -co --exclude-standard 2>/dev/null || find . -type f -not -path './build*' -not -path './.git/*') |
  grep -v '^build' | (cd "$src" && tar cf - -T -) | (cd "$tmp" && mkdir src && cd src && tar xf -)
mkdir "$tmp/bin"
printf '#!/bin/sh\nexit 1\n' > "$tmp/bin/pkg-config"; chmod +x "$tmp/bin/pkg-config"
run="sh -c"
if [ "$(id -u)" = 0 ]; then
  chown -R nobody "$tmp"
  run="setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c"
fi
$run "cd '$tmp/src' && HOME='$tmp' PATH='$tmp/bin':\$PATH make demo GEN= BUILD='$tmp/b' JOBS=2" \
  > "$tmp/log" 2>&1 || { tail -30 "$tmp/log"; echo "FAIL: make demo"; exit 1; }
grep -q "installing\|apt-get" "$tmp/log" && { echo "FAIL: make demo tried to install packages"; exit 1; }
[ -x "$tmp/b/examples/fanout" ] || { echo "FAIL: no demo binary"; exit 1; }
[ ! -e "$tmp/b/tests/test_tier" ] || { echo "FAIL: tests built without cmocka?"; exit 1; }
others=$(find "$tmp/b/bench" "$tmp/b/examples" -type f -perm -u+x ! -name fanout 2>/dev/null | head -3)
[ -z "$others" ] || { echo "FAIL: make demo built more than it runs: $others"; exit 1; }
tail -3 "$tmp/log"
echo "make demo: built and ran as $($run 'id -un'), without pkg-config or ninja"
