/* SPDX-License-Identifier: MIT */
/*
 * http.c - the endpoint: three read-only routes on libmicrohttpd's internal
 * thread, in epoll mode (any descriptor number, any count), with idle
 * connections timed out, every request given a deadline and the oldest
 * unanswered connections closed at the limit (guard.c), so idle, slow or
 * trickling clients cannot make it unreachable. Requests whose Host header names anything but
 * a loopback name or the bound address are refused, so a page in a local
 * browser cannot read /debug/vars (which holds the command line) through
 * DNS rebinding. Every response is built fresh from the registry.
 */
#include "bytepool_http.h"
#include "guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

extern const char bp__dashboard_html[] __attribute__((visibility("hidden")));
extern const size_t bp__dashboard_len __attribute__((visibility("hidden")));

#define TIMEOUT_S 5  /* an idle or stalled connection is closed after this */
#define BACKLOG 1024 /* connections over the limit wait here (the kernel caps it at somaxconn) */

struct bp_http {
    struct MHD_Daemon *d;
    bp_guard *guard;
    unsigned port;
    char bound[INET6_ADDRSTRLEN + 2]; /* "127.0.0.1", or "[::1]" for IPv6 */
    char *hosts; /* BYTEPOOL_HTTP_HOSTS: more allowed Host names, comma-separated; "*": any */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len, bool owned) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

/* Does `list` (comma-separated) name host (n bytes)? */
static bool listed(const char *list, const char *host, size_t n) {
    for (const char *s = list; s && *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if ((len == 1 && *s == '*') || (len == n && !strncasecmp(s, host, n)))
            return true;
        s = e ? e + 1 : NULL;
    }
    return false;
}

/* Whether s is empty or ":digits" (a Host header's port). */
static bool port_part(const char *s) {
    if (!*s)
        return true;
    if (*s++ != ':' || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static bool host_allowed(const bp_http *h, const char *host) {
    if (!host)
        return true; /* HTTP/1.0 without Host: no browser sends that */
    size_t n = strlen(host);
    if (host[0] == '[') { /* [v6] or [v6]:port, nothing else after the bracket */
        const char *close = strchr(host, ']');
        if (!close || !port_part(close + 1))
            return false;
        n = (size_t)(close - host) + 1;
    } else {
        const char *colon = strchr(host, ':');
        if (colon && !port_part(colon))
            return false;
        n = colon ? (size_t)(colon - host) : n;
    }
    return listed("localhost,127.0.0.1,[::1]", host, n) || listed(h->bound, host, n) ||
           listed(h->hosts, host, n);
}

static enum MHD_Result route(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    bp_http *h = cls;
    bp__guard_request(h->guard, c);
    static char not_allowed[] = "method not allowed\n", not_found[] = "not found\n",
                no_memory[] = "out of memory\n", bad_host[] = "host not allowed\n";
    if (!host_allowed(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
        return reply(c, MHD_HTTP_MISDIRECTED_REQUEST, "text/plain", bad_host, strlen(bad_host),
                     false);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed, strlen(not_allowed),
                     false);
    char *body = NULL;
    const char *type = "text/plain";
    if (!strcmp(url, "/debug/vars")) {
        body = bp_expvar_json();
        type = "application/json; charset=utf-8";
    } else if (!strcmp(url, "/metrics")) {
        body = bp_prometheus_all();
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (!strcmp(url, "/debug/pprof/heap")) { /* ?folded=1: flame graph lines */
        const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "folded");
        bool folded = f && strcmp(f, "0");
        size_t len = 0;
        char *buf = NULL;
        FILE *m = open_memstream(&buf, &len);
        int err = m ? bp_expvar_profile(m, folded) : ENOMEM;
        if (m)
            fclose(m);
        if (err) {
            free(buf);
            return reply(c, 500, "text/plain", no_memory, strlen(no_memory), false);
        }
        return reply(c, 200, folded ? "text/plain; charset=utf-8" : "application/octet-stream", buf,
                     len, true);
    } else if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        return reply(c, 200, "text/html; charset=utf-8", (char *)bp__dashboard_html,
                     bp__dashboard_len, false);
    } else {
        return reply(c, 404, "text/plain", not_found, strlen(not_found), false);
    }
    if (!body)
        return reply(c, 500, "text/plain", no_memory, strlen(no_memory), false);
    return reply(c, 200, type, body, strlen(body), true);
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" into host and port; HOST
 * may be a name (localhost) or a numeric address of either family. */
static int split(const char *addr, char *host, size_t hcap, const char **port) {
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *hend = colon ? colon : addr;
    *port = colon ? colon + 1 : addr;
    if (*addr == '[') { /* an IPv6 literal */
        const char *close = strchr(addr, ']');
        if (!close || close + 1 != colon)
            return EINVAL;
        h = addr + 1;
        hend = close;
    }
    size_t n = (size_t)(hend - h);
    if (n >= hcap || (*addr != '[' && memchr(h, ':', n))) /* IPv6 only in brackets */
        return EINVAL;
    memcpy(host, h, n);
    host[n] = 0;
    if (!n)
        strcpy(host, "127.0.0.1");
    char *end;
    unsigned long p = strtoul(*port, &end, 10);
    return **port && !*end && p <= 65535 && **port != '-' && **port != '+' ? 0 : EINVAL;
}

/* Binds and listens on the first address host:port resolves to that
 * accepts it; the listening socket is ours, so its errors are the real
 * ones. */
static int listen_on(const char *addr, int *fd_out) {
    char host[256];
    const char *port;
    if (split(addr, host, sizeof host, &port) != 0)
        return EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE},
                    *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return gai == EAI_MEMORY ? ENOMEM : gai == EAI_SYSTEM ? errno : EINVAL;
    int err = EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0) {
            *fd_out = fd;
            freeaddrinfo(res);
            return 0;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    return err;
}

/* The port and the address as the Host check compares them. */
static void describe(bp_http *h, int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        h->port = ntohs(a->sin6_port);
        h->bound[0] = '[';
        inet_ntop(AF_INET6, &a->sin6_addr, h->bound + 1, INET6_ADDRSTRLEN);
        strcat(h->bound, "]");
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        h->port = ntohs(a->sin_port);
        inet_ntop(AF_INET, &a->sin_addr, h->bound, sizeof h->bound);
    }
}

bp_http *bp_http_start(const char *addr) {
    int fd = -1, err = listen_on(addr ? addr : "127.0.0.1:0", &fd);
    if (err) {
        errno = err;
        return NULL;
    }
    bp_http *h = calloc(1, sizeof *h);
    const char *hosts = getenv("BYTEPOOL_HTTP_HOSTS");
    if (!h || (hosts && !(h->hosts = strdup(hosts))))
        err = ENOMEM;
    else if (!(h->guard = bp__guard_new()))
        err = errno; /* ENOMEM, or pthread_create's error */
    if (err) {
        if (h)
            free(h->hosts);
        free(h);
        close(fd);
        errno = err;
        return NULL;
    }
    describe(h, fd);
    h->d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | (strchr(h->bound, '[') ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        route, h, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)BP_HTTP_HARD_CONNS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_NOTIFY_CONNECTION,
        bp__guard_notify, h->guard, MHD_OPTION_NOTIFY_COMPLETED, bp__guard_completed, h->guard,
        MHD_OPTION_END);
    if (!h->d) {
        int e = errno ? errno : ENOMEM;
        close(fd);
        bp__guard_free(h->guard);
        free(h->hosts);
        free(h);
        errno = e;
        return NULL;
    }
    return h;
}

unsigned bp_http_port(const bp_http *h) { return h ? h->port : 0; }

void bp_http_stop(bp_http *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->d); /* closes the listening socket too */
    bp__guard_free(h->guard);
    free(h->hosts);
    free(h);
}
