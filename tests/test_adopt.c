/* SPDX-License-Identifier: MIT */
/*
 * test_adopt.c - the core's pools over memory the program maps: a backed
 * pool (bp_config.backing: the program maps each segment's buffers), an
 * adopted pool (BP_ADOPTED: bp_segment_adopt, bp_claim, on_free), their
 * refusals, and a fork() child's detached copy. libbytepool_shm is their
 * user (test_shm); here they are driven directly, with a memfd.
 */
#include "helpers.h"

#include <sys/syscall.h>

/* ---- a backed pool: its buffers in a memfd --------------------------------- */

typedef struct file_map {
    int fd;
    size_t end; /* the file's next free offset */
    int maps, unmaps;
    void *last; /* the last segment's buffers, in the owner */
    size_t off; /* and where they are in the file */
    bp_segment_desc d;
} file_map;

static int map_file(void *ctx, void *addr, size_t len, const bp_segment_desc *d) {
    file_map *f = ctx;
    if (ftruncate(f->fd, (off_t)(f->end + len)) != 0)
        return errno;
    if (mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f->fd, (off_t)f->end) ==
        MAP_FAILED)
        return errno;
    f->last = addr;
    f->off = f->end;
    f->d = *d;
    f->end += len;
    f->maps++;
    return 0;
}

static void unmap_file(void *ctx, void *addr, size_t len) {
    (void)addr, (void)len;
    ((file_map *)ctx)->unmaps++;
}

/* ---- an adopted pool over the same file ------------------------------------------- */

typedef struct adopted {
    int fd;
    size_t off;
    int frees;
    void *freed;
} adopted;

static int map_ro(void *ctx, void *addr, size_t len) {
    adopted *a = ctx;
    return mmap(addr, len, PROT_READ, MAP_SHARED | MAP_FIXED, a->fd, (off_t)a->off) == MAP_FAILED
               ? errno
               : 0;
}

static void on_free(void *ctx, void *buf) {
    adopted *a = ctx;
    a->frees++;
    a->freed = buf;
}

static int memfd(void) { return (int)syscall(SYS_memfd_create, "test-adopt", 0); }

static void backed_and_adopted(void **state) {
    (void)state;
    file_map f = {.fd = memfd()};
    assert_true(f.fd >= 0);
    bp_backing b = {.map = map_file, .unmap = unmap_file, .ctx = &f};
    bp_config c = {.backing = &b, .flags = BP_NO_BACKGROUND};
    bp_pool *owner = bp_pool_new(&c);
    assert_non_null(owner);
    uint8_t *p = bp_get(owner, 1000);
    assert_non_null(p);
    assert_int_equal(f.maps, 1);
    assert_int_equal(f.d.size, 1024);
    assert_true(((uintptr_t)f.last & 4095) == 0); /* buffers start on a page */
    assert_true(p >= (uint8_t *)f.last && p < (uint8_t *)f.last + f.d.nslots * f.d.stride);
    memcpy(p, "shared!", 8);

    /* the same pages, adopted read-only as a peer would */
    adopted a = {.fd = f.fd, .off = f.off};
    bp_backing ab = {.on_free = on_free, .ctx = &a};
    bp_config ac = {.backing = &ab, .flags = BP_ADOPTED};
    bp_pool *peer = bp_pool_new(&ac);
    assert_non_null(peer);
    uint8_t *base = bp_segment_adopt(peer, &f.d, map_ro, &a);
    assert_non_null(base);
    uint8_t *q = base + (p - (uint8_t *)f.last);
    assert_memory_equal(q, "shared!", 8);
    assert_int_equal(bp_refcount(q), 0); /* free until claimed */
    assert_null(bp_retain(q));
    assert_int_equal(bp_claim(q + 10), 0); /* an interior pointer names the buffer */
    assert_int_equal(bp_claim(q), EBUSY);
    assert_int_equal(bp_refcount(q + 5), 1);
    assert_int_equal(bp_cap(q + 24), 1000);
    assert_ptr_equal(bp_base(q + 24), q);
    assert_ptr_equal(bp_retain(q), q);
    assert_int_equal(bp_release(q), 0);
    assert_int_equal(a.frees, 0);
    assert_int_equal(bp_release(q + 1), 0); /* the last: on_free, nothing goes home */
    assert_int_equal(a.frees, 1);
    assert_ptr_equal(a.freed, q);
    assert_int_equal(bp_release(q), EALREADY);
    assert_null(bp_get(peer, 10));
    assert_int_equal(errno, EPERM);
    assert_null(bp_get_zeroed(peer, 10));
    assert_int_equal(errno, EPERM);
    assert_int_equal(bp_pool_reserve(peer, 10, 1), EPERM);

    /* a fork() child's copies: detached */
    fflush(NULL);
    pid_t c2 = fork();
    if (c2 == 0) {
        int ok = !bp_get(owner, 10) && errno == EPERM && bp_claim(q) == EPERM;
        ok = ok && bp_put(owner, p) == 0 && bp_refcount(p) == 0; /* its count, its copy */
        _exit(ok ? 0 : 1);
    }
    int st;
    waitpid(c2, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(bp_refcount(p), 1); /* the parent's count is its own */
    assert_memory_equal(p, "shared!", 8);

    assert_int_equal(bp_pool_destroy(peer), 0); /* every adopted buffer free: unmapped */
    assert_int_equal(bp_put(owner, p), 0);
    assert_int_equal(bp_pool_destroy(owner), 0);
    assert_int_equal(f.unmaps, 1);
    close(f.fd);
}

static void refusals(void **state) {
    (void)state;
    bp_backing none = {0}, both = {.map = map_file, .on_free = on_free};
    bp_config c = {.flags = BP_ADOPTED};
    assert_null(bp_pool_new(&c)); /* adopted needs on_free */
    assert_int_equal(errno, EINVAL);
    assert_non_null(bp_config_error());
    c.backing = &both;
    assert_null(bp_pool_new(&c));
    c = (bp_config){.backing = &none};
    assert_null(bp_pool_new(&c)); /* a backing with no map */
    c.backing = &both;
    assert_null(bp_pool_new(&c));

    bp_pool *plain = bp_pool_new(NULL);
    bp_segment_desc d = {.size = 1000, .stride = 1024, .nslots = 4};
    adopted a = {.fd = -1};
    assert_null(bp_segment_adopt(plain, &d, map_ro, &a)); /* not an adopted pool */
    assert_int_equal(errno, EPERM);
    void *p = bp_get(plain, 100);
    assert_int_equal(bp_claim(p), EINVAL); /* a buffer, but not an adopted one */
    assert_int_equal(bp_claim(NULL), EINVAL);
    char foreign[16];
    assert_int_equal(bp_claim(foreign), EINVAL);
    bp_put(plain, p);

    bp_backing ab = {.on_free = on_free, .ctx = &a};
    bp_config ac = {.backing = &ab, .flags = BP_ADOPTED};
    bp_pool *peer = bp_pool_new(&ac);
    const bp_segment_desc bad[] = {
        {.size = 0, .stride = 64, .nslots = 1},
        {.size = 100, .stride = 64, .nslots = 1},  /* stride under size */
        {.size = 100, .stride = 100, .nslots = 2}, /* not a multiple of 64 */
        {.size = 64, .stride = 64, .nslots = 0},
        {.size = 4096, .stride = 4096, .nslots = 2048}, /* 8 MiB of buffers */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(bp_segment_adopt(peer, &bad[i], map_ro, &a));
        assert_int_equal(errno, EINVAL);
    }
    assert_null(bp_segment_adopt(peer, NULL, map_ro, &a));
    assert_null(bp_segment_adopt(peer, &d, NULL, &a));
    assert_null(bp_segment_adopt(peer, &d, map_ro, &a)); /* the map fails: its error */
    assert_int_equal(errno, EBADF);
    assert_int_equal(bp_pool_destroy(peer), 0);
    bp_pool_destroy(plain);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backed_and_adopted),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
