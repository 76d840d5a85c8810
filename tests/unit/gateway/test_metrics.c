/* Metrics: the exposition is parsed back line by line (HELP/TYPE once per
 * family and before its samples, families contiguous, label escaping,
 * cumulative buckets, +Inf == _count, sums), workers are summed, unknown
 * workloads land under the reserved label, gauge callbacks, and scrapes run
 * while workers observe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/buf.h"
#include "cutover/metrics.h"

/* ---- a strict parser for the text format --------------------------------- */

#define MAXL 8

struct sample {
    char name[128];
    int nl;
    char k[MAXL][64];
    char v[MAXL][128];
    double value;
    int family;
};

struct family {
    char name[128];
    char type[16];
    char help[256];
    int has_help, has_type, nsamples;
};

struct expo {
    struct sample *s;
    size_t ns, cap;
    struct family f[64];
    size_t nf;
    int comments;
};

static int find_family(const struct expo *e, const char *name)
{
    for (size_t i = 0; i < e->nf; i++)
        if (strcmp(e->f[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The family a HELP/TYPE line opens: new, or the one currently open. */
static struct family *open_family(struct expo *e, const char *name)
{
    int i = find_family(e, name);
    if (i >= 0) {
        if ((size_t)i != e->nf - 1)
            fail_msg("family %s reopened after another family", name);
        return &e->f[i];
    }
    assert_true(e->nf < 64);
    struct family *f = &e->f[e->nf++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

static size_t parse_name(const char *p, char *out, size_t n)
{
    size_t i = 0;
    while ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
           p[i] == '_' || p[i] == ':') {
        assert_true(i + 1 < n);
        out[i] = p[i];
        i++;
    }
    out[i] = '\0';
    return i;
}

static double parse_value(const char *p)
{
    if (!strcmp(p, "+Inf"))
        return INFINITY;
    if (!strcmp(p, "-Inf"))
        return -INFINITY;
    if (!strcmp(p, "NaN"))
        return NAN;
    char *end;
    double v = strtod(p, &end);
    if (end == p || *end)
        fail_msg("bad value '%s'", p);
    return v;
}

static void parse_sample(struct expo *e, const char *line)
{
    if (e->ns == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 256;
        e->s = realloc(e->s, e->cap * sizeof *e->s);
        assert_non_null(e->s);
    }
    struct sample *s = &e->s[e->ns];
    memset(s, 0, sizeof *s);
    const char *p = line + parse_name(line, s->name, sizeof s->name);
    if (!s->name[0])
        fail_msg("no metric name in '%s'", line);
    if (*p == '{') {
        p++;
        while (*p != '}') {
            assert_true(s->nl < MAXL);
            p += parse_name(p, s->k[s->nl], sizeof s->k[0]);
            if (!s->k[s->nl][0] || p[0] != '=' || p[1] != '"')
                fail_msg("bad label in '%s'", line);
            p += 2;
            size_t n = 0;
            for (; *p != '"'; p++) {
                if (!*p)
                    fail_msg("unterminated label value in '%s'", line);
                char c = *p;
                if (c == '\\') {
                    p++;
                    c = *p == 'n' ? '\n' : *p == '\\' ? '\\' : *p == '"' ? '"' : 0;
                    if (!c)
                        fail_msg("bad escape in '%s'", line);
                }
                assert_true(n + 1 < sizeof s->v[0]);
                s->v[s->nl][n++] = c;
            }
            s->v[s->nl][n] = '\0';
            p++;
            for (int j = 0; j < s->nl; j++)
                if (!strcmp(s->k[j], s->k[s->nl]))
                    fail_msg("label %s twice in '%s'", s->k[j], line);
            s->nl++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                fail_msg("expected , or } in '%s'", line);
        }
        p++;
    }
    if (*p != ' ')
        fail_msg("expected one space before the value in '%s'", line);
    s->value = parse_value(p + 1);
    /* the family: the name itself, or a histogram's _bucket/_sum/_count */
    int f = find_family(e, s->name);
    if (f < 0) {
        static const char *const sfx[] = {"_bucket", "_sum", "_count"};
        for (int k = 0; k < 3 && f < 0; k++) {
            size_t nl = strlen(s->name), sl = strlen(sfx[k]);
            if (nl > sl && !strcmp(s->name + nl - sl, sfx[k])) {
                char base[128];
                snprintf(base, sizeof base, "%.*s", (int)(nl - sl), s->name);
                f = find_family(e, base);
                if (f >= 0 && strcmp(e->f[f].type, "histogram") != 0)
                    f = -1;
            }
        }
    }
    if (f < 0)
        fail_msg("sample '%s' has no HELP/TYPE family", line);
    if ((size_t)f != e->nf - 1)
        fail_msg("sample '%s' outside its family's block", line);
    if (!e->f[f].has_type)
        fail_msg("sample '%s' before its TYPE line", line);
    s->family = f;
    e->f[f].nsamples++;
    /* no duplicate series */
    for (size_t i = 0; i < e->ns; i++) {
        const struct sample *o = &e->s[i];
        if (strcmp(o->name, s->name) || o->nl != s->nl)
            continue;
        int same = 1;
        for (int j = 0; j < s->nl && same; j++)
            same = !strcmp(o->k[j], s->k[j]) && !strcmp(o->v[j], s->v[j]);
        if (same)
            fail_msg("duplicate series '%s'", line);
    }
    e->ns++;
}

static void parse(struct expo *e, const char *text)
{
    memset(e, 0, sizeof *e);
    assert_true(*text);
    assert_int_equal(text[strlen(text) - 1], '\n');
    const char *p = text;
    char line[1024];
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        size_t n = (size_t)(nl - p);
        assert_true(n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        assert_true(n > 0); /* no blank lines */
        if (!strncmp(line, "# HELP ", 7)) {
            char name[128];
            size_t k = parse_name(line + 7, name, sizeof name);
            struct family *f = open_family(e, name);
            if (f->has_help)
                fail_msg("second HELP for %s", name);
            if (f->nsamples)
                fail_msg("HELP for %s after its samples", name);
            f->has_help = 1;
            const char *h = line + 7 + k;
            snprintf(f->help, sizeof f->help, "%s", *h == ' ' ? h + 1 : h);
        } else if (!strncmp(line, "# TYPE ", 7)) {
            char name[128];
            size_t k = parse_name(line + 7, name, sizeof name);
            struct family *f = open_family(e, name);
            if (f->has_type)
                fail_msg("second TYPE for %s", name);
            if (f->nsamples)
                fail_msg("TYPE for %s after its samples", name);
            const char *t = line + 7 + k;
            assert_int_equal(*t, ' ');
            snprintf(f->type, sizeof f->type, "%s", t + 1);
            assert_true(!strcmp(f->type, "counter") || !strcmp(f->type, "gauge") || !strcmp(f->type, "histogram"));
            f->has_type = 1;
        } else if (line[0] == '#') {
            e->comments++;
        } else {
            parse_sample(e, line);
        }
    }
    for (size_t i = 0; i < e->nf; i++) {
        assert_true(e->f[i].has_help);
        assert_true(e->f[i].has_type);
    }
}

static void expo_free(struct expo *e) { free(e->s); }

/* The sample with this name and exactly these labels (NULL-terminated k, v
 * pairs in any order), or NULL. */
static const struct sample *vfind(const struct expo *e, const char *name, va_list ap)
{
    const char *k[MAXL], *v[MAXL];
    int n = 0;
    for (const char *x; (x = va_arg(ap, const char *)) != NULL;) {
        k[n] = x;
        v[n] = va_arg(ap, const char *);
        n++;
    }
    for (size_t i = 0; i < e->ns; i++) {
        const struct sample *s = &e->s[i];
        if (strcmp(s->name, name) || s->nl != n)
            continue;
        int ok = 1;
        for (int a = 0; a < n && ok; a++) {
            ok = 0;
            for (int b = 0; b < s->nl; b++)
                if (!strcmp(s->k[b], k[a]) && !strcmp(s->v[b], v[a]))
                    ok = 1;
        }
        if (ok)
            return s;
    }
    return NULL;
}

static const struct sample *find(const struct expo *e, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const struct sample *s = vfind(e, name, ap);
    va_end(ap);
    return s;
}

static double get(const struct expo *e, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const struct sample *s = vfind(e, name, ap);
    va_end(ap);
    if (!s)
        fail_msg("no sample %s with those labels", name);
    return s->value;
}

/* Every histogram series: le ascending, counts cumulative, +Inf == _count,
 * a _sum present. Returns the number of series checked. */
static int check_histograms(const struct expo *e)
{
    int series = 0;
    for (size_t i = 0; i < e->ns; i++) {
        const struct sample *s = &e->s[i];
        size_t nl = strlen(s->name);
        if (nl < 7 || strcmp(s->name + nl - 7, "_bucket") != 0)
            continue;
        /* the first bucket of a series starts the check */
        int le = -1;
        for (int j = 0; j < s->nl; j++)
            if (!strcmp(s->k[j], "le"))
                le = j;
        assert_true(le >= 0);
        if (i > 0 && !strcmp(e->s[i - 1].name, s->name)) {
            /* same series as the previous bucket? */
            const struct sample *p = &e->s[i - 1];
            int same = p->nl == s->nl;
            for (int j = 0; j < s->nl && same; j++)
                same = j == le || !strcmp(p->v[j], s->v[j]);
            if (same) {
                assert_true(parse_value(s->v[le]) > parse_value(p->v[le]));
                assert_true(s->value >= p->value);
                continue;
            }
        }
        /* new series: walk to its +Inf */
        size_t j = i;
        while (j + 1 < e->ns && !strcmp(e->s[j + 1].name, s->name) && strcmp(e->s[j].v[le], "+Inf") != 0)
            j++;
        assert_string_equal(e->s[j].v[le], "+Inf");
        const struct sample *cnt = &e->s[j + 2], *sum = &e->s[j + 1];
        char base[128];
        snprintf(base, sizeof base, "%.*s", (int)(nl - 7), s->name);
        char sname[140], cname[140];
        snprintf(sname, sizeof sname, "%s_sum", base);
        snprintf(cname, sizeof cname, "%s_count", base);
        assert_string_equal(sum->name, sname);
        assert_string_equal(cnt->name, cname);
        assert_true(cnt->value == e->s[j].value);
        assert_int_equal(cnt->nl, s->nl - 1);
        series++;
    }
    return series;
}

/* ---- helpers -------------------------------------------------------------- */

static co_metrics *make(const char *const *names, size_t n, unsigned workers)
{
    co_metrics *m = NULL;
    assert_int_equal(co_metrics_new(names, n, workers, &m), 0);
    assert_non_null(m);
    return m;
}

static void observe(co_metrics *m, unsigned worker, int wl, int arm, int role, int err, double lat, double ttft)
{
    co_metrics_obs o = {.workload = wl, .arm = arm, .role = role, .errclass = err, .latency_s = lat, .ttft_s = ttft};
    co_metrics_observe(co_metrics_worker_get(m, worker), &o);
}

static char *render(co_metrics *m)
{
    co_buf b;
    co_buf_init(&b, CO_BUF_UNLIMITED);
    assert_int_equal(co_metrics_render(m, &b), 0);
    return co_buf_detach(&b);
}

#define L3(w, a, r) "workload", w, "arm", a, "role", r

/* ---- tests ---------------------------------------------------------------- */

static void test_render_format(void **state)
{
    (void)state;
    const char *names[] = {"support", "billing"};
    co_metrics *m = make(names, 2, 2);
    co_metrics_obs o = {.workload = 0, .arm = CO_ARM_CANDIDATE, .role = CO_ROLE_SERVED, .latency_s = 0.03,
                        .ttft_s = 0.01, .tokens_in = 10, .tokens_out = 20, .tokens_cached = 5, .cost_usd = 0.001};
    co_metrics_observe(co_metrics_worker_get(m, 0), &o);
    observe(m, 0, 0, CO_ARM_CANDIDATE, CO_ROLE_SERVED, CO_ERRCLASS_TIMEOUT, 1.0, -1); /* on the le=1 edge */
    observe(m, 1, 0, CO_ARM_CANDIDATE, CO_ROLE_SERVED, CO_ERRCLASS_5XX, 200, NAN);    /* only +Inf */
    observe(m, 1, 0, CO_ARM_CANDIDATE, CO_ROLE_SERVED, CO_ERRCLASS_NONE, 0.3, 0.2);
    observe(m, 1, 1, CO_ARM_CANDIDATE, CO_ROLE_SHADOW, CO_ERRCLASS_NONE, 2, 1);
    char *text = render(m);
    struct expo e;
    parse(&e, text);

    /* families, in order, each with HELP and TYPE once (checked by parse) */
    const char *fam[] = {"cutover_requests_total", "cutover_errors_total", "cutover_request_duration_seconds",
                         "cutover_time_to_first_token_seconds", "cutover_tokens_total", "cutover_cost_usd_total"};
    const char *typ[] = {"counter", "counter", "histogram", "histogram", "counter", "counter"};
    assert_int_equal(e.nf, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(e.f[i].name, fam[i]);
        assert_string_equal(e.f[i].type, typ[i]);
        assert_true(e.f[i].help[0]);
    }
    assert_true(get(&e, "cutover_requests_total", L3("support", "candidate", "served"), NULL) == 4);
    assert_true(get(&e, "cutover_requests_total", L3("billing", "candidate", "shadow"), NULL) == 1);
    /* expected combinations are rendered at zero, impossible ones are not */
    assert_true(get(&e, "cutover_requests_total", L3("support", "incumbent", "served"), NULL) == 0);
    assert_true(get(&e, "cutover_requests_total", L3("billing", "incumbent", "fallback"), NULL) == 0);
    assert_null(find(&e, "cutover_requests_total", L3("support", "incumbent", "shadow"), NULL));
    assert_null(find(&e, "cutover_requests_total", L3("(unknown)", "incumbent", "served"), NULL));
    /* errors by class */
    assert_true(get(&e, "cutover_errors_total", L3("support", "candidate", "served"), "class", "timeout", NULL) == 1);
    assert_true(get(&e, "cutover_errors_total", L3("support", "candidate", "served"), "class", "5xx", NULL) == 1);
    assert_true(get(&e, "cutover_errors_total", L3("support", "candidate", "served"), "class", "connect", NULL) == 0);
    assert_true(get(&e, "cutover_errors_total", L3("support", "incumbent", "served"), "class", "parse", NULL) == 0);
    /* histogram: cumulative, edges inclusive, +Inf == count, sum */
    const char *H = "cutover_request_duration_seconds_bucket";
    assert_true(get(&e, H, L3("support", "candidate", "served"), "le", "0.05", NULL) == 1);
    assert_true(get(&e, H, L3("support", "candidate", "served"), "le", "0.25", NULL) == 1);
    assert_true(get(&e, H, L3("support", "candidate", "served"), "le", "0.5", NULL) == 2);
    assert_true(get(&e, H, L3("support", "candidate", "served"), "le", "1", NULL) == 3);
    assert_true(get(&e, H, L3("support", "candidate", "served"), "le", "120", NULL) == 3);
    assert_true(get(&e, H, L3("support", "candidate", "served"), "le", "+Inf", NULL) == 4);
    assert_true(get(&e, "cutover_request_duration_seconds_count", L3("support", "candidate", "served"), NULL) == 4);
    assert_true(fabs(get(&e, "cutover_request_duration_seconds_sum", L3("support", "candidate", "served"), NULL) -
                     201.33) < 1e-6);
    /* ttft: NaN and negative are not observed */
    assert_true(get(&e, "cutover_time_to_first_token_seconds_count", L3("support", "candidate", "served"), NULL) == 2);
    assert_true(fabs(get(&e, "cutover_time_to_first_token_seconds_sum", L3("support", "candidate", "served"), NULL) -
                     0.21) < 1e-6);
    assert_true(get(&e, "cutover_time_to_first_token_seconds_bucket", L3("billing", "candidate", "shadow"), "le", "1",
                    NULL) == 1);
    int hs = check_histograms(&e);
    assert_int_equal(hs, 2 * 2 * 4); /* 2 families x 2 workloads x 4 shown combinations */
    /* every bucket bound is there, in order */
    int nb = 0;
    for (size_t i = 0; i < e.ns; i++)
        if (!strcmp(e.s[i].name, H) && !strcmp(e.s[i].v[0], "support") && !strcmp(e.s[i].v[1], "candidate") &&
            !strcmp(e.s[i].v[2], "served")) {
            if (nb < CO_METRICS_NBUCKETS)
                assert_true(parse_value(e.s[i].v[3]) == co_metrics_buckets[nb]);
            nb++;
        }
    assert_int_equal(nb, CO_METRICS_NBUCKETS + 1);
    /* tokens and cost */
    assert_true(get(&e, "cutover_tokens_total", L3("support", "candidate", "served"), "kind", "input", NULL) == 10);
    assert_true(get(&e, "cutover_tokens_total", L3("support", "candidate", "served"), "kind", "output", NULL) == 20);
    assert_true(get(&e, "cutover_tokens_total", L3("support", "candidate", "served"), "kind", "cached", NULL) == 5);
    assert_true(fabs(get(&e, "cutover_cost_usd_total", L3("support", "candidate", "served"), NULL) - 0.001) < 1e-12);
    assert_int_equal(e.comments, 0);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
}

static void test_sums_across_workers(void **state)
{
    (void)state;
    const char *names[] = {"w"};
    co_metrics *m = make(names, 1, 4);
    assert_int_equal(co_metrics_worker_count(m), 4);
    assert_null(co_metrics_worker_get(m, 4));
    for (unsigned k = 0; k < 4; k++)
        for (unsigned i = 0; i < 100 * (k + 1); i++) {
            co_metrics_obs o = {.workload = 0, .arm = CO_ARM_INCUMBENT, .role = CO_ROLE_SERVED, .latency_s = 0.5,
                                .ttft_s = -1, .tokens_in = 3, .tokens_out = 7, .cost_usd = 0.0002,
                                .errclass = i % 10 == 0 ? CO_ERRCLASS_429 : CO_ERRCLASS_NONE};
            co_metrics_observe(co_metrics_worker_get(m, k), &o);
        }
    char *text = render(m);
    struct expo e;
    parse(&e, text);
    assert_true(get(&e, "cutover_requests_total", L3("w", "incumbent", "served"), NULL) == 1000);
    assert_true(get(&e, "cutover_errors_total", L3("w", "incumbent", "served"), "class", "429", NULL) == 100);
    assert_true(get(&e, "cutover_request_duration_seconds_bucket", L3("w", "incumbent", "served"), "le", "0.25",
                    NULL) == 0);
    assert_true(get(&e, "cutover_request_duration_seconds_bucket", L3("w", "incumbent", "served"), "le", "0.5",
                    NULL) == 1000);
    assert_true(fabs(get(&e, "cutover_request_duration_seconds_sum", L3("w", "incumbent", "served"), NULL) - 500) <
                1e-6);
    assert_true(get(&e, "cutover_time_to_first_token_seconds_count", L3("w", "incumbent", "served"), NULL) == 0);
    assert_true(get(&e, "cutover_tokens_total", L3("w", "incumbent", "served"), "kind", "output", NULL) == 7000);
    assert_true(fabs(get(&e, "cutover_cost_usd_total", L3("w", "incumbent", "served"), NULL) - 0.2) < 1e-9);
    check_histograms(&e);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    const char *weird = "we\"ird\\name\nline";
    const char *names[] = {weird, "plain"};
    co_metrics *m = make(names, 2, 1);
    observe(m, 0, 0, CO_ARM_INCUMBENT, CO_ROLE_SERVED, 0, 0.1, -1);
    char *text = render(m);
    assert_non_null(strstr(text, "workload=\"we\\\"ird\\\\name\\nline\""));
    struct expo e;
    parse(&e, text); /* a raw newline inside a label would break a line and fail here */
    assert_true(get(&e, "cutover_requests_total", L3(weird, "incumbent", "served"), NULL) == 1);
    assert_true(get(&e, "cutover_requests_total", L3("plain", "incumbent", "served"), NULL) == 0);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
}

static void test_unknown_workload(void **state)
{
    (void)state;
    const char *names[] = {"w"};
    co_metrics *m = make(names, 1, 2);
    observe(m, 0, CO_METRICS_UNKNOWN_WORKLOAD, CO_ARM_CANDIDATE, CO_ROLE_SERVED, CO_ERRCLASS_4XX, 0.01, -1);
    observe(m, 1, 99, CO_ARM_INCUMBENT, CO_ROLE_SERVED, 0, 0.01, -1);
    observe(m, 1, 0, 5, CO_ROLE_SERVED, 0, 0.01, -1);          /* bad arm */
    observe(m, 1, 0, CO_ARM_INCUMBENT, -2, 0, 0.01, -1);       /* bad role */
    observe(m, 1, 0, CO_ARM_INCUMBENT, CO_ROLE_SERVED, 77, -1, -1); /* bad class: counted, no error */
    co_metrics_observe(NULL, NULL);                            /* harmless */
    char *text = render(m);
    struct expo e;
    parse(&e, text);
    assert_true(get(&e, "cutover_requests_total", L3(CO_METRICS_UNKNOWN_LABEL, "candidate", "served"), NULL) == 1);
    assert_true(get(&e, "cutover_requests_total", L3(CO_METRICS_UNKNOWN_LABEL, "incumbent", "served"), NULL) == 3);
    assert_true(get(&e, "cutover_errors_total", L3(CO_METRICS_UNKNOWN_LABEL, "candidate", "served"), "class", "4xx",
                    NULL) == 1);
    assert_null(find(&e, "cutover_requests_total", L3(CO_METRICS_UNKNOWN_LABEL, "incumbent", "fallback"), NULL));
    assert_true(get(&e, "cutover_requests_total", L3("w", "incumbent", "served"), NULL) == 1);
    double errs = 0;
    for (size_t i = 0; i < e.ns; i++)
        if (!strcmp(e.s[i].name, "cutover_errors_total") && !strcmp(e.s[i].v[0], "w"))
            errs += e.s[i].value;
    assert_true(errs == 0);
    check_histograms(&e);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
}

struct pool {
    double idle, busy;
};

static void cb_depth(void *ud, co_metrics_sink *s)
{
    co_metrics_emit(s, NULL, *(double *)ud);
}

static void cb_pool(void *ud, co_metrics_sink *s)
{
    struct pool *p = ud;
    const char *l1[] = {"provider", "oa", "state", "idle", NULL};
    const char *l2[] = {"provider", "an\"x", "state", "busy", NULL};
    const char *bad[] = {"bad-label", "x", NULL};
    const char *reserved[] = {"__name__", "x", NULL};
    co_metrics_emit(s, l1, p->idle);
    co_metrics_emit(s, bad, 1);
    co_metrics_emit(s, reserved, 1);
    co_metrics_emit(s, l2, p->busy);
}

static void cb_drops(void *ud, co_metrics_sink *s)
{
    (void)ud;
    co_metrics_emit(s, NULL, INFINITY);
}

static void cb_none(void *ud, co_metrics_sink *s)
{
    (void)ud;
    (void)s;
}

static void test_gauge_callbacks(void **state)
{
    (void)state;
    const char *names[] = {"w"};
    co_metrics *m = make(names, 1, 1);
    double depth = 42;
    struct pool pool = {.idle = 3, .busy = 5};
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover_recorder_queue_depth", "Exchanges waiting.\nOne line\\",
                                             CO_METRIC_GAUGE, cb_depth, &depth), 0);
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover_upstream_connections", "Pool connections.",
                                             CO_METRIC_GAUGE, cb_pool, &pool), 0);
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover_recorder_dropped_total", NULL, CO_METRIC_COUNTER,
                                             cb_drops, NULL), 0);
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover:empty", "Nothing yet.", CO_METRIC_GAUGE, cb_none, NULL), 0);
    /* refused */
    assert_int_equal(co_metrics_add_gauge_cb(m, "1abc", "x", CO_METRIC_GAUGE, cb_none, NULL), CO_EINVAL);
    assert_int_equal(co_metrics_add_gauge_cb(m, "a-b", "x", CO_METRIC_GAUGE, cb_none, NULL), CO_EINVAL);
    assert_int_equal(co_metrics_add_gauge_cb(m, "", "x", CO_METRIC_GAUGE, cb_none, NULL), CO_EINVAL);
    assert_int_equal(co_metrics_add_gauge_cb(m, "ok", "x", 9, cb_none, NULL), CO_EINVAL);
    assert_int_equal(co_metrics_add_gauge_cb(m, "ok", "x", CO_METRIC_GAUGE, NULL, NULL), CO_EINVAL);
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover_recorder_queue_depth", "x", CO_METRIC_GAUGE, cb_none, NULL),
                     CO_EEXIST);
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover_requests_total", "x", CO_METRIC_GAUGE, cb_none, NULL),
                     CO_EEXIST);
    assert_int_equal(co_metrics_add_gauge_cb(m, "cutover_request_duration_seconds_bucket", "x", CO_METRIC_GAUGE,
                                             cb_none, NULL), CO_EEXIST);

    char *text = render(m);
    assert_non_null(strstr(text, "# HELP cutover_recorder_queue_depth Exchanges waiting.\\nOne line\\\\\n"));
    assert_non_null(strstr(text, "# HELP cutover_recorder_dropped_total\n"));
    struct expo e;
    parse(&e, text);
    assert_int_equal(e.nf, 10);
    int f = find_family(&e, "cutover_recorder_queue_depth");
    assert_true(f >= 0);
    assert_string_equal(e.f[f].type, "gauge");
    assert_true(get(&e, "cutover_recorder_queue_depth", NULL) == 42);
    assert_true(get(&e, "cutover_upstream_connections", "provider", "oa", "state", "idle", NULL) == 3);
    assert_true(get(&e, "cutover_upstream_connections", "provider", "an\"x", "state", "busy", NULL) == 5);
    assert_int_equal(e.f[find_family(&e, "cutover_upstream_connections")].nsamples, 2);
    assert_int_equal(e.comments, 2); /* the two bad samples are replaced by comments */
    assert_string_equal(e.f[find_family(&e, "cutover_recorder_dropped_total")].type, "counter");
    assert_true(isinf(get(&e, "cutover_recorder_dropped_total", NULL)));
    assert_int_equal(e.f[find_family(&e, "cutover:empty")].nsamples, 0);
    expo_free(&e);
    free(text);
    /* values are read at scrape time */
    depth = 7;
    text = render(m);
    parse(&e, text);
    assert_true(get(&e, "cutover_recorder_queue_depth", NULL) == 7);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
}

static void test_errclass_names(void **state)
{
    (void)state;
    for (int c = 1; c < CO_ERRCLASS__COUNT; c++)
        assert_int_equal(co_errclass_from_name(co_errclass_name(c)), c);
    assert_string_equal(co_errclass_name(CO_ERRCLASS_429), "429");
    assert_string_equal(co_errclass_name(CO_ERRCLASS_TRUNCATED), "truncated");
    assert_string_equal(co_errclass_name(99), "?");
    assert_int_equal(co_errclass_from_name(NULL), CO_ERRCLASS_NONE);
    assert_int_equal(co_errclass_from_name(""), CO_ERRCLASS_NONE);
    assert_int_equal(co_errclass_from_name("nope"), CO_EINVAL);
}

static void test_limits_and_args(void **state)
{
    (void)state;
    co_metrics *m = (co_metrics *)1;
    const char *names[] = {"w"};
    assert_int_equal(co_metrics_new(names, 1, 0, &m), CO_EINVAL);
    assert_null(m);
    const char *holes[] = {"w", NULL};
    assert_int_equal(co_metrics_new(holes, 2, 1, &m), CO_EINVAL);
    assert_null(m);
    m = make(NULL, 0, 1); /* no workloads yet: only unknown series, shown when used */
    co_buf b;
    co_buf_init(&b, 64);
    assert_int_equal(co_metrics_render(m, &b), CO_ETOOBIG);
    co_buf_free(&b);
    char *text = render(m);
    struct expo e;
    parse(&e, text);
    assert_int_equal(e.nf, 6);
    assert_int_equal(e.ns, 0);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
    co_metrics_free(NULL);
}

/* Workers observe while another thread scrapes: every scrape parses, counts
 * never go down, and the last scrape sees everything. */
#define WRITES 50000

struct writer {
    co_metrics_worker *w;
    int wl;
};

static void *writer_main(void *arg)
{
    struct writer *wr = arg;
    for (int i = 0; i < WRITES; i++) {
        co_metrics_obs o = {.workload = wr->wl, .arm = i & 1, .role = CO_ROLE_SERVED, .latency_s = (i % 200) * 0.01,
                            .ttft_s = 0.05, .tokens_in = 1};
        co_metrics_observe(wr->w, &o);
    }
    return NULL;
}

static void test_scrape_while_observing(void **state)
{
    (void)state;
    const char *names[] = {"a", "b"};
    co_metrics *m = make(names, 2, 2);
    struct writer ws[2] = {{co_metrics_worker_get(m, 0), 0}, {co_metrics_worker_get(m, 1), 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &ws[i]), 0);
    double last = 0;
    for (int k = 0; k < 20; k++) {
        char *text = render(m);
        struct expo e;
        parse(&e, text);
        check_histograms(&e);
        double v = get(&e, "cutover_requests_total", L3("a", "incumbent", "served"), NULL);
        assert_true(v >= last);
        last = v;
        expo_free(&e);
        free(text);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    char *text = render(m);
    struct expo e;
    parse(&e, text);
    assert_true(get(&e, "cutover_requests_total", L3("a", "incumbent", "served"), NULL) == WRITES);
    assert_true(get(&e, "cutover_requests_total", L3("a", "candidate", "served"), NULL) == WRITES);
    assert_true(get(&e, "cutover_tokens_total", L3("a", "candidate", "served"), "kind", "input", NULL) == WRITES);
    expo_free(&e);
    free(text);
    co_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_format),
        cmocka_unit_test(test_sums_across_workers),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_unknown_workload),
        cmocka_unit_test(test_gauge_callbacks),
        cmocka_unit_test(test_errclass_names),
        cmocka_unit_test(test_limits_and_args),
        cmocka_unit_test(test_scrape_while_observing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
