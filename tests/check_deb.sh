#!/bin/sh
# SPDX-License-Identifier: MIT
# `make deb`: builds the Debian packages from a copy of the tree with
# dpkg-buildpackage; the symbols each package records must be exactly its
# debian/*.symbols file (a symbol added or lost without it fails),
# then checks what each package holds and builds a program against the
# unpacked libbytepool-dev with its pkg-config file.
#   check_deb.sh SOURCE_DIR [OUT_DIR]
set -eu
src="$1"; out="${2:-}"
for t in dpkg-buildpackage dh; do
  command -v $t >/dev/null || { echo "FAIL: $t missing (make deps installs dpkg-dev, debhelper)"; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/libbytepool"
(cd "$src" && git ls-files -co --exclude-standard | grep -v '^build' | tar cf - -T -) |
  (cd "$tmp/libbytepool" && tar xf -)
(cd "$tmp/libbytepool" && dpkg-buildpackage -us -uc -b) > "$tmp/log" 2>&1 ||
  { tail -40 "$tmp/log"; echo "FAIL: dpkg-buildpackage"; exit 1; }
arch=$(dpkg --print-architecture)
ver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
for p in libbytepool0 libbytepool-http0 libbytepool-uring0 libbytepool-shm0 libbytepool-dev; do
  [ -f "$tmp/${p}_${ver}_$arch.deb" ] || { echo "FAIL: no $p package"; exit 1; }
done
has() { # package path-pattern
  dpkg-deb -c "$tmp/$1_${ver}_$arch.deb" > "$tmp/contents"
  grep -q "$2" "$tmp/contents" || { echo "FAIL: $1 lacks $2"; exit 1; }
}
has libbytepool0 'libbytepool\.so\.0\.'
has libbytepool-http0 'libbytepool_http\.so\.0\.'
has libbytepool-uring0 'libbytepool_uring\.so\.0\.'
has libbytepool-shm0 'libbytepool_shm\.so\.0\.'
has libbytepool-dev 'include/bytepool_shm\.h$'
has libbytepool-dev 'pkgconfig/bytepool_shm\.pc$'
has libbytepool-dev 'man3/bp_shm_send\.3'
has libbytepool-dev 'include/bytepool_uring\.h$'
has libbytepool-dev 'pkgconfig/bytepool_uring\.pc$'
has libbytepool-dev 'man3/bp_uring_bufs_take\.3'
has libbytepool-dev 'include/bytepool\.h$'
has libbytepool-dev 'include/bytepool\.hpp$'
has libbytepool-dev 'pkgconfig/bytepool_http\.pc$'
has libbytepool-dev 'cmake/bytepool/bytepoolConfig\.cmake$'
has libbytepool-dev 'man3/bp_get\.3'
has libbytepool-dev 'libbytepool\.a$'
dpkg-deb -I "$tmp/libbytepool0_${ver}_$arch.deb" > "$tmp/info"
grep -q 'Depends:.*libc6' "$tmp/info" ||
  { echo "FAIL: libbytepool0 has no shlibs dependencies"; exit 1; }
for p in libbytepool0 libbytepool-http0 libbytepool-uring0 libbytepool-shm0; do
  dpkg-deb --ctrl-tarfile "$tmp/${p}_${ver}_$arch.deb" | tar xOf - ./symbols > "$tmp/$p.sym"
  diff -u "$src/debian/$p.symbols" "$tmp/$p.sym" ||
    { echo "FAIL: the exports of $p differ from debian/$p.symbols"; exit 1; }
done
mkdir "$tmp/root"
for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/root"; done
pc=$(ls -d "$tmp"/root/usr/lib/*/pkgconfig)
cc -std=c11 -o "$tmp/app" "$src/tests/consumer/main.c" \
  $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs bytepool)
LD_LIBRARY_PATH=$(dirname "$pc") "$tmp/app"
cc -std=c11 -o "$tmp/uapp" "$src/tests/consumer/uring_main.c" \
  $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs bytepool_uring)
LD_LIBRARY_PATH=$(dirname "$pc") "$tmp/uapp"
cc -std=c11 -o "$tmp/sapp" "$src/tests/consumer/shm_main.c" \
  $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs bytepool_shm)
LD_LIBRARY_PATH=$(dirname "$pc") "$tmp/sapp"
[ -z "$out" ] || { mkdir -p "$out" && cp "$tmp"/*.deb "$out/"; }
echo "debian packages $ver: $(cd "$tmp" && ls *.deb | tr '\n' ' ')"
