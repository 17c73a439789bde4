/* SPDX-License-Identifier: MIT */
/*
 * env.c - the BYTEPOOL_* environment variables, parsed strictly.
 *
 * A setting from the environment is a promise the operator made without
 * reading the code, so a value that does not parse, or parses to something
 * out of range, must not silently turn into a huge, tiny, wrapped or
 * opposite setting. It is ignored (the default is used) with one line on
 * stderr naming the variable, once per variable and process.
 */
#include "internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const env_names[BP_ENV_COUNT] = {
    [BP_ENV_CHECKED] = "BYTEPOOL_CHECKED",
    [BP_ENV_TCACHE_BYTES] = "BYTEPOOL_TCACHE_BYTES",
    [BP_ENV_IDLE_BYTES] = "BYTEPOOL_IDLE_BYTES",
    [BP_ENV_DECAY_MS] = "BYTEPOOL_DECAY_MS",
    [BP_ENV_LEAKS] = "BYTEPOOL_LEAKS",
    [BP_ENV_MAX_BYTES] = "BYTEPOOL_MAX_BYTES",
    [BP_ENV_BACKGROUND] = "BYTEPOOL_BACKGROUND",
    [BP_ENV_RESERVE_BYTES] = "BYTEPOOL_RESERVE_BYTES",
    [BP_ENV_WIPE] = "BYTEPOOL_WIPE",
    [BP_ENV_LEAK_EXITCODE] = "BYTEPOOL_LEAK_EXITCODE",
};

static _Atomic uint32_t warned; /* one bit per variable */

static void complain(bp_env v, const char *value, const char *expected) {
    uint32_t bit = 1u << v;
    if (atomic_fetch_or(&warned, bit) & bit)
        return;
    fprintf(stderr, "bytepool: ignoring %s=\"%s\": expected %s; using the default\n", env_names[v],
            value, expected);
}

/* The variable's value, or NULL when unset or empty. */
static const char *value_of(bp_env v) {
    const char *s = getenv(env_names[v]);
    return s && *s ? s : NULL;
}

int bp__parse_bool(const char *s) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no",
                                                                                "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return 1;
        if (!strcasecmp(s, no[i]))
            return 0;
    }
    return -1;
}

int bp__env_bool(bp_env v, int dflt) {
    const char *s = value_of(v);
    if (!s)
        return dflt;
    int b = bp__parse_bool(s);
    if (b < 0) {
        complain(v, s, "1/0, true/false, yes/no or on/off");
        return dflt;
    }
    return b;
}

int bp__parse_size(const char *s, uint64_t *out) {
    if (!isdigit((unsigned char)*s))
        return -1; /* no sign, no space, no empty number */
    uint64_t x = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    unsigned shift = 0;
    switch (*s) {
    case 'k':
    case 'K':
        shift = 10;
        s++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        s++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        s++;
        break;
    case 't':
    case 'T':
        shift = 40;
        s++;
        break;
    default:
        break;
    }
    if (*s == 'i' && shift) /* KiB, MiB, GiB, TiB */
        s++;
    if ((*s == 'b' || *s == 'B') && shift)
        s++;
    if (*s || (shift && x > (UINT64_MAX >> shift)))
        return -1;
    *out = x << shift;
    return 0;
}

uint64_t bp__env_size(bp_env v, uint64_t dflt, uint64_t min, uint64_t max) {
    const char *s = value_of(v);
    if (!s)
        return dflt;
    uint64_t x;
    if (bp__parse_size(s, &x) != 0 || x < min || x > max) {
        char want[96];
        snprintf(want, sizeof want, "a number %llu..%llu (suffix K, M, G or T allowed)",
                 (unsigned long long)min, (unsigned long long)max);
        complain(v, s, want);
        return dflt;
    }
    return x;
}

int bp__env_word(bp_env v, const char *const *words, int n, int dflt) {
    const char *s = value_of(v);
    if (!s)
        return dflt;
    for (int i = 0; i < n; i++)
        if (!strcasecmp(s, words[i]))
            return i;
    char want[128] = "one of";
    for (int i = 0; i < n; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), " %s", words[i]);
    complain(v, s, want);
    return dflt;
}

/* ---- names the library does not know ------------------------------------- */

/* Every BYTEPOOL_* variable read anywhere: the core's, and the optional
 * libraries' (which read theirs with getenv). */
static const char *const other_names[] = {"BYTEPOOL_HTTP_HOSTS"};

/* Edit distance of two short names (insert, delete, substitute: 1 each). */
static size_t distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (toupper((unsigned char)a[i - 1]) != b[j - 1]);
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

static void check_names(void) {
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "BYTEPOOL_", 9))
            continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        char name[64];
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, *e, n);
        name[n] = 0;
        const char *closest = NULL;
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < BP_ENV_COUNT + sizeof other_names / sizeof other_names[0]; i++) {
            const char *known = i < BP_ENV_COUNT ? env_names[i] : other_names[i - BP_ENV_COUNT];
            /* 0: the name itself (case counts); 1: one is the other's start
             * (BYTEPOOL_TCACHE for BYTEPOOL_TCACHE_BYTES); else edits + 1 */
            size_t lk = strlen(known), ln = strlen(name);
            size_t d = !strcmp(name, known)                       ? 0
                       : !strncmp(name, known, ln < lk ? ln : lk) ? 1
                                                                  : distance(name, known) + 1;
            if (d < best) {
                best = d;
                closest = known;
            }
        }
        if (best == 0)
            continue;
        fprintf(stderr, "bytepool: ignoring unknown variable %s; did you mean %s?\n", name,
                closest);
    }
}

static pthread_once_t names_once = PTHREAD_ONCE_INIT;

void bp__env_check_names(void) { pthread_once(&names_once, check_names); }
