/* SPDX-License-Identifier: MIT */
/* http_serve - a known workload behind the HTTP endpoint, for the browser
 * test: 1234 gets of 3000 bytes (4096 tier), 77 oversize gets, 5 buffers
 * kept live. Prints the port, then serves until stdin closes. */
#include "bytepool_http.h"

#include <stdio.h>

int main(void) {
    bp_config cfg = {0};
    cfg.max_bytes = 512u << 20; /* a budget, for the dashboard to show */
    bp_pool *pool = bp_pool_new(&cfg);
    for (int i = 0; i < 1234; i++)
        bp_put(pool, bp_get(pool, 3000));
    for (int i = 0; i < 77; i++)
        bp_put(pool, bp_get(pool, 3u << 20));
    void *live[5];
    for (int i = 0; i < 5; i++)
        live[i] = bp_get(pool, 100);
    if (bp_expvar_publish(pool, "web_") != 0)
        return 1;
    bp_http *h = bp_http_start("127.0.0.1:0");
    if (!h) {
        perror("bp_http_start");
        return 1;
    }
    printf("%u\n", bp_http_port(h));
    fflush(stdout);
    while (getchar() != EOF)
        ;
    bp_http_stop(h);
    for (int i = 0; i < 5; i++)
        bp_put(pool, live[i]);
    return (int)bp_pool_destroy(pool);
}
