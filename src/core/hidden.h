/* SPDX-License-Identifier: MIT */
/*
 * hidden.h - the mark of every internal name: hidden from the shared
 * library's dynamic symbols (tests/check_exports.sh checks that only bp_*
 * names are exported). The core's, included by internal.h and by observe.h,
 * the interface it gives the observability layer.
 */
#ifndef BP_HIDDEN_H
#define BP_HIDDEN_H

#define BP_HIDDEN __attribute__((visibility("hidden")))

#endif /* BP_HIDDEN_H */
