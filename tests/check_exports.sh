#!/bin/sh
# SPDX-License-Identifier: MIT
# Fails when the shared library exports a symbol not named bp_*, or no bp_get;
# given a version script and a header, also when the library's bp_ exports,
# the script's list and the header's BP_API functions are not the same set.
set -eu
lib="$1"; must="${2:-bp_get}"; map="${3:-}"; hdr="${4:-}"
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {sub(/@.*/, "", $3); print $3}' | grep -v '^BYTEPOOL_')
node=$(sed -n 's/^\(BYTEPOOL[A-Z_]*_0\) {.*/\1/p' "${map:-/dev/null}" | head -1)
bad=$(printf '%s\n' "$syms" | grep -v '^bp_' | grep -v '^_init$' | grep -v '^_fini$' || true)
if [ -n "$bad" ]; then echo "non-bp_ exports:"; echo "$bad"; exit 1; fi
printf '%s\n' "$syms" | grep -qx "$must" || { echo "$must not exported"; exit 1; }
if [ -n "$map" ]; then
  t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
  printf '%s\n' "$syms" | grep '^bp_' | sort > "$t/lib"
  grep -o '^ *bp_[a-z0-9_]*;' "$map" | tr -d ' ;' | sort > "$t/map"
  grep -o 'BP_API [^;]*' "$hdr" | grep -o 'bp_[a-z0-9_]*(' | tr -d '(' | sort -u > "$t/hdr"
  diff -u "$t/map" "$t/lib" || { echo "version script and exports differ"; exit 1; }
  diff -u "$t/map" "$t/hdr" || { echo "version script and header differ"; exit 1; }
  echo "version script: $(wc -l < "$t/map") symbols, as exported and declared"
  objdump -T "$lib" | grep -q "$node" || { echo "symbols carry no $node version"; exit 1; }
fi
echo "exports ok: $(printf '%s\n' "$syms" | grep -c '^bp_') bp_ symbols"
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
case "$soname" in libbytepool*.so.[0-9]*) echo "soname $soname";; *) echo "bad SONAME '$soname'"; exit 1;; esac
