/* SPDX-License-Identifier: MIT */
/* A program that uses libbytepool_http as installed. */
#include <bytepool_http.h>
#include <stdio.h>

int main(void) {
    bp_pool *pool = bp_pool_new(NULL);
    int ok = pool && bp_expvar_publish(pool, "consumer") == 0;
    bp_http *h = bp_http_start("127.0.0.1:0");
    ok = ok && h && bp_http_port(h) > 0;
    bp_http_stop(h);
    bp_expvar_unpublish(pool);
    bp_pool_destroy(pool);
    printf("http consumer %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
