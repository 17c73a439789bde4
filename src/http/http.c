/* SPDX-License-Identifier: MIT */
/*
 * http.c - the endpoint: three read-only routes on libmicrohttpd's internal
 * thread, in epoll mode (any descriptor number, any count), with idle
 * connections timed out and their number bounded, so idle or slow clients
 * cannot make it unreachable. Requests whose Host header names anything but
 * a loopback name or the bound address are refused, so a page in a local
 * browser cannot read /debug/vars (which holds the command line) through
 * DNS rebinding. Every response is built fresh from the registry.
 */
#include "bytepool_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

extern const char bp__dashboard_html[] __attribute__((visibility("hidden")));
extern const size_t bp__dashboard_len __attribute__((visibility("hidden")));

#define TIMEOUT_S 5   /* an idle or stalled connection is closed after this */
#define MAX_CONNS 256 /* beyond this, new connections are closed at once */

struct bp_http {
    struct MHD_Daemon *d;
    unsigned port;
    char bound[INET_ADDRSTRLEN];
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

static bool host_allowed(const bp_http *h, const char *host) {
    if (!host)
        return true; /* HTTP/1.0 without Host: no browser sends that */
    size_t n = strlen(host);
    if (host[0] == '[') { /* [v6]:port */
        const char *close = strchr(host, ']');
        n = close ? (size_t)(close - host) + 1 : n;
    } else {
        const char *colon = strrchr(host, ':');
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
    const bp_http *h = cls;
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

static int parse(const char *addr, struct sockaddr_in *sa) {
    char host[64] = "127.0.0.1";
    const char *port = addr;
    const char *colon = strrchr(addr, ':');
    if (colon) {
        size_t n = (size_t)(colon - addr);
        if (n >= sizeof host)
            return EINVAL;
        if (n) {
            memcpy(host, addr, n);
            host[n] = 0;
        }
        port = colon + 1;
    }
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (*port == 0 || *end || p > 65535)
        return EINVAL;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)p);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : EINVAL;
}

/* The listening socket is ours, so its errors are the real ones. */
static int listen_on(const struct sockaddr_in *sa, int *fd_out) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    *fd_out = fd;
    return 0;
}

bp_http *bp_http_start(const char *addr) {
    struct sockaddr_in sa;
    int err = parse(addr ? addr : "127.0.0.1:0", &sa), fd = -1;
    if (err || (err = listen_on(&sa, &fd)) != 0) {
        errno = err;
        return NULL;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    bp_http *h = calloc(1, sizeof *h);
    const char *hosts = getenv("BYTEPOOL_HTTP_HOSTS");
    if (!h || (hosts && !(h->hosts = strdup(hosts)))) {
        free(h);
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    h->port = ntohs(sa.sin_port);
    inet_ntop(AF_INET, &sa.sin_addr, h->bound, sizeof h->bound);
    h->d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, route, h,
                            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNS,
                            MHD_OPTION_END);
    if (!h->d) {
        int e = errno ? errno : ENOMEM;
        close(fd);
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
    free(h->hosts);
    free(h);
}
