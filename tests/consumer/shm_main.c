/* SPDX-License-Identifier: MIT */
/* A program that uses libbytepool_shm as installed: an owner on an abstract
 * socket, its pool, and the refusals of a call on the wrong end. */
#include <bytepool_shm.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "@bytepool-consumer-%d", (int)getpid());
    bp_shm_config cfg = {.flags = BP_SHM_NO_THREAD};
    bp_shm *s = bp_shm_create(path, NULL, &cfg);
    int ok = s != NULL;
    void *p = ok ? bp_get(bp_shm_pool(s), 100) : NULL;
    size_t len;
    ok =
        ok && p && bp_shm_send(s, 1, p, 10) == ENOENT && !bp_shm_recv(s, &len, 0) && errno == EPERM;
    if (p)
        bp_put(bp_shm_pool(s), p);
    ok = ok && bp_shm_close(s, 0) == 0;
    printf("shm consumer %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
