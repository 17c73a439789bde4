/*
 * http.c - the endpoint: three read-only routes on libmicrohttpd's internal
 * polling thread. Every response is built fresh from the registry, so the
 * endpoint keeps no state of its own beyond the daemon.
 */
#include "bytepool_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

extern const char bp__dashboard_html[] __attribute__((visibility("hidden")));
extern const size_t bp__dashboard_len __attribute__((visibility("hidden")));

struct bp_http {
    struct MHD_Daemon *d;
    unsigned port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len, bool owned) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result route(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls) {
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    static char not_allowed[] = "method not allowed\n", not_found[] = "not found\n",
                no_memory[] = "out of memory\n";
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(c, 405, "text/plain", not_allowed, strlen(not_allowed), false);
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

bp_http *bp_http_start(const char *addr) {
    struct sockaddr_in sa;
    int err = parse(addr ? addr : "127.0.0.1:0", &sa);
    if (err) {
        errno = err;
        return NULL;
    }
    bp_http *h = calloc(1, sizeof *h);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    errno = 0;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, route, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!h->d) {
        int e = errno ? errno : EADDRINUSE;
        free(h);
        errno = e;
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    return h;
}

unsigned bp_http_port(const bp_http *h) { return h ? h->port : 0; }

void bp_http_stop(bp_http *h) {
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
