/* SPDX-License-Identifier: MIT */
/*
 * guard.h - the endpoint's connection guard (guard.c): whole-request
 * deadlines and eviction at the connection limit, on top of libmicrohttpd.
 * Internal to libbytepool_http; every name is hidden.
 */
#ifndef BP_HTTP_GUARD_H
#define BP_HTTP_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>

#define BP_HG_HIDDEN __attribute__((visibility("hidden")))

#define BP_HTTP_MAX_CONNS 256    /* over this, connections not being answered are closed */
#define BP_HTTP_HARD_CONNS 2048  /* libmicrohttpd's limit: more wait in the listen backlog */
#define BP_HTTP_DEADLINE_MS 3000 /* a request's headers must be complete by then */

typedef struct bp_guard bp_guard;

/* A guard with its own thread, or NULL (errno). */
BP_HG_HIDDEN bp_guard *bp__guard_new(void);
/* Stops the thread; call after MHD_stop_daemon (no callback runs then). */
BP_HG_HIDDEN void bp__guard_free(bp_guard *g);

/* libmicrohttpd callbacks, with the guard as their closure. */
BP_HG_HIDDEN void bp__guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                                   enum MHD_ConnectionNotificationCode toe);
BP_HG_HIDDEN void bp__guard_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                                      enum MHD_RequestTerminationCode toe);
/* The access handler got the request's headers: its deadline is met. */
BP_HG_HIDDEN void bp__guard_request(bp_guard *g, struct MHD_Connection *c);

#endif
