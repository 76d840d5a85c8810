/* Routing: workload resolution order, API keys (constant-time, never in
 * messages), canary fractions and stickiness, salts, shadow sampling, the
 * copy-on-write mode table, store states, user keys, and the router's
 * publish/acquire under concurrent readers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cutover/config.h"
#include "cutover/route.h"
#include "cutover/util.h"

#define KEY_SUPPORT "sk-support-0123456789abcdef"
#define KEY_BILLING "sk-billing-fedcba9876543210"

static const char *const CONFIG =
    "providers:\n"
    "  oa: {kind: openai}\n"
    "  an: {kind: anthropic}\n"
    "models:\n"
    "  gpt-4o: {provider: oa}\n"
    "  claude: {provider: an}\n"
    "  mini: {provider: oa}\n"
    "workloads:\n"
    "  support:\n"
    "    incumbent: gpt-4o\n"
    "    candidate: claude\n"
    "    mode: canary\n"
    "    percent: 10\n"
    "    match:\n"
    "      models: [support-bot, sup]\n"
    "      api_keys_env: [CO_RT_KEY_SUPPORT, CO_RT_KEY_UNSET]\n"
    "      header: 'X-Team: support'\n"
    "  billing:\n"
    "    incumbent: gpt-4o\n"
    "    candidate: claude\n"
    "    mode: shadow\n"
    "    shadow_sample: 25\n"
    "    fallback: false\n"
    "    match:\n"
    "      api_keys_env: [CO_RT_KEY_BILLING]\n"
    "  search:\n"
    "    incumbent: mini\n"
    "    match:\n"
    "      header: 'X-Team: search'\n";

/* ---- helpers ---------------------------------------------------------------- */

/* Headers as a NULL-terminated list of name, value pairs. */
static const char *hget(void *ud, const char *name)
{
    const char *const *kv = ud;
    for (; kv && kv[0]; kv += 2)
        if (strcasecmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

static co_route_table *load_table(const char *yaml, co_diags *warnings)
{
    co_diags d = {0};
    co_config *cfg = NULL;
    int rc = co_config_load_string(&cfg, yaml, "t.yaml", &d);
    if (rc != 0)
        co_diags_print(&d, stderr);
    assert_int_equal(rc, 0);
    co_diags_free(&d);
    co_route_table *t = NULL;
    assert_int_equal(co_route_table_new(cfg, &t, warnings), 0);
    co_config_free(cfg); /* the table keeps its own copies */
    return t;
}

static co_route_table *std_table(void)
{
    setenv("CO_RT_KEY_SUPPORT", KEY_SUPPORT, 1);
    setenv("CO_RT_KEY_BILLING", KEY_BILLING, 1);
    unsetenv("CO_RT_KEY_UNSET");
    return load_table(CONFIG, NULL);
}

/* Resolves with headers + model; asserts success and returns the name. */
static const char *resolve_ok(const co_route_table *t, const char *const *hdrs, const char *model, int want_how)
{
    const co_route_workload *w = NULL;
    int how = 0;
    int rc = co_route_resolve(t, hget, (void *)hdrs, model, &w, &how);
    if (rc != 0)
        fail_msg("resolve failed: %s", co_error_last());
    assert_non_null(w);
    assert_int_equal(how, want_how);
    return w->name;
}

static int resolve_rc(const co_route_table *t, const char *const *hdrs, const char *model)
{
    const co_route_workload *w = (const co_route_workload *)1;
    int rc = co_route_resolve(t, hget, (void *)hdrs, model, &w, NULL);
    if (rc != 0)
        assert_null(w);
    return rc;
}

static void assert_no_secret(const char *msg)
{
    assert_null(strstr(msg, KEY_SUPPORT));
    assert_null(strstr(msg, KEY_BILLING));
    assert_null(strstr(msg, "sk-"));
}

static int arm_of(const co_route_table *t, const char *workload, const char *user, const char *rid)
{
    const co_route_workload *w = co_route_table_find(t, workload);
    assert_non_null(w);
    co_route_decision d;
    assert_int_equal(co_route_decide(t, w, user, rid, &d), 0);
    return d.served;
}

static co_route_table *with_mode(const co_route_table *t, const char *wl, int mode, double pct)
{
    co_route_table *n = NULL;
    int rc = co_route_table_with_mode(t, wl, mode, pct, &n);
    if (rc != 0)
        fail_msg("with_mode: %s", co_error_last());
    return n;
}

/* |count - n p| <= 4 sigma of Binomial(n, p) */
static void assert_binomial(int count, int n, double p)
{
    double mean = n * p, sd = sqrt(n * p * (1 - p));
    if (fabs(count - mean) > 4 * sd)
        fail_msg("count %d outside %g +- %g (n=%d p=%g)", count, mean, 4 * sd, n, p);
}

/* ---- resolution -------------------------------------------------------------- */

static void test_resolution_order(void **state)
{
    (void)state;
    co_route_table *t = std_table();
    /* header beats key beats match.header beats model */
    const char *h1[] = {"X-Cutover-Workload", "billing", "Authorization", "Bearer " KEY_SUPPORT,
                        "X-Team", "search", NULL};
    assert_string_equal(resolve_ok(t, h1, "sup", CO_ROUTE_BY_HEADER), "billing");
    const char *h2[] = {"Authorization", "Bearer " KEY_SUPPORT, "X-Team", "search", NULL};
    assert_string_equal(resolve_ok(t, h2, "search", CO_ROUTE_BY_API_KEY), "support");
    const char *h3[] = {"x-api-key", KEY_BILLING, NULL};
    assert_string_equal(resolve_ok(t, h3, "sup", CO_ROUTE_BY_API_KEY), "billing");
    const char *h4[] = {"authorization", "bearer   " KEY_BILLING "  ", NULL};
    assert_string_equal(resolve_ok(t, h4, "sup", CO_ROUTE_BY_API_KEY), "billing");
    const char *h5[] = {"X-Team", "search", NULL};
    assert_string_equal(resolve_ok(t, h5, "sup", CO_ROUTE_BY_MATCH_HEADER), "search");
    const char *h6[] = {"x-team", "  support ", NULL};
    assert_string_equal(resolve_ok(t, h6, "search", CO_ROUTE_BY_MATCH_HEADER), "support");
    /* model: alias, then name */
    const char *none[] = {NULL};
    assert_string_equal(resolve_ok(t, none, "sup", CO_ROUTE_BY_MODEL), "support");
    assert_string_equal(resolve_ok(t, none, "support-bot", CO_ROUTE_BY_MODEL), "support");
    assert_string_equal(resolve_ok(t, none, "search", CO_ROUTE_BY_MODEL), "search");
    assert_string_equal(resolve_ok(t, none, "billing", CO_ROUTE_BY_MODEL), "billing");
    assert_string_equal(resolve_ok(t, NULL, "billing", CO_ROUTE_BY_MODEL), "billing");
    /* a wrong bearer key falls through to x-api-key */
    const char *h7[] = {"Authorization", "Bearer sk-nope", "x-api-key", KEY_SUPPORT, NULL};
    assert_string_equal(resolve_ok(t, h7, "billing", CO_ROUTE_BY_API_KEY), "support");
    /* an empty workload header counts as absent; a non-matching match.header too */
    const char *h8[] = {"X-Cutover-Workload", " ", "X-Team", "other", NULL};
    assert_string_equal(resolve_ok(t, h8, "sup", CO_ROUTE_BY_MODEL), "support");
    /* a null header callback skips the header rules */
    const co_route_workload *w = NULL;
    assert_int_equal(co_route_resolve(t, NULL, NULL, "sup", &w, NULL), 0);
    assert_string_equal(w->name, "support");
    assert_int_equal(w->index, 0);
    co_route_table_release(t);
}

static void test_unknown_lists_workloads(void **state)
{
    (void)state;
    co_route_table *t = std_table();
    const char *none[] = {NULL};
    assert_int_equal(resolve_rc(t, none, "gpt-5"), CO_ENOENT);
    const char *msg = co_error_last();
    assert_non_null(strstr(msg, "gpt-5"));
    assert_non_null(strstr(msg, "'support'"));
    assert_non_null(strstr(msg, "'billing'"));
    assert_non_null(strstr(msg, "'search'"));
    assert_int_equal(resolve_rc(t, none, NULL), CO_ENOENT);
    assert_non_null(strstr(co_error_last(), "'search'"));
    assert_int_equal(resolve_rc(t, none, ""), CO_ENOENT);
    /* an explicit header naming nothing is an error even when the model would match */
    const char *h[] = {"X-Cutover-Workload", "nope", NULL};
    assert_int_equal(resolve_rc(t, h, "sup"), CO_ENOENT);
    msg = co_error_last();
    assert_non_null(strstr(msg, "'nope'"));
    assert_non_null(strstr(msg, "'billing'"));
    /* the incumbent's model name is not an alias */
    assert_int_equal(resolve_rc(t, none, "gpt-4o"), CO_ENOENT);
    co_route_table_release(t);
}

static void test_api_keys(void **state)
{
    (void)state;
    co_diags warn = {0};
    setenv("CO_RT_KEY_SUPPORT", KEY_SUPPORT, 1);
    setenv("CO_RT_KEY_BILLING", KEY_BILLING, 1);
    unsetenv("CO_RT_KEY_UNSET");
    co_route_table *t = load_table(CONFIG, &warn);
    /* the unset variable is reported by name, never a value */
    assert_int_equal(warn.n, 1);
    assert_non_null(strstr(warn.v[0].msg, "CO_RT_KEY_UNSET"));
    assert_non_null(strstr(warn.v[0].msg, "support"));
    assert_int_equal(warn.v[0].line, 9);
    assert_no_secret(warn.v[0].msg);
    co_diags_free(&warn);

    /* same length, last byte differs; prefix; extension; other scheme */
    const char *bad[] = {"sk-support-0123456789abcdeX", "sk-support-0123", KEY_SUPPORT "0", "", "s"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char auth[128];
        snprintf(auth, sizeof auth, "Bearer %s", bad[i]);
        const char *h[] = {"Authorization", auth, NULL};
        assert_int_equal(resolve_rc(t, h, "gpt-5"), CO_ENOENT);
        assert_no_secret(co_error_last());
        const char *h2[] = {"x-api-key", bad[i], NULL};
        assert_int_equal(resolve_rc(t, h2, "gpt-5"), CO_ENOENT);
        assert_no_secret(co_error_last());
        /* falls through to the model */
        assert_string_equal(resolve_ok(t, h2, "search", CO_ROUTE_BY_MODEL), "search");
    }
    const char *basic[] = {"Authorization", "Basic " KEY_SUPPORT, NULL};
    assert_string_equal(resolve_ok(t, basic, "billing", CO_ROUTE_BY_MODEL), "billing");
    /* a right key in a failing request still never shows up in the message */
    const char *hk[] = {"X-Cutover-Workload", "nope", "Authorization", "Bearer " KEY_SUPPORT, NULL};
    assert_int_equal(resolve_rc(t, hk, "gpt-5"), CO_ENOENT);
    assert_no_secret(co_error_last());

    /* keys are read once, when the table is built */
    setenv("CO_RT_KEY_SUPPORT", "sk-rotated-key", 1);
    const char *old[] = {"Authorization", "Bearer " KEY_SUPPORT, NULL};
    assert_string_equal(resolve_ok(t, old, NULL, CO_ROUTE_BY_API_KEY), "support");
    const char *rot[] = {"Authorization", "Bearer sk-rotated-key", NULL};
    assert_int_equal(resolve_rc(t, rot, NULL), CO_ENOENT);
    /* derived tables share the keys */
    co_route_table *t2 = with_mode(t, "billing", CO_MODE_CANDIDATE, 0);
    co_route_table_release(t);
    assert_string_equal(resolve_ok(t2, old, NULL, CO_ROUTE_BY_API_KEY), "support");
    co_route_table_release(t2);

    /* a key shared by two workloads: first wins, a warning names both */
    setenv("CO_RT_KEY_SUPPORT", KEY_BILLING, 1);
    co_diags w2 = {0};
    t = load_table(CONFIG, &w2);
    int saw = 0;
    for (size_t i = 0; i < w2.n; i++) {
        assert_no_secret(w2.v[i].msg);
        saw |= strstr(w2.v[i].msg, "also a key of workload 'support'") != NULL;
    }
    assert_true(saw);
    const char *hb[] = {"x-api-key", KEY_BILLING, NULL};
    assert_string_equal(resolve_ok(t, hb, NULL, CO_ROUTE_BY_API_KEY), "support");
    co_diags_free(&w2);
    co_route_table_release(t);
}

/* ---- decisions ------------------------------------------------------------- */

static void test_canary_fractions(void **state)
{
    (void)state;
    co_route_table *base = std_table();
    const double pcts[] = {1, 10, 50};
    char user[32];
    for (size_t k = 0; k < 3; k++) {
        co_route_table *t = with_mode(base, "support", CO_MODE_CANARY, pcts[k]);
        const co_route_workload *w = co_route_table_find(t, "support");
        int cand = 0;
        for (int u = 0; u < 10000; u++) {
            snprintf(user, sizeof user, "user-%d", u);
            co_route_decision d;
            assert_int_equal(co_route_decide(t, w, user, "r", &d), 0);
            assert_int_equal(d.bucket, co_bucket("support", user)); /* salt = workload name */
            assert_true(d.sticky);
            assert_int_equal(d.mode, CO_MODE_CANARY);
            assert_int_equal(d.shadow, CO_ARM_NONE);
            if (d.served == CO_ARM_CANDIDATE) {
                cand++;
                assert_string_equal(d.served_model, "claude");
                assert_true(d.fallback);
                assert_string_equal(d.fallback_model, "gpt-4o");
            } else {
                assert_string_equal(d.served_model, "gpt-4o");
                assert_false(d.fallback);
                assert_null(d.fallback_model);
            }
        }
        assert_binomial(cand, 10000, pcts[k] / 100);
        co_route_table_release(t);
    }
    co_route_table_release(base);
}

static void test_stickiness(void **state)
{
    (void)state;
    co_route_table *t = std_table();
    co_route_table *other = with_mode(t, "billing", CO_MODE_CANDIDATE, 0); /* unrelated change */
    co_route_table *fresh = std_table();                                   /* another replica */
    char user[32], rid[32];
    int cand = 0;
    for (int u = 0; u < 2000; u++) {
        snprintf(user, sizeof user, "user-%d", u);
        int a = arm_of(t, "support", user, "r1");
        for (int i = 0; i < 3; i++) {
            snprintf(rid, sizeof rid, "req-%d-%d", u, i);
            assert_int_equal(arm_of(t, "support", user, rid), a);
        }
        assert_int_equal(arm_of(other, "support", user, "r2"), a);
        assert_int_equal(arm_of(fresh, "support", user, "r3"), a);
        cand += a == CO_ARM_CANDIDATE;
    }
    assert_true(cand > 0 && cand < 2000);
    co_route_table_release(t);
    co_route_table_release(other);
    co_route_table_release(fresh);
}

static void test_raise_keeps_lower_moves_back(void **state)
{
    (void)state;
    co_route_table *t10 = std_table();
    co_route_table *t50 = with_mode(t10, "support", CO_MODE_CANARY, 50);
    co_route_table *back = with_mode(t50, "support", CO_MODE_CANARY, 10);
    co_route_table *t100 = with_mode(t50, "support", CO_MODE_CANARY, 100);
    co_route_table *t0 = with_mode(t50, "support", CO_MODE_CANARY, 0);
    char user[32];
    int on10 = 0, on50 = 0;
    for (int u = 0; u < 10000; u++) {
        snprintf(user, sizeof user, "user-%d", u);
        int a10 = arm_of(t10, "support", user, "r");
        int a50 = arm_of(t50, "support", user, "r");
        int ab = arm_of(back, "support", user, "r");
        if (a10 == CO_ARM_CANDIDATE)
            assert_int_equal(a50, CO_ARM_CANDIDATE); /* nobody on the candidate leaves it */
        assert_int_equal(ab, a10);                    /* lowering restores exactly the 10% */
        assert_int_equal(arm_of(t100, "support", user, "r"), CO_ARM_CANDIDATE);
        assert_int_equal(arm_of(t0, "support", user, "r"), CO_ARM_INCUMBENT);
        on10 += a10 == CO_ARM_CANDIDATE;
        on50 += a50 == CO_ARM_CANDIDATE;
    }
    assert_binomial(on10, 10000, 0.10);
    assert_binomial(on50, 10000, 0.50);
    co_route_table_release(t10);
    co_route_table_release(t50);
    co_route_table_release(back);
    co_route_table_release(t100);
    co_route_table_release(t0);
}

static char *salted_config(const char *salt)
{
    char *s = NULL;
    int n = asprintf(&s,
                     "providers: {oa: {kind: openai}}\n"
                     "models: {a: {provider: oa}, b: {provider: oa}}\n"
                     "workloads:\n"
                     "  w:\n"
                     "    incumbent: a\n"
                     "    candidate: b\n"
                     "    mode: canary\n"
                     "    percent: 50\n"
                     "    rollout: {salt: '%s'}\n"
                     "  sh:\n"
                     "    incumbent: a\n"
                     "    candidate: b\n"
                     "    mode: shadow\n",
                     salt);
    assert_true(n > 0);
    return s;
}

static void test_salts(void **state)
{
    (void)state;
    char *ya = salted_config("alpha"), *yb = salted_config("beta"), *ye = salted_config("");
    co_route_table *ta = load_table(ya, NULL), *tb = load_table(yb, NULL), *te = load_table(ye, NULL);
    assert_string_equal(co_route_table_find(ta, "w")->salt, "alpha");
    assert_string_equal(co_route_table_find(te, "w")->salt, "w");
    char user[32];
    int both = 0, differ = 0, ca = 0;
    for (int u = 0; u < 10000; u++) {
        snprintf(user, sizeof user, "user-%d", u);
        int a = arm_of(ta, "w", user, "r"), b = arm_of(tb, "w", user, "r");
        assert_int_equal(a == CO_ARM_CANDIDATE, co_bucket("alpha", user) < 5000);
        assert_int_equal(arm_of(te, "w", user, "r") == CO_ARM_CANDIDATE, co_bucket("w", user) < 5000);
        both += a == CO_ARM_CANDIDATE && b == CO_ARM_CANDIDATE;
        differ += a != b;
        ca += a == CO_ARM_CANDIDATE;
    }
    assert_binomial(ca, 10000, 0.5);
    /* independent populations: overlap ~ 25%, disagreement ~ 50% */
    assert_binomial(both, 10000, 0.25);
    assert_binomial(differ, 10000, 0.5);
    /* shadow_sample defaults to 100: every request is shadowed */
    const co_route_workload *sh = co_route_table_find(ta, "sh");
    co_route_decision d;
    assert_int_equal(co_route_decide(ta, sh, NULL, NULL, &d), 0);
    assert_int_equal(d.shadow, CO_ARM_CANDIDATE);
    co_route_table_release(ta);
    co_route_table_release(tb);
    co_route_table_release(te);
    free(ya);
    free(yb);
    free(ye);
}

static void test_shadow_sampling(void **state)
{
    (void)state;
    co_route_table *t = std_table();
    const co_route_workload *w = co_route_table_find(t, "billing");
    assert_true(w->shadow_sample == 25);
    char rid[40];
    int shadowed = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(rid, sizeof rid, "%08x%08x", (unsigned)i * 2654435761u, (unsigned)i);
        co_route_decision d, d2;
        assert_int_equal(co_route_decide(t, w, "same-user", rid, &d), 0);
        assert_int_equal(d.served, CO_ARM_INCUMBENT);
        assert_string_equal(d.served_model, "gpt-4o");
        assert_false(d.fallback);
        assert_int_equal(co_route_decide(t, w, "other-user", rid, &d2), 0);
        assert_int_equal(d.shadow, d2.shadow); /* on the request id, not the user */
        if (d.shadow == CO_ARM_CANDIDATE) {
            shadowed++;
            assert_string_equal(d.shadow_model, "claude");
        } else {
            assert_int_equal(d.shadow, CO_ARM_NONE);
            assert_null(d.shadow_model);
        }
    }
    assert_binomial(shadowed, 10000, 0.25);
    /* sampling needs a request id */
    co_route_decision d;
    assert_int_equal(co_route_decide(t, w, "u", NULL, &d), CO_EINVAL);
    co_route_table_release(t);
}

static void test_modes_and_fallback(void **state)
{
    (void)state;
    co_route_table *t = std_table();
    co_route_decision d;
    /* incumbent-only workload */
    const co_route_workload *s = co_route_table_find(t, "search");
    assert_int_equal(co_route_decide(t, s, "u", "r", &d), 0);
    assert_int_equal(d.served, CO_ARM_INCUMBENT);
    assert_string_equal(d.served_model, "mini");
    assert_int_equal(d.shadow, CO_ARM_NONE);
    assert_false(d.fallback);
    /* candidate mode: candidate serves, fallback as configured */
    co_route_table *t2 = with_mode(t, "support", CO_MODE_CANDIDATE, 0);
    co_route_table *t3 = with_mode(t2, "billing", CO_MODE_CANDIDATE, 0);
    assert_int_equal(co_route_decide(t3, co_route_table_find(t3, "support"), NULL, NULL, &d), 0);
    assert_int_equal(d.served, CO_ARM_CANDIDATE);
    assert_string_equal(d.served_model, "claude");
    assert_true(d.fallback);
    assert_string_equal(d.fallback_model, "gpt-4o");
    assert_int_equal(d.version, 0); /* local changes keep the store's version */
    assert_int_equal(co_route_decide(t3, co_route_table_find(t3, "billing"), NULL, NULL, &d), 0);
    assert_int_equal(d.served, CO_ARM_CANDIDATE);
    assert_false(d.fallback); /* fallback: false */
    assert_null(d.fallback_model);
    /* incumbent mode again */
    co_route_table *t4 = with_mode(t3, "support", CO_MODE_INCUMBENT, 0);
    assert_int_equal(co_route_decide(t4, co_route_table_find(t4, "support"), "u", "r", &d), 0);
    assert_int_equal(d.served, CO_ARM_INCUMBENT);
    assert_int_equal(co_route_table_generation(t4), 3);
    /* the old tables did not change */
    assert_int_equal(co_route_table_find(t, "support")->mode, CO_MODE_CANARY);
    assert_int_equal(co_route_table_find(t2, "billing")->mode, CO_MODE_SHADOW);
    /* a workload from another table is refused */
    assert_int_equal(co_route_decide(t4, co_route_table_find(t, "support"), "u", "r", &d), CO_EINVAL);
    /* canary without a user key: per request, near the share */
    const co_route_workload *w = co_route_table_find(t, "support");
    char rid[32];
    int cand = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(rid, sizeof rid, "rq%d", i);
        assert_int_equal(co_route_decide(t, w, i % 2 ? NULL : "", rid, &d), 0);
        assert_false(d.sticky);
        cand += d.served == CO_ARM_CANDIDATE;
    }
    assert_binomial(cand, 10000, 0.10);
    assert_int_equal(co_route_decide(t, w, NULL, NULL, &d), CO_EINVAL);
    co_route_table_release(t);
    co_route_table_release(t2);
    co_route_table_release(t3);
    co_route_table_release(t4);
}

static void test_with_mode_errors(void **state)
{
    (void)state;
    co_route_table *t = std_table(), *n = (co_route_table *)1;
    assert_int_equal(co_route_table_with_mode(t, "ghost", CO_MODE_CANARY, 5, &n), CO_ENOENT);
    assert_null(n);
    assert_non_null(strstr(co_error_last(), "'search'"));
    assert_int_equal(co_route_table_with_mode(t, "search", CO_MODE_CANARY, 5, &n), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "candidate"));
    assert_int_equal(co_route_table_with_mode(t, "support", CO_MODE_CANARY, 150, &n), CO_EINVAL);
    assert_int_equal(co_route_table_with_mode(t, "support", CO_MODE_CANARY, NAN, &n), CO_EINVAL);
    assert_int_equal(co_route_table_with_mode(t, "support", 7, 5, &n), CO_EINVAL);
    assert_null(n);
    /* percent is kept by other modes, and the threshold follows it */
    n = with_mode(t, "support", CO_MODE_SHADOW, 33.33);
    const co_route_workload *w = co_route_table_find(n, "support");
    assert_int_equal(w->mode, CO_MODE_SHADOW);
    assert_int_equal(w->canary_threshold, 3333);
    assert_int_equal(co_route_table_count(n), 3);
    assert_ptr_equal(co_route_table_workload(n, 1), co_route_table_find(n, "billing"));
    assert_null(co_route_table_workload(n, 3));
    assert_null(co_route_table_find(n, "sup")); /* aliases are not names */
    co_route_table_release(n);
    co_route_table_release(t);
}

static void test_store_states(void **state)
{
    (void)state;
    co_route_table *t = std_table(), *n = NULL;
    co_workload_state st[] = {
        {.workload = "support", .mode = "canary", .percent = 50, .version = 5},
        {.workload = "ghost", .mode = "candidate", .percent = 0, .version = 9},
        {.workload = "billing", .mode = "turbo", .percent = 0, .version = 3},
        {.workload = "search", .mode = "candidate", .percent = 0, .version = 2},
        {.workload = "support", .mode = "canary", .percent = 20, .version = 4}, /* older: ignored */
    };
    co_diags probs = {0};
    assert_int_equal(co_route_table_with_states(t, st, 5, &n, &probs), 0);
    assert_non_null(n);
    assert_int_equal(probs.n, 2);
    assert_non_null(strstr(probs.v[0].msg, "turbo"));
    assert_non_null(strstr(probs.v[1].msg, "search"));
    co_diags_free(&probs);
    const co_route_workload *w = co_route_table_find(n, "support");
    assert_int_equal(w->mode, CO_MODE_CANARY);
    assert_true(w->percent == 50);
    assert_int_equal(w->canary_threshold, 5000);
    assert_int_equal(w->version, 5);
    assert_int_equal(co_route_table_find(n, "billing")->mode, CO_MODE_SHADOW);
    assert_int_equal(co_route_table_find(n, "billing")->version, 0);
    /* nothing newer: no table */
    co_route_table *n2 = (co_route_table *)1;
    assert_int_equal(co_route_table_with_states(n, st, 1, &n2, NULL), 0);
    assert_null(n2);
    co_workload_state st2 = {.workload = "support", .mode = "incumbent", .percent = 0, .version = 6};
    assert_int_equal(co_route_table_with_states(n, &st2, 1, &n2, NULL), 0);
    assert_non_null(n2);
    assert_int_equal(co_route_table_find(n2, "support")->mode, CO_MODE_INCUMBENT);
    co_route_table_release(n2);
    /* a local change does not hide the store's next version */
    co_route_table *loc = with_mode(t, "billing", CO_MODE_CANDIDATE, 0);
    co_workload_state st3 = {.workload = "billing", .mode = "incumbent", .percent = 0, .version = 1};
    assert_int_equal(co_route_table_with_states(loc, &st3, 1, &n2, NULL), 0);
    assert_non_null(n2);
    assert_int_equal(co_route_table_find(n2, "billing")->mode, CO_MODE_INCUMBENT);
    assert_int_equal(co_route_table_find(n2, "billing")->version, 1);
    assert_int_equal(co_route_table_generation(n2), 2);
    co_route_table_release(n2);
    co_route_table_release(loc);
    co_route_table_release(n);
    co_route_table_release(t);
}

static void test_user_key(void **state)
{
    (void)state;
    char out[CO_USER_KEY_MAX];
    json_t *b = json_loads("{\"user\":\"u-1\",\"metadata\":{\"user_id\":\"a-1\"}}", 0, NULL);
    const char *h[] = {"X-Cutover-User", " hdr-1 ", "Authorization", "Bearer " KEY_SUPPORT, NULL};
    assert_int_equal(co_route_user_key(b, hget, (void *)h, out), CO_USER_KEY_OPENAI_USER);
    assert_string_equal(out, "u-1");
    json_object_del(b, "user");
    assert_int_equal(co_route_user_key(b, hget, (void *)h, out), CO_USER_KEY_ANTHROPIC_USER);
    assert_string_equal(out, "a-1");
    json_object_del(b, "metadata");
    json_object_set_new(b, "user", json_integer(7)); /* not a string: ignored */
    assert_int_equal(co_route_user_key(b, hget, (void *)h, out), CO_USER_KEY_HEADER);
    assert_string_equal(out, "hdr-1");
    const char *h2[] = {"Authorization", "Bearer " KEY_SUPPORT, NULL};
    assert_int_equal(co_route_user_key(b, hget, (void *)h2, out), CO_USER_KEY_API_KEY);
    assert_no_secret(out);
    assert_int_equal(strncmp(out, "key:", 4), 0);
    assert_int_equal(strlen(out), 4 + 32);
    char again[CO_USER_KEY_MAX];
    const char *h3[] = {"x-api-key", KEY_SUPPORT, NULL};
    assert_int_equal(co_route_user_key(NULL, hget, (void *)h3, again), CO_USER_KEY_API_KEY);
    assert_string_equal(out, again); /* same key, same user, whichever header */
    const char *h4[] = {"x-api-key", KEY_BILLING, NULL};
    assert_int_equal(co_route_user_key(NULL, hget, (void *)h4, again), CO_USER_KEY_API_KEY);
    assert_string_not_equal(out, again);
    assert_int_equal(co_route_user_key(NULL, NULL, NULL, out), CO_USER_KEY_NONE);
    assert_string_equal(out, "");
    const char *none[] = {NULL};
    assert_int_equal(co_route_user_key(b, hget, (void *)none, out), CO_USER_KEY_NONE);
    /* a very long user id becomes a fixed-size hash */
    char longid[300];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    json_object_set_new(b, "user", json_string(longid));
    assert_int_equal(co_route_user_key(b, NULL, NULL, out), CO_USER_KEY_OPENAI_USER);
    assert_int_equal(strncmp(out, "h:", 2), 0);
    assert_int_equal(strlen(out), 34);
    json_decref(b);
}

/* ---- router ---------------------------------------------------------------- */

static void test_router_basic(void **state)
{
    (void)state;
    co_route_table *t = std_table();
    co_router *r = NULL;
    assert_int_equal(co_router_new(t, &r), 0);
    const co_route_table *a = co_router_acquire(r);
    assert_ptr_equal(a, t);
    co_route_table *t2 = with_mode(a, "support", CO_MODE_CANARY, 50);
    assert_int_equal(co_router_publish(r, t2), 0);
    const co_route_table *b = co_router_acquire(r);
    assert_ptr_equal(b, t2);
    /* the old table stays readable while held: in-flight requests keep their arm */
    assert_true(co_route_table_find(a, "support")->percent == 10);
    assert_true(co_route_table_find(b, "support")->percent == 50);
    /* publishing a held (published) table is refused */
    assert_int_equal(co_router_publish(r, (co_route_table *)b), CO_EINVAL);
    /* compare-and-swap against a stale table */
    co_route_table *t3 = with_mode(a, "support", CO_MODE_CANARY, 20);
    assert_int_equal(co_router_publish_if(r, a, t3), CO_ECONFLICT);
    assert_int_equal(co_router_publish_if(r, b, t3), 0);
    co_route_table_release(a); /* last holder of the first table frees it */
    co_route_table_release(b);
    /* tables may outlive the router */
    const co_route_table *c = co_router_acquire(r);
    co_router_free(r);
    assert_true(co_route_table_find(c, "support")->percent == 20);
    co_route_table_release(c);
}

#define READERS 4
#define PUBLISHES 1000
#define HELD 8

struct hammer {
    co_router *r;
    atomic_int *stop;
    long iterations;
    int ok;
};

static void *reader(void *arg)
{
    struct hammer *h = arg;
    const co_route_table *held[HELD] = {0};
    uint64_t last_gen = 0;
    char user[32];
    h->ok = 1;
    for (long i = 0; !atomic_load(h->stop) || i < 1000; i++) {
        const co_route_table *t = co_router_acquire(h->r);
        uint64_t g = co_route_table_generation(t);
        if (g < last_gen)
            h->ok = 0; /* a reader never goes back to an older table */
        last_gen = g;
        const co_route_workload *w = NULL;
        if (co_route_resolve(t, NULL, NULL, "sup", &w, NULL) != 0 ||
            w->canary_threshold != (unsigned)(w->percent * 100 + 0.5))
            h->ok = 0;
        snprintf(user, sizeof user, "u%ld", i & 1023);
        co_route_decision d;
        if (co_route_decide(t, w, user, "rid", &d) != 0)
            h->ok = 0;
        /* keep a few tables across iterations, like requests in flight */
        size_t k = (size_t)i % HELD;
        co_route_table_release(held[k]);
        held[k] = t;
        h->iterations++;
    }
    for (size_t k = 0; k < HELD; k++)
        co_route_table_release(held[k]);
    return NULL;
}

static void test_router_concurrent(void **state)
{
    (void)state;
    co_router *r = NULL;
    assert_int_equal(co_router_new(std_table(), &r), 0);
    atomic_int stop = 0;
    struct hammer hs[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        hs[i] = (struct hammer){.r = r, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &hs[i]), 0);
    }
    for (int p = 0; p < PUBLISHES; p++) {
        const co_route_table *cur = co_router_acquire(r);
        co_route_table *next = with_mode(cur, "support", CO_MODE_CANARY, (p % 100) + 0.5);
        co_route_table_release(cur);
        int rc = co_router_publish_if(r, cur, next); /* this thread is the only publisher */
        if (rc != 0)
            fail_msg("publish %d: %s", p, co_error_last());
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        assert_true(hs[i].ok);
        assert_true(hs[i].iterations >= 1000);
    }
    const co_route_table *last = co_router_acquire(r);
    assert_int_equal(co_route_table_generation(last), PUBLISHES);
    co_route_table_release(last);
    co_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolution_order),
        cmocka_unit_test(test_unknown_lists_workloads),
        cmocka_unit_test(test_api_keys),
        cmocka_unit_test(test_canary_fractions),
        cmocka_unit_test(test_stickiness),
        cmocka_unit_test(test_raise_keeps_lower_moves_back),
        cmocka_unit_test(test_salts),
        cmocka_unit_test(test_shadow_sampling),
        cmocka_unit_test(test_modes_and_fallback),
        cmocka_unit_test(test_with_mode_errors),
        cmocka_unit_test(test_store_states),
        cmocka_unit_test(test_user_key),
        cmocka_unit_test(test_router_basic),
        cmocka_unit_test(test_router_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
