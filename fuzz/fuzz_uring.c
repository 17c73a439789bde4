/* SPDX-License-Identifier: MIT */
/*
 * fuzz_uring - libFuzzer target: the provided-buffer ring's state machine
 * (kernel-owned, sliced, program-owned) against the model of
 * tests/uring_model.h, the fuzzer's bytes as its steps. The first byte
 * picks plain or incremental mode; any divergence aborts. Where the kernel
 * has no io_uring every input is a no-op, said once on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#define MODEL_CHECK(cond) FUZZ_CHECK(cond)
#include "uring_model.h"

static struct io_uring ring;
static bp_pool *pool;
static int state; /* 0 not yet, 1 ready, -1 no io_uring */

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!state) {
        state = io_uring_queue_init(8, &ring, 0) == 0 ? 1 : -1;
        if (state < 0)
            fprintf(stderr, "fuzz_uring: io_uring not available: nothing to fuzz\n");
        pool = bp_pool_new(NULL);
    }
    if (state < 0 || !size)
        return 0;
    model_bytes in = {data + 1, size - 1, 0};
    model_run(pool, &ring, 3, data[0] & 1 ? BP_URING_INC : 0, &in);
    bp_stats st;
    MODEL_CHECK(bp_pool_stats(pool, &st) == 0);
    MODEL_CHECK(st.outstanding == 0); /* every buffer of the ring went home */
    return 0;
}
