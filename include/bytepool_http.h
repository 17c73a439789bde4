/* SPDX-License-Identifier: MIT */
/*
 * bytepool_http.h - an optional HTTP endpoint for libbytepool
 * (libbytepool_http, built when libmicrohttpd is available).
 *
 * Serves, from a thread of its own:
 *   /debug/vars  the expvar document (bp_expvar_json)
 *   /metrics     Prometheus text for every published pool (bp_prometheus_all)
 *   /debug/pprof/heap  a pprof heap profile of every published pool's sampled
 *                outstanding buffers (bp_expvar_profile); ?folded=1: stacks
 *                for flame graphs
 *   /            a self-contained dashboard (inline HTML, CSS and JS, no CDN)
 *                that polls /debug/vars once a second
 * Only pools published with bp_expvar_publish() appear.
 *
 * Hardening, in epoll mode (descriptor numbers above 1024 work):
 *   - a request's headers must be complete 3 s after the connection opened
 *     or its previous request completed, else the connection is closed (a
 *     client trickling a byte at a time cannot hold it);
 *   - over 256 open connections, every connection not being answered that
 *     has had 2 s to send its request is closed (idle keep-alives,
 *     half-sent requests), and new connections are accepted at once up to
 *     2048: a well-formed request does not wait behind idle ones, and a
 *     burst of well-formed requests over 256 is answered in full. Past
 *     2048 connections wait in the listen backlog (1024 deep, capped by
 *     net.core.somaxconn). The process needs RLIMIT_NOFILE above the
 *     connections it should hold (ulimit -n);
 *   - a connection silent for 5 s is closed. Requests whose Host header is not localhost,
 * 127.0.0.1,
 * [::1] or the bound address get 421 (against DNS rebinding from a local
 * browser); BYTEPOOL_HTTP_HOSTS adds names (comma-separated; "*" allows
 * any). Methods other than GET and HEAD get 405 with an Allow header.
 */
#ifndef BYTEPOOL_HTTP_H
#define BYTEPOOL_HTTP_H

#include "bytepool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bp_http bp_http;

/* Starts serving on addr: "HOST:PORT", "[IPV6]:PORT", ":PORT" or "PORT".
 * HOST is a numeric IPv4 or IPv6 address or a name (localhost) resolved
 * with getaddrinfo: the first address that binds is served (localhost may
 * be 127.0.0.1 or ::1). HOST defaults to 127.0.0.1; port 0 picks a free
 * one; NULL means "127.0.0.1:0". Returns NULL with errno EINVAL (bad
 * address, unknown name) or the error of socket(), bind() or listen()
 * (EADDRINUSE, EMFILE, EACCES, ...). Stop it with bp_http_stop(). */
BP_API bp_http *bp_http_start(const char *addr);

/* The port the endpoint listens on. */
BP_API unsigned bp_http_port(const bp_http *h);

/* Stops serving and frees h; waits for requests in progress. NULL is
 * ignored. */
BP_API void bp_http_stop(bp_http *h);

#ifdef __cplusplus
}
#endif
#endif
