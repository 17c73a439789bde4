/* SPDX-License-Identifier: MIT */
/* rss.h - the resident set size of this process, for the tests, the stress
 * program and the benchmark (Linux: /proc/self/statm). */
#ifndef BP_TEST_RSS_H
#define BP_TEST_RSS_H

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

static inline size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

#endif
