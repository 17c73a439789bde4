/* SPDX-License-Identifier: MIT */
/* Structs that grow: every call taking a caller-allocated struct also takes
 * its size (the header's macros pass sizeof), so a program built against an
 * older header, with a shorter struct, still works, and one built against a
 * newer header cannot be misread (docs/abi.md). The functions under the
 * macros' own names keep the 0.2 layouts for binaries built before them. */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* The 0.2 layouts: the smallest struct each call accepts. Fields are only
 * appended, so these stay where 0.2 ended. */
#define CONFIG_0_2 BP_END_OF(bp_config, max_bytes)
#define STATS_0_2 BP_END_OF(bp_stats, tiers)
#define OBJCONFIG_0_2 BP_END_OF(bp_objpool_config, tcache_bytes)
#define OBJSTATS_0_2 BP_END_OF(bp_obj_stats, refused)

#if UINTPTR_MAX == UINT64_MAX
/* What 0.2 shipped on LP64 (x86_64, aarch64): a field moved is an ABI break. */
_Static_assert(CONFIG_0_2 == 96 && STATS_0_2 == 3184, "0.2 ABI moved");
_Static_assert(OBJCONFIG_0_2 == 40 && OBJSTATS_0_2 == 48, "0.2 ABI moved");
#endif

int bp__abi_in(void *ours, size_t ours_size, const void *theirs, size_t size, size_t min) {
    if (size < min)
        return EINVAL;
    const unsigned char *t = theirs;
    for (size_t i = ours_size; i < size; i++) /* fields this library does not know */
        if (t[i])
            return E2BIG;
    memset(ours, 0, ours_size);
    memcpy(ours, theirs, size < ours_size ? size : ours_size);
    return 0;
}

int bp__abi_out(void *theirs, size_t size, const void *ours, size_t ours_size, size_t min) {
    if (size < min)
        return EINVAL;
    memcpy(theirs, ours, size < ours_size ? size : ours_size);
    if (size > ours_size)
        memset((unsigned char *)theirs + ours_size, 0, size - ours_size);
    return 0;
}

bp_pool *(bp_pool_new)(const bp_config *cfg) { return bp_pool_new_sized(cfg, CONFIG_0_2); }

bp_pool *bp_pool_new_sized(const bp_config *cfg, size_t cfg_size) {
    bp_config c;
    int err = cfg ? bp__abi_in(&c, sizeof c, cfg, cfg_size, CONFIG_0_2) : 0;
    if (err) {
        if (err == E2BIG)
            bp__config_error(err,
                             "bp_config of %zu bytes sets fields this library (%zu bytes) does "
                             "not know: built against a newer header",
                             cfg_size, sizeof c);
        else
            bp__config_error(err, "bp_config of %zu bytes is smaller than the 0.2 layout (%zu)",
                             cfg_size, (size_t)CONFIG_0_2);
        bp__refuse(NULL, err, "bp_pool_new", bp_config_error());
        errno = err;
        return NULL;
    }
    return bp__pool_new(cfg ? &c : NULL);
}

int(bp_pool_stats)(bp_pool *pool, bp_stats *out) {
    return bp_pool_stats_sized(pool, out, STATS_0_2);
}

int bp_pool_stats_sized(bp_pool *pool, bp_stats *out, size_t out_size) {
    if (!pool || !out || out_size < STATS_0_2)
        return bp__refuse_user(pool, EINVAL, "bp_pool_stats", NULL);
    bp_stats st;
    bp__pool_stats(pool, &st);
    return bp__abi_out(out, out_size, &st, sizeof st, STATS_0_2);
}

bp_objpool *(bp_objpool_new)(const bp_objpool_config *cfg) {
    return bp_objpool_new_sized(cfg, OBJCONFIG_0_2);
}

bp_objpool *bp_objpool_new_sized(const bp_objpool_config *cfg, size_t cfg_size) {
    bp_objpool_config c;
    int err = cfg ? bp__abi_in(&c, sizeof c, cfg, cfg_size, OBJCONFIG_0_2) : EINVAL;
    if (err) {
        errno = err;
        return NULL;
    }
    return bp__objpool_new(&c);
}

int(bp_objpool_stats)(bp_objpool *op, bp_obj_stats *out) {
    return bp_objpool_stats_sized(op, out, OBJSTATS_0_2);
}

int bp_objpool_stats_sized(bp_objpool *op, bp_obj_stats *out, size_t out_size) {
    if (!op || !out || out_size < OBJSTATS_0_2)
        return EINVAL;
    bp_obj_stats st;
    int err = bp__objpool_stats(op, &st);
    return err ? err : bp__abi_out(out, out_size, &st, sizeof st, OBJSTATS_0_2);
}
