/* SPDX-License-Identifier: MIT */
/*
 * guard.c - keeps the endpoint reachable under slow or idle clients.
 *
 * libmicrohttpd's own timeout closes a connection only after it has been
 * silent for a while, so a client that trickles one header byte every few
 * seconds is never closed, and its limit refuses new connections while
 * such clients hold every slot. The guard tracks each connection (from
 * libmicrohttpd's connection notifications) with the time its current
 * request began: at connect, or when its previous request completed. A
 * thread of its own, twenty times a second,
 *   - closes every connection whose request is not complete (headers
 *     read) BP_HTTP_DEADLINE_MS after it began, and
 *   - over BP_HTTP_MAX_CONNS, closes every connection that is not being
 *     answered (a half-sent request, an idle keep-alive) and has had
 *     GRACE_MS to send its request.
 * libmicrohttpd's own limit is the hard one, BP_HTTP_HARD_CONNS, far
 * above: new connections are accepted at once, so a request never waits
 * behind the idle ones, and a burst over the soft limit is answered, not
 * dropped. (At its limit libmicrohttpd leaves connections in the listen
 * backlog and, once below it again, may not accept them before its next
 * timeout: that is why the soft limit is enforced here instead.)
 * Closing is shutdown(2) of the socket: libmicrohttpd then sees the end of
 * the stream and closes the connection on its own thread. The guard's
 * mutex is held across that call and in the close notification, which
 * libmicrohttpd makes before it closes the descriptor, so the descriptor
 * shut down is always the connection's own.
 */
#include "guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define TICK_MS 50
#define GRACE_MS 2000 /* over the soft limit, a connection's time to send its request */

typedef struct conn {
    int fd;
    uint64_t began_ms; /* the current request's start */
    bool answering;    /* headers complete, response not yet done */
    bool shut;         /* shut down by the guard */
    struct conn *next, *prev;
} conn;

struct bp_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    bool stop;
    conn *head; /* every open connection, newest first */
};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void shut(conn *c) {
    c->shut = true;
    shutdown(c->fd, SHUT_RDWR);
}

static void tick(bp_guard *g) {
    uint64_t now = now_ms();
    unsigned open = 0;
    for (conn *c = g->head; c; c = c->next) {
        if (!c->answering && !c->shut && now - c->began_ms >= BP_HTTP_DEADLINE_MS)
            shut(c);
        open += !c->shut;
    }
    if (open <= BP_HTTP_MAX_CONNS)
        return;
    for (conn *c = g->head; c; c = c->next)
        if (!c->answering && !c->shut && now - c->began_ms >= GRACE_MS)
            shut(c);
}

static void *guard_main(void *arg) {
    bp_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (!g->stop)
            tick(g);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

bp_guard *bp__guard_new(void) {
    bp_guard *g = calloc(1, sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    int err = pthread_create(&g->thr, NULL, guard_main, g);
    if (err) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        errno = err;
        return NULL;
    }
    return g;
}

void bp__guard_free(bp_guard *g) {
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thr, NULL);
    while (g->head) { /* none left after MHD_stop_daemon: defensive */
        conn *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void bp__guard_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe) {
    bp_guard *g = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (!c || !fd)
            return; /* untracked: the idle timeout still applies */
        c->fd = fd->connect_fd;
        c->began_ms = now_ms();
        pthread_mutex_lock(&g->mu);
        c->next = g->head;
        if (g->head)
            g->head->prev = c;
        g->head = c;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else if (g->head == c)
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    free(c);
    *socket_context = NULL;
}

static conn *conn_of(struct MHD_Connection *mc) {
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

void bp__guard_request(bp_guard *g, struct MHD_Connection *mc) {
    conn *c = conn_of(mc);
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->answering = true;
    pthread_mutex_unlock(&g->mu);
}

void bp__guard_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)con_cls;
    (void)toe;
    bp_guard *g = cls;
    conn *c = conn_of(mc);
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->answering = false;
    c->began_ms = now_ms(); /* the next request's deadline runs from here */
    pthread_mutex_unlock(&g->mu);
}
