/* SPDX-License-Identifier: MIT */
/*
 * sbuf.c - the string builder every export writes with. A failed
 * allocation marks the buffer and turns later writes into no-ops, so export
 * code stays a straight list of writes with one check at the end.
 */
#include "obs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for at least need more bytes; false (and oom) when there is none. */
static bool grow(bp_sbuf *b, size_t need) {
    if (b->oom)
        return false;
    if (b->s && need <= b->cap - b->len)
        return true;
    size_t cap = (b->cap + need + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void bp__sb_bytes(bp_sbuf *b, const void *p, size_t n) {
    if (!grow(b, n))
        return;
    memcpy(b->s + b->len, p, n);
    b->len += n;
}

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
        if (!grow(b, (size_t)n + 1))
            return;
    }
}

/* Length of the well-formed UTF-8 sequence at c (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0. */
size_t bp__utf8_len(const unsigned char *c) {
    if (c[0] < 0x80)
        return 1;
    size_t n = c[0] >= 0xc2 && c[0] <= 0xdf   ? 2
               : c[0] >= 0xe0 && c[0] <= 0xef ? 3
               : c[0] >= 0xf0 && c[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((c[i] & 0xc0) != 0x80)
            return 0;
    if ((c[0] == 0xe0 && c[1] < 0xa0) || (c[0] == 0xed && c[1] > 0x9f) ||
        (c[0] == 0xf0 && c[1] < 0x90) || (c[0] == 0xf4 && c[1] > 0x8f))
        return 0;
    return n;
}

bool bp__utf8_valid(const char *s) {
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t n = bp__utf8_len(c);
        if (!n)
            return false;
        c += n;
    }
    return true;
}

/* A JSON string: quotes, backslashes and control characters escaped, and
 * every byte that is not part of well-formed UTF-8 written as U+FFFD, so
 * the document parses whatever bytes the source held. */
void bp__sb_json_str(bp_sbuf *b, const char *str) {
    bp__sb_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)str; *c;) {
        size_t n = bp__utf8_len(c);
        if (!n) {
            bp__sb_printf(b, "\\ufffd");
            c++;
        } else if (*c == '"' || *c == '\\') {
            bp__sb_printf(b, "\\%c", *c++);
        } else if (*c < 0x20 || *c == 0x7f) {
            bp__sb_printf(b, "\\u%04x", *c++);
        } else {
            bp__sb_printf(b, "%.*s", (int)n, (const char *)c);
            c += n;
        }
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
