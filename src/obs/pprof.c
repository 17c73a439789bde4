/* SPDX-License-Identifier: MIT */
/*
 * pprof.c - "who holds my memory": the sampled outstanding buffers as a
 * heap profile in pprof's format (profile.proto, gzipped), which `go tool
 * pprof` reads, and as folded stacks ("root;...;leaf bytes" per line) for
 * flame graphs. Both come from the leak sites the core keeps (observe.h).
 *
 * The protobuf encoder is the handful of varints the format needs. The gzip
 * wrapper writes stored (uncompressed) deflate blocks and its own CRC-32, so
 * the library takes no compression dependency: pprof only needs valid gzip.
 * Frames are named with dladdr; mappings are the modules they fall in, with
 * has_functions set so pprof takes the names as given.
 */
#include "obs.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void varint(bp_sbuf *b, uint64_t v) {
    unsigned char c[10];
    size_t n = 0;
    do {
        c[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    bp__sb_bytes(b, c, n);
}

static void field_int(bp_sbuf *b, unsigned f, uint64_t v) { /* wire type 0 */
    varint(b, (uint64_t)f << 3);
    varint(b, v);
}

static void field_bytes(bp_sbuf *b, unsigned f, const void *p, size_t n) { /* wire type 2 */
    varint(b, (uint64_t)f << 3 | 2);
    varint(b, n);
    bp__sb_bytes(b, p, n);
}

/* A nested message, built in m, appended as field f (m is emptied). */
static void field_msg(bp_sbuf *b, unsigned f, bp_sbuf *m) {
    field_bytes(b, f, m->s, m->len);
    b->oom |= m->oom;
    m->len = 0;
}

/* ---- what the profile names -------------------------------------------- */

typedef struct names {
    char **s;
    size_t n, cap;
    bool oom;
} names;

/* The index of str in the string table, added if new (index 0 is ""). */
static uint64_t str_id(names *t, const char *str) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->s[i], str))
            return i;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **s = realloc(t->s, cap * sizeof *s);
        if (!s) {
            t->oom = true;
            return 0;
        }
        t->s = s;
        t->cap = cap;
    }
    char *copy = strdup(str);
    if (!copy) {
        t->oom = true;
        return 0;
    }
    t->s[t->n] = copy;
    return t->n++;
}

/* One frame: its function's name and its module, as dladdr tells. */
typedef struct frame_info {
    char name[160];
    const char *module;
    uintptr_t base;
} frame_info;

static void frame_of(void *addr, frame_info *fi) {
    Dl_info info;
    fi->module = "?";
    fi->base = 0;
    if (!dladdr(addr, &info) || !info.dli_fname) {
        snprintf(fi->name, sizeof fi->name, "%p", addr);
        return;
    }
    fi->module = info.dli_fname;
    fi->base = (uintptr_t)info.dli_fbase;
    if (info.dli_sname)
        snprintf(fi->name, sizeof fi->name, "%s", info.dli_sname);
    else
        snprintf(fi->name, sizeof fi->name, "%s+0x%tx", info.dli_fname,
                 (ptrdiff_t)((uintptr_t)addr - fi->base));
}

/* ---- the sites ------------------------------------------------------------ */

typedef struct sites {
    bp_leak_site *v;
    size_t n, cap;
    bool oom;
} sites;

static void add_pool(sites *s, bp_pool *pool) {
    for (size_t want = 256;; want *= 4) {
        bp_leak_site *v = realloc(s->v, (s->n + want) * sizeof *v);
        if (!v) {
            s->oom = true;
            return;
        }
        s->v = v;
        size_t sampled;
        size_t got = bp__leak_sites(pool, s->v + s->n, want, &sampled);
        if (got < want) {
            s->n += got;
            return;
        }
    }
}

static void visit_published(void *ctx, bp_pool *pool, const char *prefix) {
    (void)prefix;
    add_pool(ctx, pool);
}

/* ---- profile.proto ----------------------------------------------------- */

typedef struct loc {
    void *addr;
    uint64_t mapping, function;
} loc;

typedef struct mapping {
    uintptr_t base, lo, hi;
    uint64_t file;
} mapping;

/* The index of the entry of arr whose first keylen bytes are key, or the
 * next free one (the caller fills it: *n counts it already). */
static size_t find_or_add(void *arr, size_t *n, size_t size, const void *key, size_t keylen) {
    char *a = arr;
    for (size_t i = 0; i < *n; i++)
        if (!memcmp(a + i * size, key, keylen))
            return i;
    return (*n)++;
}

static void encode(bp_sbuf *out, const sites *s, bool *oom) {
    names t = {0};
    str_id(&t, "");
    size_t nframes = 0;
    for (size_t k = 0; k < s->n; k++)
        nframes += (size_t)s->v[k].nframes;
    loc *locs = calloc(nframes + 1, sizeof *locs);
    mapping *maps = calloc(nframes + 1, sizeof *maps);
    uint64_t *funcs = calloc(nframes + 1, sizeof *funcs); /* function i: its name's id */
    size_t nlocs = 0, nmaps = 0, nfuncs = 0;
    bp_sbuf m = {0}, sub = {0}, packed = {0};
    if (!locs || !maps || !funcs) {
        *oom = true;
        goto done;
    }
    /* sample_type: inuse_objects/count, inuse_space/bytes */
    const char *types[2][2] = {{"inuse_objects", "count"}, {"inuse_space", "bytes"}};
    for (int i = 0; i < 2; i++) {
        field_int(&m, 1, str_id(&t, types[i][0]));
        field_int(&m, 2, str_id(&t, types[i][1]));
        field_msg(out, 1, &m);
    }
    for (size_t k = 0; k < s->n; k++) {
        const bp_leak_site *site = &s->v[k];
        for (int f = 0; f < site->nframes; f++) { /* leaf first, as pprof wants */
            void *addr = site->frames[f];
            size_t before = nlocs;
            size_t li = find_or_add(locs, &nlocs, sizeof *locs, &addr, sizeof addr);
            if (li == before) {
                frame_info fi;
                frame_of(addr, &fi);
                uint64_t file = str_id(&t, fi.module);
                size_t fresh = nmaps;
                size_t mi = find_or_add(maps, &nmaps, sizeof *maps, &fi.base, sizeof fi.base);
                if (mi == fresh)
                    maps[mi] = (mapping){fi.base, (uintptr_t)addr, (uintptr_t)addr + 1, file};
                if ((uintptr_t)addr < maps[mi].lo)
                    maps[mi].lo = (uintptr_t)addr;
                if ((uintptr_t)addr >= maps[mi].hi)
                    maps[mi].hi = (uintptr_t)addr + 1;
                uint64_t name = str_id(&t, fi.name);
                size_t fj = find_or_add(funcs, &nfuncs, sizeof *funcs, &name, sizeof name);
                funcs[fj] = name;
                locs[li] = (loc){addr, mi + 1, fj + 1};
            }
            varint(&packed, li + 1);
        }
        field_bytes(&m, 1, packed.s, packed.len); /* location_id, packed */
        m.oom |= packed.oom;
        packed.len = 0;
        varint(&packed, site->count);
        varint(&packed, site->bytes);
        field_bytes(&m, 2, packed.s, packed.len); /* value, packed */
        packed.len = 0;
        field_msg(out, 2, &m);
    }
    for (size_t i = 0; i < nmaps; i++) {
        field_int(&m, 1, i + 1);
        field_int(&m, 2, maps[i].lo);
        field_int(&m, 3, maps[i].hi);
        field_int(&m, 4, maps[i].lo - maps[i].base);
        field_int(&m, 5, maps[i].file);
        field_int(&m, 7, 1); /* has_functions: the names are given */
        field_msg(out, 3, &m);
    }
    for (size_t i = 0; i < nlocs; i++) {
        field_int(&m, 1, i + 1);
        field_int(&m, 2, locs[i].mapping);
        field_int(&m, 3, (uint64_t)(uintptr_t)locs[i].addr);
        field_int(&sub, 1, locs[i].function);
        field_msg(&m, 4, &sub);
        field_msg(out, 4, &m);
    }
    for (size_t i = 0; i < nfuncs; i++) {
        field_int(&m, 1, i + 1);
        field_int(&m, 2, funcs[i]);
        field_int(&m, 3, funcs[i]);
        field_msg(out, 5, &m);
    }
    uint64_t space = str_id(&t, "space"), bytes = str_id(&t, "bytes");
    uint64_t inuse = str_id(&t, "inuse_space");
    for (size_t i = 0; i < t.n; i++)
        field_bytes(out, 6, t.s[i], strlen(t.s[i]));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    field_int(out, 9, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    field_int(&m, 1, space);
    field_int(&m, 2, bytes);
    field_msg(out, 11, &m); /* period_type */
    field_int(out, 12, 1);
    field_int(out, 14, inuse); /* default_sample_type */
done:
    *oom |= t.oom || m.oom || sub.oom || packed.oom || out->oom;
    for (size_t i = 0; i < t.n; i++)
        free(t.s[i]);
    free(t.s);
    free(locs);
    free(maps);
    free(funcs);
    free(m.s);
    free(sub.s);
    free(packed.s);
}

/* ---- gzip, stored blocks ------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    pthread_once(&crc_once, crc_init);
    const uint32_t *table = crc_table;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static int write_gzip(FILE *f, const unsigned char *p, size_t n) {
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    bool ok = fwrite(head, 1, sizeof head, f) == sizeof head;
    size_t at = 0;
    do { /* stored blocks of up to 65535 bytes; the last one says so */
        size_t len = n - at > 65535 ? 65535 : n - at;
        unsigned char b[5] = {at + len == n ? 1 : 0, (unsigned char)len, (unsigned char)(len >> 8),
                              (unsigned char)~len, (unsigned char)(~len >> 8)};
        ok = ok && fwrite(b, 1, 5, f) == 5 && fwrite(p + at, 1, len, f) == len;
        at += len;
    } while (at < n);
    uint32_t crc = crc32_of(p, n), size = (uint32_t)n;
    unsigned char tail[8] = {(unsigned char)crc,          (unsigned char)(crc >> 8),
                             (unsigned char)(crc >> 16),  (unsigned char)(crc >> 24),
                             (unsigned char)size,         (unsigned char)(size >> 8),
                             (unsigned char)(size >> 16), (unsigned char)(size >> 24)};
    ok = ok && fwrite(tail, 1, 8, f) == 8 && fflush(f) == 0;
    return ok ? 0 : EIO;
}

static int profile_of(const sites *s, FILE *out, bool folded) {
    if (s->oom)
        return ENOMEM;
    if (folded) {
        for (size_t k = 0; k < s->n; k++) {
            for (int f = s->v[k].nframes - 1; f >= 0; f--) { /* root first */
                frame_info fi;
                frame_of(s->v[k].frames[f], &fi);
                for (char *c = fi.name; *c; c++)
                    if (*c == ';' || *c == ' ')
                        *c = '_';
                fprintf(out, "%s%s", fi.name, f ? ";" : "");
            }
            fprintf(out, " %zu\n", s->v[k].bytes);
        }
        return fflush(out) == 0 ? 0 : EIO;
    }
    bp_sbuf pb = {0};
    bool oom = false;
    encode(&pb, s, &oom);
    int err = oom ? ENOMEM : write_gzip(out, (const unsigned char *)pb.s, pb.len);
    free(pb.s);
    return err;
}

static int profile_pool(bp_pool *pool, FILE *out, bool folded, const char *op) {
    if (!pool || !out)
        return bp__refuse_user(pool, EINVAL, op, NULL);
    sites s = {0};
    add_pool(&s, pool);
    int err = profile_of(&s, out, folded);
    free(s.v);
    return err;
}

int bp_pool_profile(bp_pool *pool, FILE *out) {
    return profile_pool(pool, out, false, "bp_pool_profile");
}

int bp_pool_profile_folded(bp_pool *pool, FILE *out) {
    return profile_pool(pool, out, true, "bp_pool_profile_folded");
}

int bp_expvar_profile(FILE *out, int folded) {
    if (!out)
        return bp__refuse_user(NULL, EINVAL, "bp_expvar_profile", NULL);
    sites s = {0};
    bp__expvar_each(visit_published, &s);
    int err = profile_of(&s, out, folded != 0);
    free(s.v);
    return err;
}
