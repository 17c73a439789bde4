/* SPDX-License-Identifier: MIT */
/*
 * fuzz_shm - libFuzzer target: libbytepool_shm's counting contract (grants
 * out and back, kept and surplus grants, sweeps of dead peers, at crash
 * points too) against the model of tests/shm_model.h, the fuzzer's bytes
 * as its steps. Where the platform has no memfd or pidfd every input is a
 * no-op, said once on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#define MODEL_CHECK(cond) FUZZ_CHECK(cond)
#include "shm_model.h"

static int state; /* 0 not yet, 1 ready, -1 not here */

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!state) {
        int fd = (int)syscall(SYS_memfd_create, "probe", 0);
        int pfd = fd >= 0 ? (int)syscall(SYS_pidfd_open, getpid(), 0) : -1;
        state = pfd >= 0 ? 1 : -1;
        if (fd >= 0)
            close(fd);
        if (pfd >= 0)
            close(pfd);
        if (state < 0)
            fprintf(stderr, "fuzz_shm: no memfd or pidfd: nothing to fuzz\n");
    }
    if (state < 0 || !size)
        return 0;
    model_bytes in = {data, size, 0};
    model_run(&in);
    return 0;
}
