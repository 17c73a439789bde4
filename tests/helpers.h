/* SPDX-License-Identifier: MIT */
/* helpers.h - shared test helpers: cmocka includes, a death-test runner
 * (fork, run a body in the child, check it aborted with a message), and
 * small process-memory readers. */
#ifndef BP_TEST_HELPERS_H
#define BP_TEST_HELPERS_H

#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bytepool.h"
#include "rss.h"

/* Whether the page holding p holds memory: mapped (mincore fails with
 * ENOMEM for an unmapped range) and resident. Segments of the reserved range
 * stay mapped when freed, their pages given back (MADV_DONTNEED); others are
 * unmapped. (A release of a freed address is not proof: it may fall in a
 * remembered oversize range and get EALREADY.) */
static inline int is_resident(const void *p) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char v = 0;
    return mincore((void *)((uintptr_t)p & ~(uintptr_t)(pg - 1)), pg, &v) == 0 && (v & 1);
}

/* Runs body(arg) in a child process with stderr captured. Returns the
 * child's wait status; the first bytes of its stderr go to msg. */
static inline int run_in_child(void (*body)(void *), void *arg, char *msg, size_t msglen) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        body(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], msg + got, msglen - 1 - got)) > 0 && got < msglen - 1)
        got += (size_t)n;
    msg[got] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

#define assert_child_aborted(status) assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)

/* Writes text to a temporary file and runs cmd_fmt with its path in place
 * of %s; returns the command's status (0: the checker accepted it). */
static inline int run_on(const char *text, const char *cmd_fmt) {
    char path[] = "/tmp/bp_test_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return -1;
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, cmd_fmt, path);
    int rc = system(cmd);
    unlink(path);
    return rc;
}

/* 0 when jq evaluates expr on the JSON text to true (and it parses). */
static inline int jq_check(const char *json, const char *expr) {
    char fmt[900];
    snprintf(fmt, sizeof fmt, "jq -e '%s' %%s >/dev/null 2>&1", expr);
    return run_on(json, fmt);
}

static inline bp_pool *new_pool_sizes(const size_t *sizes, size_t n) {
    bp_config cfg = {0};
    cfg.sizes = sizes;
    cfg.nsizes = n;
    return bp_pool_new(&cfg);
}

#endif
