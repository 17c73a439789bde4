/* SPDX-License-Identifier: MIT */
/* quickstart.c - the README's quick start as a program: a buffer filled by
 * read(), a slice of it handed to a worker thread that releases it, the
 * statistics as JSON. Every call's error is checked. Run by `make test`.
 *   build/examples/quickstart */
#include <bytepool.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
    char *body; /* a slice: a pointer into the buffer, holding its own reference */
    size_t len;
    size_t spaces;
};

static void *worker(void *arg) {
    struct job *j = arg;
    for (size_t i = 0; i < j->len; i++)
        j->spaces += j->body[i] == ' ';
    int err = bp_release(j->body); /* the worker's reference, from its own thread */
    if (err)
        fprintf(stderr, "bp_release: %s\n", bp_error_name(err, "bp_release"));
    return err ? (void *)1 : NULL;
}

static int fail(const char *what, int err) {
    fprintf(stderr, "quickstart: %s: %s\n", what, strerror(err));
    return 1;
}

int main(void) {
    /* something to read: a pipe holding a short message */
    static const char msg[] = "HEADER: 16 bytes"
                              "the body of a message that a worker counts the spaces of";
    int fds[2];
    if (pipe(fds) != 0)
        return fail("pipe", errno);
    if (write(fds[1], msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1))
        return fail("write", errno);
    close(fds[1]);

    bp_pool *pool = bp_pool_new(NULL); /* tiers 128 B .. 2 MiB */
    if (!pool)
        return fail("bp_pool_new", errno);
    char *buf = bp_get(pool, 1500); /* a 2048-byte buffer, reference count 1 */
    if (!buf)
        return fail("bp_get", errno);
    /* all of bp_cap is the program's, in every build */
    ssize_t n = read(fds[0], buf, bp_cap(buf));
    close(fds[0]);
    if (n < 16)
        return fail("read", n < 0 ? errno : EIO);

    struct job job = {.body = buf + 16, .len = (size_t)n - 16};
    if (!bp_retain(job.body)) /* reference count 2: one for the worker */
        return fail("bp_retain", errno);
    pthread_t t;
    int err = pthread_create(&t, NULL, worker, &job);
    if (err) {
        bp_release(job.body);
        return fail("pthread_create", err);
    }
    /* drop our reference with the buffer's start (buf + bp_cap(buf) would be
     * an end pointer: possibly the next buffer) */
    if ((err = bp_put(pool, buf)) != 0)
        return fail("bp_put", err);
    void *wr;
    if ((err = pthread_join(t, &wr)) != 0 || wr)
        return fail("worker", err ? err : EINVAL);
    printf("the worker counted %zu spaces in %zu bytes\n", job.spaces, job.len);

    char *json = bp_pool_stats_json(pool); /* the seed's GetPoolStats shape */
    if (!json)
        return fail("bp_pool_stats_json", errno);
    puts(json);
    free(json);
    size_t leaked = bp_pool_destroy(pool); /* buffers still referenced: none */
    if (leaked) {
        fprintf(stderr, "quickstart: %zu buffers still referenced\n", leaked);
        return 1;
    }
    return job.spaces == 11 ? 0 : 1;
}
