/* SPDX-License-Identifier: MIT */
/*
 * os.c - the one door to the operating system: aligned mappings, returning
 * pages, the page size and a coarse clock. Everything else asks here, so a
 * port or a fault-injection hook touches this file only. Aligned mappings
 * over-map by the alignment and cut the excess off both ends, because mmap
 * itself promises only page alignment.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE /* Linux 4.17; older kernels ignore it (see bp__os_reserve_at) */
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Test builds can make the k-th OS call fail (issue: fault injection). */
BP_HIDDEN _Atomic long bp__os_fail_countdown = 0;

static bool os_should_fail(void) {
    long k = ld_rlx(&bp__os_fail_countdown);
    if (BP_LIKELY(k == 0))
        return false;
    return atomic_fetch_sub(&bp__os_fail_countdown, 1) == 1;
}

void *bp__os_map(size_t size, size_t align) {
    if (os_should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    size_t span = size + align;
    if (span < size) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((uint8_t *)start + size, tail);
    return (void *)start;
}

/* Address space only: PROT_NONE and MAP_NORESERVE take neither memory nor
 * commit charge until bp__os_commit. Aligned as bp__os_map is. */
void *bp__os_reserve(size_t size, size_t align) {
    size_t span = size + align;
    uint8_t *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw, tail = span - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((uint8_t *)start + size, tail);
    return (void *)start;
}

/* Reserves exactly [addr, addr + size), or fails (EBUSY) when any of it is
 * taken: never moves or replaces a mapping (older kernels that ignore
 * MAP_FIXED_NOREPLACE place it elsewhere, which is undone). */
int bp__os_reserve_at(void *addr, size_t size) {
    void *p = mmap(addr, size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return EBUSY;
    if (p != addr) {
        munmap(p, size);
        return EBUSY;
    }
    return 0;
}

/* Makes reserved pages readable and writable (memory comes when touched). */
int bp__os_commit(void *p, size_t size) {
    if (os_should_fail())
        return ENOMEM;
    return mprotect(p, size, PROT_READ | PROT_WRITE) == 0 ? 0 : ENOMEM;
}

void bp__os_unmap(void *p, size_t size) {
    if (p)
        munmap(p, size);
}

int bp__os_decommit(void *p, size_t size) {
    if (os_should_fail())
        return ENOMEM;
    return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

/* Pages of a shared file mapping (bp_backing): MADV_DONTNEED would only
 * drop this process's view of them; MADV_REMOVE frees them in the file,
 * and every process mapping it then reads zeros there. */
int bp__os_remove(void *p, size_t size) {
    if (os_should_fail())
        return ENOMEM;
    return madvise(p, size, MADV_REMOVE) == 0 ? 0 : errno;
}

/* Replaces whatever is mapped at [p, p + size) with private zero pages,
 * readable and writable, in one call: no moment unmapped. */
int bp__os_private(void *p, size_t size) {
    void *m = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    return m == MAP_FAILED ? errno : 0;
}

/* Retires a mapping without ever leaving its first `keep` bytes unmapped:
 * the rest is unmapped, and those pages are given back with MADV_DONTNEED,
 * which on an anonymous private mapping makes them read as zeros (no memory
 * until written) without a moment of being unmapped. A thread that read a
 * stale segment address from the map may still read the header there; it
 * reads the old header, whose counts are all 0, or zeros, which describe a
 * segment of no slots; either way it refuses. */
void bp__os_retire(void *p, size_t size, size_t keep) {
    if (keep < size)
        munmap((uint8_t *)p + keep, size - keep);
    madvise(p, keep, MADV_DONTNEED);
}

/* Grows a retired mapping of `keep` bytes in place to `size`: 0, EBUSY when
 * the addresses after it are taken, or ENOMEM (the OS refused memory). */
int bp__os_regrow(void *p, size_t keep, size_t size) {
    if (os_should_fail())
        return ENOMEM;
    return mremap(p, keep, size, 0) == MAP_FAILED ? EBUSY : 0;
}

size_t bp__os_page(void) {
    static _Atomic size_t page; /* the first segments may be made by two threads at once */
    size_t pg = ld_rlx(&page);
    if (BP_UNLIKELY(!pg)) {
        pg = (size_t)sysconf(_SC_PAGESIZE);
        st_rlx(&page, pg);
    }
    return pg;
}

/* Condition variables time out on the monotonic clock, which wall-clock
 * changes do not move; bp__os_deadline gives the matching absolute time. */
void bp__os_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void bp__os_deadline(struct timespec *ts, unsigned ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

uint64_t bp__os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t bp__os_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock as the observability layer sees it (observe.h). */
uint64_t bp__now_ms(void) { return bp__os_now_ms(); }

int bp__os_thread_id(void) { return (int)syscall(SYS_gettid); }

/* The kernel's word on where a thread of this process is: its syscall file
 * reads "running", "-1 ..." (stopped in user code: preempted, faulting) or
 * the number of the system call it is blocked in. Only the last counts. */
bool bp__os_thread_in_syscall(int ktid) {
    char path[48], buf[24];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", ktid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 && buf[0] >= '0' && buf[0] <= '9';
}
