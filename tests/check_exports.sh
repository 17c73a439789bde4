#!/bin/sh
# SPDX-License-Identifier: MIT
# Fails when the shared library exports a symbol not named bp_*, or no bp_get.
set -eu
lib="$1"; must="${2:-bp_get}"
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
bad=$(printf '%s\n' "$syms" | grep -v '^bp_' | grep -v '^_init$' | grep -v '^_fini$' || true)
if [ -n "$bad" ]; then echo "non-bp_ exports:"; echo "$bad"; exit 1; fi
printf '%s\n' "$syms" | grep -qx "$must" || { echo "$must not exported"; exit 1; }
echo "exports ok: $(printf '%s\n' "$syms" | grep -c '^bp_') bp_ symbols"
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
case "$soname" in libbytepool*.so.[0-9]*) echo "soname $soname";; *) echo "bad SONAME '$soname'"; exit 1;; esac
