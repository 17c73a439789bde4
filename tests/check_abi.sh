#!/bin/sh
# SPDX-License-Identifier: MIT
# The 0.2 ABI holds: a program built against the 0.2.0 header runs against
# this library, bound to the 0.2 symbols; the same source built against
# today's header runs too, bound to the *_sized calls.
#   check_abi.sh OLD_BINARY NEW_BINARY
set -eu
old="$1"; new="$2"
nm -D "$old" | grep -q ' U bp_pool_new@BYTEPOOL_0$' ||
  { echo "FAIL: the 0.2 program does not call bp_pool_new@BYTEPOOL_0"; exit 1; }
nm -D "$new" | grep -q ' U bp_pool_new_sized@BYTEPOOL_0.3$' ||
  { echo "FAIL: today's build does not call bp_pool_new_sized@BYTEPOOL_0.3"; exit 1; }
"$old"
"$new"
