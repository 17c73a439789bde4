/* SPDX-License-Identifier: MIT */
/*
 * wire.c - the system calls both ends share: socket addresses, messages
 * with descriptors (SCM_RIGHTS), sealed memfds, pidfds, eventfds, and the
 * one look at /proc that tells whether a process still maps the pool.
 * Every send uses MSG_NOSIGNAL: nothing here ever raises SIGPIPE.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef F_SEAL_SHRINK
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif

int shm_addr(const char *path, void *out, unsigned *len) {
    struct sockaddr_un *sun = out;
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof(sun->sun_path) || (path[0] == '@' && n == 1))
        return EINVAL;
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    if (path[0] == '@') /* abstract: a leading NUL, no terminator counted */
        sun->sun_path[0] = '\0';
    *len = (unsigned)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
    return 0;
}

int shm_send_msg(int sock, const shm_msg *m, const int *fds, int nfds) {
    struct iovec iov = {(void *)m, sizeof(*m)};
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    for (;;) {
        ssize_t r = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (r == (ssize_t)sizeof(*m))
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? errno : EPROTO;
    }
}

int shm_recv_msg(int sock, shm_msg *m, int *fds, int *nfds, int flags) {
    struct iovec iov = {m, sizeof(*m)};
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    int want = nfds ? *nfds : 0, got = 0;
    if (nfds)
        *nfds = 0;
    ssize_t r;
    do
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *in = (int *)CMSG_DATA(c);
        for (int i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, &in[i], sizeof fd);
            if (got < want)
                fds[got++] = fd;
            else
                close(fd); /* more than asked for: never leaked */
        }
    }
    if (nfds)
        *nfds = got;
    if (r == 0)
        return EPIPE;
    if (r != (ssize_t)sizeof(*m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (int i = 0; i < got; i++)
            close(fds[i]);
        if (nfds)
            *nfds = 0;
        return EPROTO;
    }
    return 0;
}

/* A memfd of `bytes`, sealed against shrinking (and, unless grow, against
 * growing) before any other process can see it; -1 with errno. */
int shm_memfd(const char *name, size_t bytes, bool grow) {
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    int seals = F_SEAL_SHRINK | (grow ? 0 : F_SEAL_GROW | F_SEAL_SEAL);
    if (ftruncate(fd, (off_t)bytes) != 0 || fcntl(fd, F_ADD_SEALS, seals) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int shm_reopen_ro(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_RDONLY | O_CLOEXEC);
}

int shm_file_bytes(int fd, size_t *bytes) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    *bytes = (size_t)st.st_size;
    return 0;
}

int shm_pidfd_self(void) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, getpid(), 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* The "Pid:" line of the pidfd's fdinfo (Linux 5.4 and later). */
int shm_pidfd_pid(int pidfd) {
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int pid = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pid: %d", &pid) == 1)
            break;
    fclose(f);
    return pid;
}

void shm_wake(int efd) {
    uint64_t one = 1;
    ssize_t r = write(efd, &one, sizeof one); /* a full counter is still readable: enough */
    (void)r;
}

void shm_drain(int efd) {
    uint64_t v;
    ssize_t r = read(efd, &v, sizeof v); /* nonblocking */
    (void)r;
}

uint64_t shm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Does pid still map the file (dev, ino)? /proc/pid/maps names each
 * mapping's device and inode. A process that is gone maps nothing. */
bool shm_maps_inode(pid_t pid, uint64_t dev, uint64_t ino) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    unsigned maj, min;
    uint64_t i;
    while (!found && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%*x-%*x %*s %*x %x:%x %" SCNu64, &maj, &min, &i) == 3)
            found = i == ino && (uint64_t)makedev(maj, min) == dev;
        if (!strchr(line, '\n')) { /* a long name: skip the rest of the line */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
        }
    }
    fclose(f);
    return found;
}
