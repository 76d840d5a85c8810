/* Routing: workload resolution, the copy-on-write mode table, the router's
 * split-reference-counted current table, and the arm decision
 * (see include/cutover/route.h). */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cutover/buf.h"
#include "cutover/route.h"
#include "cutover/util.h"

/* ---- the router word: (slot << COUNT_BITS) | outer acquire count ---------- */

#define SLOT_BITS 10
#define COUNT_BITS 54
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)
/* While a table is published its inner count holds BIAS + (holders that
 * took a reference outside the router) - (releases so far); BIAS keeps it far
 * from zero until the publisher transfers the outer count. */
#define BIAS (INT64_C(1) << 62)
_Static_assert(CO_ROUTER_MAX_TABLES == (1u << SLOT_BITS), "slot bits and table slots disagree");
_Static_assert(SLOT_BITS + COUNT_BITS == 64, "router word is 64 bits");

/* Seeds for hashes that must not correlate with the sticky bucket. */
#define SHADOW_SEED UINT64_C(0x5348414457534d50) /* shadow sampling on request ids */
#define USER_SEED_A UINT64_C(0x7573657231a7c0de) /* API-key user keys, two halves */
#define USER_SEED_B UINT64_C(0x75736572325bd1e5)

/* ---- shared, immutable part of a table (names, aliases, keys) ------------- */

struct name_entry {
    const char *s;
    int idx;
};

struct name_map {
    struct name_entry *v;
    size_t mask;
};

struct route_key {
    char *key;
    size_t len;
    int wl;
};

struct wl_static {
    char *name, *incumbent, *candidate, *salt;
    char *hdr_name, *hdr_value; /* match.header, split; NULL when none */
    char **aliases;             /* match.models copies (the alias map points here) */
    size_t naliases;
};

struct route_base {
    _Atomic long refs;
    size_t n;
    struct wl_static *w;
    struct name_map names, aliases;
    struct route_key *keys;
    size_t nkeys;
    char *listing; /* "a, b, c" for messages */
};

struct co_route_table {
    _Atomic int64_t refs;
    struct route_base *base;
    co_router *router; /* set when published */
    unsigned slot;
    uint64_t generation;
    size_t n;
    co_route_workload w[];
};

struct co_router {
    _Alignas(64) _Atomic uint64_t word; /* alone on its cache line: every acquire writes it */
    char pad_[64 - sizeof(uint64_t)];
    _Atomic long refs;                  /* the owner + one per published table */
    pthread_mutex_t lock;               /* serializes publishers */
    unsigned next_slot;
    _Atomic(co_route_table *) slots[CO_ROUTER_MAX_TABLES];
};

const char *co_arm_name(int arm)
{
    switch (arm) {
    case CO_ARM_NONE: return "none";
    case CO_ARM_INCUMBENT: return "incumbent";
    case CO_ARM_CANDIDATE: return "candidate";
    default: return "?";
    }
}

const char *co_role_name(int role)
{
    switch (role) {
    case CO_ROLE_SERVED: return "served";
    case CO_ROLE_SHADOW: return "shadow";
    case CO_ROLE_FALLBACK: return "fallback";
    default: return "?";
    }
}

/* ---- small helpers -------------------------------------------------------- */

static unsigned pct_threshold(double pct)
{
    if (!(pct > 0))
        return 0;
    if (pct >= 100)
        return 10000;
    return (unsigned)(pct * 100.0 + 0.5);
}

static int map_init(struct name_map *m, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    m->v = calloc(cap, sizeof *m->v);
    m->mask = cap - 1;
    return m->v ? 0 : co_error_set(CO_ENOMEM, "out of memory");
}

/* Inserts s -> idx unless s is already there (the first entry wins). */
static void map_put(struct name_map *m, const char *s, int idx)
{
    size_t i = (size_t)co_hash64(s, strlen(s), 0) & m->mask;
    while (m->v[i].s) {
        if (strcmp(m->v[i].s, s) == 0)
            return;
        i = (i + 1) & m->mask;
    }
    m->v[i].s = s;
    m->v[i].idx = idx;
}

static int map_get(const struct name_map *m, const char *s)
{
    if (!m->v)
        return -1;
    size_t i = (size_t)co_hash64(s, strlen(s), 0) & m->mask;
    while (m->v[i].s) {
        if (strcmp(m->v[i].s, s) == 0)
            return m->v[i].idx;
        i = (i + 1) & m->mask;
    }
    return -1;
}

/* [*s, *s + *len) without leading/trailing blanks. */
static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r' ||
                    (*s)[*len - 1] == '\n'))
        (*len)--;
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Equality in time that depends only on the stored key's length and on the
 * presented key's own length, never on where the first difference is. */
static int ct_equal(const char *given, size_t glen, const char *key, size_t klen)
{
    volatile unsigned char acc = 0;
    for (size_t i = 0; i < klen; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)key[i]);
    }
    return (acc == 0) & (glen == klen);
}

/* The gateway API key of a request: Authorization: Bearer KEY, else
 * x-api-key: KEY. Points into the header value; NULL when none. */
static const char *request_api_key(co_route_header_fn hdr, void *ud, size_t *len, int which)
{
    const char *v = hdr(ud, which == 0 ? "Authorization" : "x-api-key");
    if (!v)
        return NULL;
    size_t n = strlen(v);
    trim(&v, &n);
    if (which == 0) {
        if (n < 7 || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
            return NULL;
        v += 7;
        n -= 7;
        trim(&v, &n);
    }
    if (!n)
        return NULL;
    *len = n;
    return v;
}

/* ---- base ----------------------------------------------------------------- */

static void base_free(struct route_base *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        struct wl_static *w = &b->w[i];
        free(w->name);
        free(w->incumbent);
        free(w->candidate);
        free(w->salt);
        free(w->hdr_name);
        free(w->hdr_value);
        for (size_t a = 0; a < w->naliases; a++)
            free(w->aliases[a]);
        free(w->aliases);
    }
    for (size_t i = 0; i < b->nkeys; i++) {
        explicit_bzero(b->keys[i].key, b->keys[i].len);
        free(b->keys[i].key);
    }
    free(b->keys);
    free(b->w);
    free(b->names.v);
    free(b->aliases.v);
    free(b->listing);
    free(b);
}

static void base_release(struct route_base *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        base_free(b);
}

static int build_listing(struct route_base *b)
{
    co_buf out;
    co_buf_init(&out, CO_BUF_UNLIMITED);
    int rc = 0;
    size_t i;
    for (i = 0; i < b->n && rc == 0; i++) {
        if (out.len > 500)
            break;
        rc = co_buf_printf(&out, "%s'%s'", i ? ", " : "", b->w[i].name);
    }
    if (rc == 0 && i < b->n)
        rc = co_buf_printf(&out, ", ... (%zu in all)", b->n);
    if (rc == 0 && b->n == 0)
        rc = co_buf_puts(&out, "(none)");
    if (rc < 0) {
        co_buf_free(&out);
        return rc;
    }
    b->listing = co_buf_detach(&out);
    return b->listing ? 0 : co_error_set(CO_ENOMEM, "out of memory");
}

/* ---- tables --------------------------------------------------------------- */

static co_route_table *table_alloc(size_t n)
{
    co_route_table *t = calloc(1, sizeof *t + n * sizeof(co_route_workload));
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->n = n;
    return t;
}

static void router_unref(co_router *r);

static void table_free(co_route_table *t)
{
    co_router *r = t->router;
    unsigned slot = t->slot;
    base_release(t->base);
    free(t);
    if (r) {
        atomic_store_explicit(&r->slots[slot], NULL, memory_order_release);
        router_unref(r);
    }
}

void co_route_table_release(const co_route_table *ct)
{
    if (!ct)
        return;
    co_route_table *t = (co_route_table *)ct;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        table_free(t);
}

static int add_key(struct route_base *b, size_t *cap, const char *val, int wl)
{
    if (b->nkeys == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct route_key *v = realloc(b->keys, nc * sizeof *v);
        if (!v)
            return co_error_set(CO_ENOMEM, "out of memory");
        b->keys = v;
        *cap = nc;
    }
    struct route_key *k = &b->keys[b->nkeys];
    k->len = strlen(val);
    k->key = dup_range(val, k->len);
    if (!k->key)
        return co_error_set(CO_ENOMEM, "out of memory");
    k->wl = wl;
    b->nkeys++;
    return 0;
}

int co_route_table_new(const co_config *cfg, co_route_table **out, co_diags *warnings)
{
    int rc = 0;
    struct route_base *b = NULL;
    co_route_table *t = NULL;
    size_t keycap = 0;

    if (!out || !cfg)
        return co_error_set(CO_EINVAL, "co_route_table_new: no config");
    *out = NULL;
    size_t n = cfg->workloads.n;
    if (n > (size_t)INT32_MAX)
        return co_error_set(CO_EINVAL, "too many workloads");
    b = calloc(1, sizeof *b);
    t = table_alloc(n);
    if (!b || !t || (n && !(b->w = calloc(n, sizeof *b->w)))) {
        rc = co_error_set(CO_ENOMEM, "out of memory");
        goto done;
    }
    atomic_init(&b->refs, 1);
    b->n = n;
    size_t naliases = 0;
    for (size_t i = 0; i < n; i++)
        naliases += ((const co_workload_conf *)cfg->workloads.v)[i].match.models.n;
    if ((rc = map_init(&b->names, n)) < 0 || (rc = map_init(&b->aliases, naliases)) < 0)
        goto done;

    for (size_t i = 0; i < n; i++) {
        const co_workload_conf *wc = (const co_workload_conf *)cfg->workloads.v + i;
        struct wl_static *ws = &b->w[i];
        const co_rollout_conf *ro = co_workload_rollout(cfg, wc);
        const char *salt = ro && ro->salt && ro->salt[0] ? ro->salt : wc->name;
        ws->name = dup_or_null(wc->name ? wc->name : "");
        ws->incumbent = dup_or_null(wc->incumbent ? wc->incumbent : "");
        ws->candidate = dup_or_null(wc->candidate);
        ws->salt = dup_or_null(salt ? salt : "");
        if (!ws->name || !ws->incumbent || (wc->candidate && !ws->candidate) || !ws->salt) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        if (wc->match.header) {
            const char *colon = strchr(wc->match.header, ':');
            if (colon) {
                const char *hn = wc->match.header, *hv = colon + 1;
                size_t hnl = (size_t)(colon - hn), hvl = strlen(hv);
                trim(&hn, &hnl);
                trim(&hv, &hvl);
                if (hnl) {
                    ws->hdr_name = dup_range(hn, hnl);
                    ws->hdr_value = dup_range(hv, hvl);
                    if (!ws->hdr_name || !ws->hdr_value) {
                        rc = co_error_set(CO_ENOMEM, "out of memory");
                        goto done;
                    }
                }
            }
        }
        co_route_workload *w = &t->w[i];
        w->name = ws->name;
        w->index = (int)i;
        w->incumbent = ws->incumbent;
        w->candidate = ws->candidate;
        w->mode = wc->mode;
        w->percent = wc->percent;
        w->shadow_sample = wc->shadow_sample;
        w->fallback = wc->fallback;
        w->salt = ws->salt;
        w->version = 0;
        w->canary_threshold = pct_threshold(wc->percent);
        w->shadow_threshold = pct_threshold(wc->shadow_sample);
        w->salt_seed = co_hash64(ws->salt, strlen(ws->salt), 0);
        map_put(&b->names, ws->name, (int)i);
        if (wc->match.models.n && !(ws->aliases = calloc(wc->match.models.n, sizeof *ws->aliases))) {
            rc = co_error_set(CO_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t a = 0; a < wc->match.models.n; a++) {
            if (!(ws->aliases[a] = strdup(wc->match.models.v[a]))) {
                rc = co_error_set(CO_ENOMEM, "out of memory");
                goto done;
            }
            ws->naliases++;
            map_put(&b->aliases, ws->aliases[a], (int)i);
        }

        for (size_t k = 0; k < wc->match.api_keys_env.n; k++) {
            const char *var = wc->match.api_keys_env.v[k];
            const char *val = var ? getenv(var) : NULL;
            if (!val || !*val) {
                if (warnings)
                    co_diags_add(warnings, cfg->path, wc->mark.line, wc->mark.col,
                                 "warning: workload '%s': environment variable %s (match.api_keys_env) is not "
                                 "set; no API key selects it through that variable",
                                 wc->name, var ? var : "?");
                continue;
            }
            size_t vl = strlen(val);
            int dup = -1;
            for (size_t j = 0; j < b->nkeys && dup < 0; j++)
                if (b->keys[j].len == vl && memcmp(b->keys[j].key, val, vl) == 0)
                    dup = b->keys[j].wl;
            if (dup >= 0) {
                if (warnings && dup != (int)i)
                    co_diags_add(warnings, cfg->path, wc->mark.line, wc->mark.col,
                                 "warning: workload '%s': the key in %s is also a key of workload '%s'; "
                                 "requests with it go to '%s'",
                                 wc->name, var, b->w[dup].name, b->w[dup].name);
                continue;
            }
            if ((rc = add_key(b, &keycap, val, (int)i)) < 0)
                goto done;
        }
    }
    if ((rc = build_listing(b)) < 0)
        goto done;
    t->base = b;
    b = NULL;
    *out = t;
    t = NULL;
done:
    base_free(b);
    free(t);
    return rc;
}

/* A private copy of old's mode array sharing old's base. */
static co_route_table *table_derive(const co_route_table *old)
{
    co_route_table *t = table_alloc(old->n);
    if (!t)
        return NULL;
    memcpy(t->w, old->w, old->n * sizeof *t->w);
    t->base = old->base;
    atomic_fetch_add_explicit(&t->base->refs, 1, memory_order_relaxed);
    t->generation = old->generation + 1;
    return t;
}

/* Whether w can run mode at percent; fills why otherwise. */
static int mode_ok(const co_route_workload *w, int mode, double percent, char *why, size_t n)
{
    if (mode < CO_MODE_INCUMBENT || mode > CO_MODE_CANARY) {
        snprintf(why, n, "workload '%s': unknown mode %d", w->name, mode);
        return 0;
    }
    if (!(percent >= 0 && percent <= 100)) {
        snprintf(why, n, "workload '%s': percent must be between 0 and 100, found %g", w->name, percent);
        return 0;
    }
    if (mode != CO_MODE_INCUMBENT && !w->candidate) {
        snprintf(why, n, "workload '%s': mode %s needs a candidate model and the workload has none", w->name,
                 co_modes[mode]);
        return 0;
    }
    return 1;
}

static void set_mode(co_route_workload *w, int mode, double percent, int64_t version)
{
    w->mode = mode;
    w->percent = percent;
    w->canary_threshold = pct_threshold(percent);
    w->version = version;
}

int co_route_table_with_mode(const co_route_table *old, const char *workload, int mode, double percent,
                             co_route_table **out)
{
    char why[256];
    if (!out)
        return co_error_set(CO_EINVAL, "co_route_table_with_mode: no output");
    *out = NULL;
    if (!old || !workload)
        return co_error_set(CO_EINVAL, "co_route_table_with_mode: no table or workload");
    int i = map_get(&old->base->names, workload);
    if (i < 0)
        return co_error_set(CO_ENOENT, "no workload named '%.100s'; workloads: %s", workload, old->base->listing);
    if (!mode_ok(&old->w[i], mode, percent, why, sizeof why))
        return co_error_set(CO_EINVAL, "%s", why);
    co_route_table *t = table_derive(old);
    if (!t)
        return co_error_set(CO_ENOMEM, "out of memory");
    set_mode(&t->w[i], mode, percent, old->w[i].version); /* versions come from the store only */
    *out = t;
    return 0;
}

int co_route_table_with_states(const co_route_table *old, const co_workload_state *states, size_t n,
                               co_route_table **out, co_diags *problems)
{
    char why[256];
    if (!out)
        return co_error_set(CO_EINVAL, "co_route_table_with_states: no output");
    *out = NULL;
    if (!old || (n && !states))
        return co_error_set(CO_EINVAL, "co_route_table_with_states: no table or states");
    co_route_table *t = NULL;
    for (size_t k = 0; k < n; k++) {
        const co_workload_state *st = &states[k];
        int i = st->workload ? map_get(&old->base->names, st->workload) : -1;
        if (i < 0)
            continue;
        const co_route_workload *cur = t ? &t->w[i] : &old->w[i];
        if (st->version <= cur->version)
            continue;
        int mode = st->mode ? co_enum_index(co_modes, st->mode) : -1;
        if (mode < 0) {
            if (problems)
                co_diags_add(problems, NULL, 0, 0, "workload '%s': stored mode '%.40s' is not one of incumbent, "
                             "candidate, shadow, canary; version %lld ignored",
                             cur->name, st->mode ? st->mode : "", (long long)st->version);
            continue;
        }
        if (!mode_ok(cur, mode, st->percent, why, sizeof why)) {
            if (problems)
                co_diags_add(problems, NULL, 0, 0, "%s; stored version %lld ignored", why, (long long)st->version);
            continue;
        }
        if (!t && !(t = table_derive(old)))
            return co_error_set(CO_ENOMEM, "out of memory");
        set_mode(&t->w[i], mode, st->percent, st->version);
    }
    *out = t;
    return 0;
}

size_t co_route_table_count(const co_route_table *t) { return t ? t->n : 0; }

const co_route_workload *co_route_table_workload(const co_route_table *t, size_t i)
{
    return t && i < t->n ? &t->w[i] : NULL;
}

const co_route_workload *co_route_table_find(const co_route_table *t, const char *name)
{
    int i = t && name ? map_get(&t->base->names, name) : -1;
    return i < 0 ? NULL : &t->w[i];
}

uint64_t co_route_table_generation(const co_route_table *t) { return t ? t->generation : 0; }

/* ---- the router ----------------------------------------------------------- */

static void router_unref(co_router *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
}

/* Puts t (owned by the caller, one reference) into slot s as the router's. */
static void install(co_router *r, co_route_table *t, unsigned s)
{
    t->router = r;
    t->slot = s;
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    /* the caller's reference becomes the router's BIAS */
    atomic_fetch_add_explicit(&t->refs, BIAS - 1, memory_order_relaxed);
    atomic_store_explicit(&r->slots[s], t, memory_order_release);
}

/* Ends the publication recorded in router word w: hands the table the outer
 * count of acquires it had and drops the router's BIAS. */
static void retire(co_router *r, uint64_t w)
{
    co_route_table *old = atomic_load_explicit(&r->slots[w >> COUNT_BITS], memory_order_acquire);
    int64_t outer = (int64_t)(w & COUNT_MASK);
    int64_t delta = outer - BIAS;
    if (atomic_fetch_add_explicit(&old->refs, delta, memory_order_acq_rel) + delta == 0)
        table_free(old);
}

int co_router_new(co_route_table *initial, co_router **out)
{
    if (!out)
        return co_error_set(CO_EINVAL, "co_router_new: no output");
    *out = NULL;
    if (!initial || initial->router)
        return co_error_set(CO_EINVAL, "co_router_new: the initial table is missing or already published");
    size_t size = (sizeof(co_router) + 63) & ~(size_t)63;
    co_router *r = aligned_alloc(64, size);
    if (!r)
        return co_error_set(CO_ENOMEM, "out of memory");
    memset(r, 0, size);
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return co_error_set(CO_ENOMEM, "cannot create the router lock");
    }
    atomic_init(&r->refs, 1);
    for (unsigned i = 0; i < CO_ROUTER_MAX_TABLES; i++)
        atomic_init(&r->slots[i], NULL);
    install(r, initial, 0);
    r->next_slot = 1;
    atomic_init(&r->word, 0); /* slot 0, no acquires yet */
    *out = r;
    return 0;
}

void co_router_free(co_router *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    uint64_t w = atomic_load_explicit(&r->word, memory_order_acquire);
    pthread_mutex_unlock(&r->lock);
    retire(r, w);
    router_unref(r);
}

const co_route_table *co_router_acquire(co_router *r)
{
    uint64_t w = atomic_fetch_add_explicit(&r->word, 1, memory_order_acquire);
    return atomic_load_explicit(&r->slots[w >> COUNT_BITS], memory_order_acquire);
}

static int publish(co_router *r, const co_route_table *expected, int check, co_route_table *t)
{
    if (!r || !t)
        return co_error_set(CO_EINVAL, "co_router_publish: no router or table");
    if (t->router)
        return co_error_set(CO_EINVAL, "co_router_publish: this table was already published");
    pthread_mutex_lock(&r->lock);
    uint64_t cur = atomic_load_explicit(&r->word, memory_order_relaxed);
    if (check && atomic_load_explicit(&r->slots[cur >> COUNT_BITS], memory_order_relaxed) != expected) {
        pthread_mutex_unlock(&r->lock);
        return co_error_set(CO_ECONFLICT, "the routing table changed since it was read; read it again");
    }
    unsigned s = CO_ROUTER_MAX_TABLES;
    for (unsigned k = 0; k < CO_ROUTER_MAX_TABLES; k++) {
        unsigned i = (r->next_slot + k) % CO_ROUTER_MAX_TABLES;
        if (!atomic_load_explicit(&r->slots[i], memory_order_acquire)) {
            s = i;
            break;
        }
    }
    if (s == CO_ROUTER_MAX_TABLES) {
        pthread_mutex_unlock(&r->lock);
        return co_error_set(CO_EBUSY, "%u routing tables are still held by requests in flight; try again later",
                            CO_ROUTER_MAX_TABLES);
    }
    r->next_slot = (s + 1) % CO_ROUTER_MAX_TABLES;
    install(r, t, s);
    uint64_t old = atomic_exchange_explicit(&r->word, (uint64_t)s << COUNT_BITS, memory_order_acq_rel);
    pthread_mutex_unlock(&r->lock);
    retire(r, old);
    return 0;
}

int co_router_publish(co_router *r, co_route_table *t) { return publish(r, NULL, 0, t); }

int co_router_publish_if(co_router *r, const co_route_table *expected, co_route_table *t)
{
    return publish(r, expected, 1, t);
}

/* ---- resolution ----------------------------------------------------------- */

int co_route_resolve(const co_route_table *t, co_route_header_fn hdr, void *ud, const char *model,
                     const co_route_workload **out, int *how)
{
    if (!out)
        return co_error_set(CO_EINVAL, "co_route_resolve: no output");
    *out = NULL;
    if (!t)
        return co_error_set(CO_EINVAL, "co_route_resolve: no table");
    const struct route_base *b = t->base;
    int idx = -1, by = 0;

    if (hdr) {
        /* 1. explicit workload header */
        const char *v = hdr(ud, CO_ROUTE_WORKLOAD_HEADER);
        size_t n = v ? strlen(v) : 0;
        if (v)
            trim(&v, &n);
        if (n) { /* an empty value counts as absent */
            char name[256];
            if (n < sizeof name) {
                memcpy(name, v, n);
                name[n] = '\0';
                idx = map_get(&b->names, name);
            }
            if (idx < 0)
                return co_error_set(CO_ENOENT, "the " CO_ROUTE_WORKLOAD_HEADER " header names workload '%.*s', "
                                    "which does not exist; workloads: %s",
                                    (int)(n > 100 ? 100 : n), v, b->listing);
            by = CO_ROUTE_BY_HEADER;
            goto found;
        }
        /* 2. gateway API key: every stored key is compared, whatever matches */
        if (b->nkeys) {
            for (int which = 0; which < 2 && idx < 0; which++) {
                size_t glen = 0;
                const char *given = request_api_key(hdr, ud, &glen, which);
                if (!given)
                    continue;
                int found = -1;
                for (size_t k = 0; k < b->nkeys; k++) {
                    int eq = ct_equal(given, glen, b->keys[k].key, b->keys[k].len);
                    int take = -(eq & (found < 0)); /* all ones when this is the first match */
                    found = (found & ~take) | (b->keys[k].wl & take);
                }
                idx = found;
            }
            if (idx >= 0) {
                by = CO_ROUTE_BY_API_KEY;
                goto found;
            }
        }
        /* 3. a workload's match.header */
        for (size_t i = 0; i < b->n; i++) {
            const struct wl_static *ws = &b->w[i];
            if (!ws->hdr_name)
                continue;
            const char *hv = hdr(ud, ws->hdr_name);
            if (!hv)
                continue;
            size_t hn = strlen(hv);
            trim(&hv, &hn);
            if (hn == strlen(ws->hdr_value) && memcmp(hv, ws->hdr_value, hn) == 0) {
                idx = (int)i;
                by = CO_ROUTE_BY_MATCH_HEADER;
                goto found;
            }
        }
    }
    /* 4. the model: an explicit alias first, then a workload's own name */
    if (model && *model) {
        idx = map_get(&b->aliases, model);
        if (idx < 0)
            idx = map_get(&b->names, model);
        if (idx >= 0) {
            by = CO_ROUTE_BY_MODEL;
            goto found;
        }
        return co_error_set(CO_ENOENT, "no workload matches model '%.100s'; workloads: %s (select one by its "
                            "name or a match.models alias as the model, or with the " CO_ROUTE_WORKLOAD_HEADER
                            " header)",
                            model, b->listing);
    }
    return co_error_set(CO_ENOENT, "the request names no model and matches no workload; workloads: %s (select "
                        "one by its name as the model, or with the " CO_ROUTE_WORKLOAD_HEADER " header)",
                        b->listing);
found:
    *out = &t->w[idx];
    if (how)
        *how = by;
    return 0;
}

/* ---- decision ------------------------------------------------------------- */

int co_route_decide(const co_route_table *t, const co_route_workload *w, const char *user_key,
                    const char *request_id, co_route_decision *d)
{
    if (!t || !w || !d || w < t->w || w >= t->w + t->n)
        return co_error_set(CO_EINVAL, "co_route_decide: the workload is not from this table");
    d->workload = w;
    d->mode = w->mode;
    d->served = CO_ARM_INCUMBENT;
    d->shadow = CO_ARM_NONE;
    d->shadow_model = NULL;
    d->fallback = 0;
    d->fallback_model = NULL;
    d->bucket = 0;
    d->sticky = 0;
    d->version = w->version;
    if (w->candidate) {
        switch (w->mode) {
        case CO_MODE_CANDIDATE:
            d->served = CO_ARM_CANDIDATE;
            break;
        case CO_MODE_SHADOW: {
            int take = w->shadow_threshold >= 10000;
            if (!take && w->shadow_threshold > 0) {
                if (!request_id)
                    return co_error_set(CO_EINVAL, "co_route_decide: shadow sampling needs a request id");
                take = co_hash64(request_id, strlen(request_id), SHADOW_SEED) % 10000u < w->shadow_threshold;
            }
            if (take) {
                d->shadow = CO_ARM_CANDIDATE;
                d->shadow_model = w->candidate;
            }
            break;
        }
        case CO_MODE_CANARY: {
            const char *key = user_key && *user_key ? user_key : request_id;
            if (!key)
                return co_error_set(CO_EINVAL, "co_route_decide: a canary needs a user key or a request id");
            d->sticky = key == user_key;
            d->bucket = (unsigned)(co_hash64(key, strlen(key), w->salt_seed) % 10000u);
            if (d->bucket < w->canary_threshold)
                d->served = CO_ARM_CANDIDATE;
            break;
        }
        default:
            break;
        }
    }
    if (d->served == CO_ARM_CANDIDATE) {
        d->served_model = w->candidate;
        if (w->fallback) {
            d->fallback = 1;
            d->fallback_model = w->incumbent;
        }
    } else {
        d->served_model = w->incumbent;
    }
    return 0;
}

/* ---- user key ------------------------------------------------------------- */

static void hashed_key(const char *prefix, const char *s, size_t n, char out[CO_USER_KEY_MAX])
{
    snprintf(out, CO_USER_KEY_MAX, "%s%016llx%016llx", prefix, (unsigned long long)co_hash64(s, n, USER_SEED_A),
             (unsigned long long)co_hash64(s, n, USER_SEED_B));
}

static void put_key(const char *s, size_t n, char out[CO_USER_KEY_MAX])
{
    if (n < CO_USER_KEY_MAX) {
        memcpy(out, s, n);
        out[n] = '\0';
    } else {
        hashed_key("h:", s, n, out);
    }
}

int co_route_user_key(const struct json_t *body, co_route_header_fn hdr, void *ud, char out[CO_USER_KEY_MAX])
{
    out[0] = '\0';
    if (body && json_is_object(body)) {
        const char *v = json_string_value(json_object_get(body, "user"));
        if (v && *v) {
            put_key(v, strlen(v), out);
            return CO_USER_KEY_OPENAI_USER;
        }
        const json_t *md = json_object_get(body, "metadata");
        v = json_is_object(md) ? json_string_value(json_object_get(md, "user_id")) : NULL;
        if (v && *v) {
            put_key(v, strlen(v), out);
            return CO_USER_KEY_ANTHROPIC_USER;
        }
    }
    if (hdr) {
        const char *v = hdr(ud, CO_ROUTE_USER_HEADER);
        if (v) {
            size_t n = strlen(v);
            trim(&v, &n);
            if (n) {
                put_key(v, n, out);
                return CO_USER_KEY_HEADER;
            }
        }
        for (int which = 0; which < 2; which++) {
            size_t n = 0;
            const char *k = request_api_key(hdr, ud, &n, which);
            if (k) {
                hashed_key("key:", k, n, out);
                return CO_USER_KEY_API_KEY;
            }
        }
    }
    return CO_USER_KEY_NONE;
}
