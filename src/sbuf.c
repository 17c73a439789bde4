/*
 * sbuf.c - the string builder every export writes with. A failed
 * allocation marks the buffer and turns later writes into no-ops, so export
 * code stays a straight list of writes with one check at the end.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void bp__sb_printf(bp_sbuf *b, const char *fmt, ...) {
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

void bp__sb_json_str(bp_sbuf *b, const char *str) {
    bp__sb_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        if (*c == '"' || *c == '\\')
            bp__sb_printf(b, "\\%c", *c);
        else if (*c < 0x20)
            bp__sb_printf(b, "\\u%04x", *c);
        else
            bp__sb_printf(b, "%c", *c);
    }
    bp__sb_printf(b, "\"");
}

char *bp__sb_finish(bp_sbuf *b) {
    if (b->oom || !b->s) {
        free(b->s);
        errno = ENOMEM;
        return NULL;
    }
    return b->s;
}
