#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the build into a scratch prefix and builds consumers against it:
# with pkg-config (shared and --static) and with CMake's find_package, for
# libbytepool and, when it was built, libbytepool_http. The static programs
# must not need the shared libraries at run time.
#   check_install.sh BUILD_DIR CONSUMER_SRC
set -eu
build="$1"; src="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
static_only() { # $1: a program linked statically against our libraries
  if ldd "$1" | grep -q 'libbytepool'; then echo "FAIL: $1 needs a shared libbytepool"; exit 1; fi
  "$1"
}
cc -std=c11 -o "$tmp/c1" "$src/main.c" $(pkg-config --cflags --libs bytepool)
LD_LIBRARY_PATH="$libdir" "$tmp/c1"
cc -std=c11 -o "$tmp/c1s" "$src/main.c" $(pkg-config --cflags bytepool) \
  "$libdir/libbytepool.a" $(pkg-config --static --libs-only-l bytepool | sed 's/-lbytepool//')
static_only "$tmp/c1s"
# the README's static line: the archive by name, next to the shared library
cc -std=c11 -o "$tmp/c1r" "$src/main.c" $(pkg-config --cflags bytepool) -L"$libdir" \
  -l:libbytepool.a -lpthread
static_only "$tmp/c1r"
http=no
if [ -f "$libdir/pkgconfig/bytepool_http.pc" ]; then
  http=yes
  cc -std=c11 -o "$tmp/h1" "$src/http_main.c" $(pkg-config --cflags --libs bytepool_http)
  LD_LIBRARY_PATH="$libdir" "$tmp/h1"
  # our archives; libmicrohttpd as the system has it
  cc -std=c11 -o "$tmp/h1s" "$src/http_main.c" $(pkg-config --cflags bytepool_http) \
    "$libdir/libbytepool_http.a" "$libdir/libbytepool.a" -lmicrohttpd -lpthread
  static_only "$tmp/h1s"
fi
if [ -f "$libdir/pkgconfig/bytepool_uring.pc" ]; then
  cc -std=c11 -o "$tmp/u1" "$src/uring_main.c" $(pkg-config --cflags --libs bytepool_uring)
  LD_LIBRARY_PATH="$libdir" "$tmp/u1"
fi
if [ -f "$libdir/pkgconfig/bytepool_shm.pc" ]; then
  cc -std=c11 -o "$tmp/s1" "$src/shm_main.c" $(pkg-config --cflags --libs bytepool_shm)
  LD_LIBRARY_PATH="$libdir" "$tmp/s1"
fi
cmake -S "$src" -B "$tmp/cb" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cb" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/cb/consumer"
static_only "$tmp/cb/consumer_static"
if [ "$http" = yes ]; then
  [ -x "$tmp/cb/http_consumer" ] || { echo "FAIL: find_package gave no bytepool::http"; exit 1; }
  LD_LIBRARY_PATH="$libdir" "$tmp/cb/http_consumer"
  static_only "$tmp/cb/http_consumer_static"
fi
if [ -f "$libdir/pkgconfig/bytepool_uring.pc" ]; then
  [ -x "$tmp/cb/uring_consumer" ] || { echo "FAIL: find_package gave no bytepool::uring"; exit 1; }
  static_only "$tmp/cb/uring_consumer"
fi
if [ -f "$libdir/pkgconfig/bytepool_shm.pc" ]; then
  [ -x "$tmp/cb/shm_consumer" ] || { echo "FAIL: find_package gave no bytepool::shm"; exit 1; }
  LD_LIBRARY_PATH="$libdir" "$tmp/cb/shm_consumer"
  static_only "$tmp/cb/shm_consumer_static"
fi
[ -f "$tmp/prefix/share/man/man3/bytepool.3" ] || { echo "FAIL: man pages not installed"; exit 1; }
[ -f "$tmp/prefix/include/bytepool.hpp" ] || { echo "FAIL: bytepool.hpp not installed"; exit 1; }
echo "installed package: pkg-config and find_package, shared and static (http: $http)"
