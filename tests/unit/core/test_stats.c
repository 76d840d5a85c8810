/* co_stats: every result against a value known independently — published
 * textbook/reference-package values, or a second method computed here
 * (exact binomial sums with integer Pascal triangles, the score equation
 * solved by plugging in, the pooled z formula, the alternating Kolmogorov
 * series, brute-force ECDFs and ranks) — plus determinism, coverage, verdict
 * logic, sample-size monotonicity and the degenerate inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "cutover/stats.h"

/* ------------------------------------------------------------ helpers */

static void near_at(double got, double want, double tol, const char *expr, int line)
{
    if (isnan(got) || isnan(want) || fabs(got - want) > tol)
        fail_msg("line %d: %s = %.17g, want %.17g (tol %g)", line, expr, got, want, tol);
}
#define NEAR(got, want, tol) near_at((got), (want), (tol), #got, __LINE__)

static void rel_at(double got, double want, double rtol, const char *expr, int line)
{
    if (isnan(got) || isnan(want) || fabs(got - want) > rtol * fabs(want))
        fail_msg("line %d: %s = %.17g, want %.17g (rel %g)", line, expr, got, want, rtol);
}
#define REL(got, want, rtol) rel_at((got), (want), (rtol), #got, __LINE__)

/* Round to 4 decimals, as published tables print. */
static double r4(double x)
{
    return round(x * 1e4) / 1e4;
}

/* Pascal's triangle in integers, n <= 62 (C(62,31) < 2^63). */
#define PASCAL_MAX 62
static uint64_t pascal[PASCAL_MAX + 1][PASCAL_MAX + 1];
static void pascal_init(void)
{
    for (int n = 0; n <= PASCAL_MAX; n++) {
        pascal[n][0] = pascal[n][n] = 1;
        for (int k = 1; k < n; k++)
            pascal[n][k] = pascal[n - 1][k - 1] + pascal[n - 1][k];
    }
}

/* Standard normal draw from the module's RNG (inverse-CDF method). */
static double normal_draw(co_rng *r)
{
    double u = ((double)(co_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
    return co_norm_quantile(u);
}

static int bit_equal(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ------------------------------------------------------------ normal */

static void test_norm_quantile(void **state)
{
    (void)state;
    /* reference values: 40-digit arithmetic (sqrt(2)·erfinv(2p − 1)) */
    REL(co_norm_quantile(0.975), 1.9599639845400542355, 1e-15);
    REL(co_norm_quantile(0.95), 1.6448536269514727149, 1e-15);
    assert_true(co_norm_quantile(0.5) == 0.0);
    REL(co_norm_quantile(1e-10), -6.3613409024040562047, 1e-14);
    /* 1 − 1e-10 is not exact in binary; the quantile of the double nearest */
    NEAR(co_norm_quantile(1.0 - 1e-10), 6.3613409024040562047, 1e-5);
    REL(co_norm_quantile(1e-6), -4.7534243088228989482, 1e-14);
    /* deep tail (the third AS 241 branch) round-trips through the CDF */
    REL(co_norm_cdf(co_norm_quantile(1e-300)), 1e-300, 1e-12);
    /* symmetry and round trips over a grid */
    for (double p = 0.001; p < 1.0; p += 0.0137) {
        REL(co_norm_quantile(p), -co_norm_quantile(1.0 - p), 1e-9);
        NEAR(co_norm_cdf(co_norm_quantile(p)), p, 1e-15);
    }
    /* edges: infinities and NaN, never a silent finite garbage value */
    assert_true(isinf(co_norm_quantile(0.0)) && co_norm_quantile(0.0) < 0);
    assert_true(isinf(co_norm_quantile(1.0)) && co_norm_quantile(1.0) > 0);
    assert_true(isnan(co_norm_quantile(-0.1)));
    assert_true(isnan(co_norm_quantile(1.1)));
    assert_true(isnan(co_norm_quantile(NAN)));
}

static void test_norm_cdf(void **state)
{
    (void)state;
    assert_true(co_norm_cdf(0.0) == 0.5);
    REL(co_norm_cdf(1.96), 0.97500210485178, 1e-13);
    REL(co_norm_cdf(-10.0), 7.61985302416053e-24, 1e-12);
    REL(co_norm_sf(10.0), 7.61985302416053e-24, 1e-12);
    NEAR(co_norm_cdf(3.0) + co_norm_sf(3.0), 1.0, 1e-15);
    assert_true(co_norm_cdf(-INFINITY) == 0.0);
    assert_true(co_norm_cdf(INFINITY) == 1.0);
}

/* ------------------------------------------------------------ binomial */

static void test_binom_logpmf(void **state)
{
    (void)state;
    pascal_init();
    /* small n: exact integer coefficients */
    for (int n = 1; n <= PASCAL_MAX; n += 7)
        for (int k = 0; k <= n; k++) {
            double want = log((double)pascal[n][k]) + k * log(0.3) + (n - k) * log(0.7);
            NEAR(co_binom_logpmf((uint64_t)k, (uint64_t)n, 0.3), want, 1e-12);
            double half = log((double)pascal[n][k]) - n * log(2.0);
            NEAR(co_binom_logpmf((uint64_t)k, (uint64_t)n, 0.5), half, 1e-12);
        }
    /* larger n: long-double lgamma as the second method */
    const uint64_t ns[] = {1000, 123457, 1000000};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        uint64_t n = ns[i];
        const uint64_t ks[] = {1, n / 7, n / 2, n - 3};
        for (size_t j = 0; j < 4; j++) {
            uint64_t k = ks[j];
            long double want = lgammal((long double)n + 1) - lgammal((long double)k + 1) -
                               lgammal((long double)(n - k) + 1) +
                               (long double)k * logl(0.25L) + (long double)(n - k) * logl(0.75L);
            NEAR(co_binom_logpmf(k, n, 0.25), (double)want, 1e-8);
        }
    }
    /* the pmf sums to 1 */
    double s = 0;
    for (uint64_t k = 0; k <= 2000; k++)
        s += exp(co_binom_logpmf(k, 2000, 0.01));
    NEAR(s, 1.0, 1e-12);
    /* n = 1e7 at the mode: sqrt(2/(πn))·(1 − 1/(4n) + …), no overflow */
    double lm = co_binom_logpmf(5000000, 10000000, 0.5);
    REL(exp(lm), sqrt(2.0 / (M_PI * 1e7)) * (1 - 1 / 4e7), 1e-12);
    /* edges */
    assert_true(co_binom_logpmf(0, 0, 0.5) == 0.0);
    assert_true(co_binom_logpmf(3, 2, 0.5) == -INFINITY);
    assert_true(co_binom_logpmf(0, 10, 0.0) == 0.0);
    assert_true(co_binom_logpmf(1, 10, 0.0) == -INFINITY);
    assert_true(co_binom_logpmf(10, 10, 1.0) == 0.0);
    assert_true(isnan(co_binom_logpmf(1, 10, NAN)));
    assert_true(isnan(co_binom_logpmf(1, 10, 1.5)));
}

/* ------------------------------------------------------------ Wilson */

static void test_wilson_textbook(void **state)
{
    (void)state;
    /* Newcombe (1998), "Two-sided confidence intervals for the single
     * proportion", Table I, method 3 (score): 81/263, 15/148, 0/20, 1/29;
     * and the brief's 0/10, 5/10, 10/10 (40-digit arithmetic). */
    struct { uint64_t k, n; double lo, hi; } cases[] = {
        {0, 10, 0.0, 0.2775},  {5, 10, 0.2366, 0.7634}, {10, 10, 0.7225, 1.0},
        {81, 263, 0.2553, 0.3662}, {15, 148, 0.0624, 0.1605}, {0, 20, 0.0, 0.1611},
        {1, 29, 0.0061, 0.1718},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        co_interval ci;
        assert_int_equal(co_wilson(&ci, cases[i].k, cases[i].n, 0.95), 0);
        NEAR(r4(ci.lo), cases[i].lo, 1e-9);
        NEAR(r4(ci.hi), cases[i].hi, 1e-9);
        NEAR(ci.est, (double)cases[i].k / (double)cases[i].n, 1e-15);
    }
    co_interval ci;
    assert_int_equal(co_wilson(&ci, 0, 10, 0.95), 0);
    assert_true(ci.lo == 0.0); /* exactly, not -1e-17 */
    assert_int_equal(co_wilson(&ci, 10, 10, 0.95), 0);
    assert_true(ci.hi == 1.0);
}

/* The Wilson bounds are the roots of |p̂ − p| = z·sqrt(p(1−p)/n): plug in. */
static void test_wilson_score_equation(void **state)
{
    (void)state;
    const uint64_t ns[] = {7, 50, 1000, 10000000};
    const double levels[] = {0.8, 0.95, 0.999};
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++) {
            uint64_t n = ns[a];
            double z = co_norm_quantile(0.5 + levels[b] / 2);
            uint64_t ks[] = {1, n / 3, n - 1};
            for (size_t c = 0; c < 3; c++) {
                co_interval ci;
                assert_int_equal(co_wilson(&ci, ks[c], n, levels[b]), 0);
                double ph = (double)ks[c] / (double)n;
                double bounds[2] = {ci.lo, ci.hi};
                for (int s = 0; s < 2; s++) {
                    double p = bounds[s];
                    double lhs = fabs(ph - p), rhs = z * sqrt(p * (1 - p) / (double)n);
                    NEAR(lhs, rhs, 1e-12);
                }
                assert_true(ci.lo < ph && ph < ci.hi);
            }
        }
    /* a wider level gives a wider interval */
    co_interval a90, a99;
    assert_int_equal(co_wilson(&a90, 30, 100, 0.90), 0);
    assert_int_equal(co_wilson(&a99, 30, 100, 0.99), 0);
    assert_true(a99.lo < a90.lo && a99.hi > a90.hi);
}

static void test_wilson_invalid(void **state)
{
    (void)state;
    co_interval ci = {7, 7, 7};
    co_error_clear();
    assert_int_equal(co_wilson(&ci, 0, 0, 0.95), CO_EINVAL);
    assert_int_equal(co_error_last_status(), CO_EINVAL);
    assert_true(ci.est == 7 && ci.lo == 7 && ci.hi == 7); /* untouched on error */
    assert_int_equal(co_wilson(&ci, 11, 10, 0.95), CO_EINVAL);
    assert_int_equal(co_wilson(&ci, 1, 10, 0.0), CO_EINVAL);
    assert_int_equal(co_wilson(&ci, 1, 10, 1.0), CO_EINVAL);
    assert_int_equal(co_wilson(&ci, 1, 10, NAN), CO_EINVAL);
}

/* ------------------------------------------------------------ Agresti–Caffo */

static void test_agresti_caffo(void **state)
{
    (void)state;
    /* 56/70 vs 48/80: p̃ = 57/72, 49/82 (hand/40-digit): (0.05245, 0.33576) */
    co_interval ci;
    assert_int_equal(co_agresti_caffo(&ci, 56, 70, 48, 80, 0.95), 0);
    NEAR(ci.lo, 0.05245292664, 1e-9);
    NEAR(ci.hi, 0.3357584555, 1e-9);
    NEAR(ci.est, 0.2, 1e-15);
    /* zero events on both sides: symmetric around 0, finite */
    assert_int_equal(co_agresti_caffo(&ci, 0, 10, 0, 10, 0.95), 0);
    NEAR(ci.lo, -ci.hi, 1e-15);
    assert_true(ci.hi > 0.2 && ci.hi < 0.5);
    /* the extreme table stays inside [−1, 1] */
    assert_int_equal(co_agresti_caffo(&ci, 10, 10, 0, 10, 0.99), 0);
    assert_true(ci.hi <= 1.0 && ci.lo > 0.0 && ci.est == 1.0);
    assert_int_equal(co_agresti_caffo(&ci, 0, 0, 0, 10, 0.95), CO_EINVAL);
    assert_int_equal(co_agresti_caffo(&ci, 1, 10, 12, 10, 0.95), CO_EINVAL);
}

/* ------------------------------------------------------------ McNemar */

static void test_mcnemar_known(void **state)
{
    (void)state;
    double p, mid;
    /* b=1, c=9: 2·(1 + 10)/1024 = 0.021484375 exactly; mid-p 12/1024 */
    assert_int_equal(co_mcnemar_exact(&p, &mid, 1, 9), 0);
    NEAR(p, 0.021484375, 1e-15);
    NEAR(mid, 0.01171875, 1e-15);
    assert_int_equal(co_mcnemar_exact(&p, &mid, 5, 5), 0);
    assert_true(p == 1.0 && mid == 1.0);
    assert_int_equal(co_mcnemar_exact(&p, &mid, 0, 0), 0);
    assert_true(p == 1.0 && mid == 1.0);
    assert_int_equal(co_mcnemar_exact(&p, NULL, 2, 0), 0); /* mid-p optional */
    NEAR(p, 0.5, 1e-15);
    /* Cavo et al. table (Fagerland et al., ch. 8): 0.0524787902832 */
    assert_int_equal(co_mcnemar_exact(&p, &mid, 16, 6), 0);
    NEAR(p, 0.0524787902832, 1e-12);
    NEAR(mid, 0.0346896648407, 1e-12);
    /* symmetric in b and c */
    double p2;
    assert_int_equal(co_mcnemar_exact(&p2, NULL, 6, 16), 0);
    assert_true(p == p2);
}

/* Every table with b + c <= 62 against exact integer binomial sums. */
static void test_mcnemar_vs_pascal(void **state)
{
    (void)state;
    pascal_init();
    for (uint64_t b = 0; b <= 31; b++)
        for (uint64_t c = 0; c <= 31; c++) {
            uint64_t n = b + c, m = b < c ? b : c;
            long double tail = 0;
            for (uint64_t j = 0; j <= m; j++)
                tail += (long double)pascal[n][j];
            tail = ldexpl(tail, -(int)n);
            long double pm = ldexpl((long double)pascal[n][m], -(int)n);
            double want = (double)fminl(1.0L, 2 * tail);
            double want_mid = (double)fminl(1.0L, 2 * (tail - pm / 2));
            double p, mid;
            assert_int_equal(co_mcnemar_exact(&p, &mid, b, c), 0);
            REL(p, want, 1e-12);
            REL(mid, want_mid, 1e-12);
        }
}

/* n = 1e7: no overflow, and the normal approximation (exact enough there)
 * agrees; extreme tables underflow to 0, never NaN. */
static void test_mcnemar_large(void **state)
{
    (void)state;
    double p, mid;
    assert_int_equal(co_mcnemar_exact(&p, &mid, 4999000, 5001000), 0);
    double z = (2000.0 - 1.0) / sqrt(1e7);
    REL(p, 2 * co_norm_sf(z), 1e-4);
    assert_int_equal(co_mcnemar_exact(&p, &mid, 4990000, 5010000), 0);
    z = (20000.0 - 1.0) / sqrt(1e7);
    REL(p, 2 * co_norm_sf(z), 2e-3);
    assert_true(p > 0 && mid < p);
    assert_int_equal(co_mcnemar_exact(&p, &mid, 0, 10000000), 0);
    assert_true(p == 0.0 && mid == 0.0);
    assert_int_equal(co_mcnemar_exact(&p, &mid, UINT64_MAX, 1), CO_EINVAL);
}

/* ------------------------------------------------------------ paired */

static void test_paired_newcombe(void **state)
{
    (void)state;
    /* Cavo et al. 2012 (Fagerland, Lydersen & Laake, "Statistical Analysis
     * of Contingency Tables", ch. 8): [[59, 6], [16, 80]], Newcombe
     * square-and-add: −0.0621 (95% CI −0.1186 to −0.0046). */
    co_paired_counts t = {.both = 59, .cand_only = 6, .inc_only = 16, .neither = 80};
    co_paired_result r;
    assert_int_equal(co_paired_compare(&r, &t, 0.95), 0);
    assert_int_equal(r.n, 161);
    NEAR(r4(r.diff.est), -0.0621, 1e-9);
    NEAR(r4(r.diff.lo), -0.1186, 1e-9);
    NEAR(r4(r.diff.hi), -0.0046, 1e-9);
    NEAR(r.cand_rate, 65.0 / 161, 1e-15);
    NEAR(r.inc_rate, 75.0 / 161, 1e-15);
    NEAR(r.p_exact, 0.0524787902832, 1e-12);
    /* swapping the arms mirrors the interval */
    co_paired_counts s = {.both = 59, .cand_only = 16, .inc_only = 6, .neither = 80};
    co_paired_result m;
    assert_int_equal(co_paired_compare(&m, &s, 0.95), 0);
    NEAR(m.diff.lo, -r.diff.hi, 1e-12);
    NEAR(m.diff.hi, -r.diff.lo, 1e-12);
    /* no discordance: est 0, a proper interval around it, p = 1 */
    co_paired_counts e = {.both = 20};
    assert_int_equal(co_paired_compare(&r, &e, 0.95), 0);
    assert_true(r.diff.est == 0 && r.diff.lo < 0 && r.diff.hi > 0);
    assert_true(r.diff.lo >= -1 && r.diff.hi <= 1 && r.p_exact == 1.0);
    /* large n: close to the Wald interval of the paired difference */
    co_paired_counts big = {.both = 600000, .inc_only = 30000, .cand_only = 20000, .neither = 350000};
    assert_int_equal(co_paired_compare(&r, &big, 0.95), 0);
    double n = 1e6, d = -0.01, var = (0.05 - d * d) / n;
    NEAR(r.diff.lo, d - 1.959964 * sqrt(var), 2e-5);
    NEAR(r.diff.hi, d + 1.959964 * sqrt(var), 2e-5);
    /* invalid */
    co_paired_counts zero = {0};
    assert_int_equal(co_paired_compare(&r, &zero, 0.95), CO_EINVAL);
    assert_int_equal(co_paired_compare(&r, &t, 1.5), CO_EINVAL);
    co_paired_counts over = {.both = UINT64_MAX, .neither = 1};
    assert_int_equal(co_paired_compare(&r, &over, 0.95), CO_EINVAL);
}

/* ------------------------------------------------------------ RNG */

static void test_rng(void **state)
{
    (void)state;
    co_rng a, b, c;
    co_rng_seed(&a, 42);
    co_rng_seed(&b, 42);
    co_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = co_rng_next(&a), y = co_rng_next(&b), z = co_rng_next(&c);
        assert_true(x == y);
        differ += x != z;
    }
    assert_true(differ > 95);
    /* a fixed stream: the same numbers on every run and host */
    co_rng_seed(&a, 0);
    co_rng_seed(&b, 0);
    for (int i = 0; i < 10; i++)
        assert_true(co_rng_next(&a) == co_rng_next(&b));
    /* bounded draws: in range and roughly uniform (chi-square, 9 df) */
    unsigned cnt[10] = {0};
    co_rng_seed(&a, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = co_rng_below(&a, 10);
        assert_true(v < 10);
        cnt[v]++;
    }
    double chi = 0;
    for (int i = 0; i < 10; i++)
        chi += (cnt[i] - 10000.0) * (cnt[i] - 10000.0) / 10000.0;
    assert_true(chi < 35.0); /* p < 1e-4 under uniformity */
    assert_true(co_rng_below(&a, 0) == 0);
    assert_true(co_rng_below(&a, 1) == 0);
    double mean = 0;
    for (int i = 0; i < 100000; i++) {
        double u = co_rng_unit(&a);
        assert_true(u >= 0.0 && u < 1.0);
        mean += u;
    }
    NEAR(mean / 100000, 0.5, 0.005);
}

/* ------------------------------------------------------------ bootstrap */

static void test_bootstrap_determinism(void **state)
{
    (void)state;
    enum { N = 150 };
    double cand[N], inc[N];
    co_rng g;
    co_rng_seed(&g, 99);
    for (int i = 0; i < N; i++) {
        inc[i] = co_rng_unit(&g) < 0.7;
        cand[i] = co_rng_unit(&g) < 0.65;
    }
    co_interval a, b, c;
    assert_int_equal(co_bootstrap_paired_diff(&a, cand, inc, N, 1000, 0.95, 1234, NULL), 0);
    assert_int_equal(co_bootstrap_paired_diff(&b, cand, inc, N, 1000, 0.95, 1234, NULL), 0);
    assert_true(bit_equal(a.lo, b.lo) && bit_equal(a.hi, b.hi) && bit_equal(a.est, b.est));
    /* caller scratch gives the same bits */
    double *scratch = malloc(1000 * sizeof *scratch);
    assert_non_null(scratch);
    assert_int_equal(co_bootstrap_paired_diff(&c, cand, inc, N, 1000, 0.95, 1234, scratch), 0);
    assert_true(bit_equal(a.lo, c.lo) && bit_equal(a.hi, c.hi));
    free(scratch);
    /* another seed: another (but similar) interval */
    assert_int_equal(co_bootstrap_paired_diff(&c, cand, inc, N, 1000, 0.95, 1235, NULL), 0);
    assert_true(!bit_equal(a.lo, c.lo) || !bit_equal(a.hi, c.hi));
    NEAR(c.lo, a.lo, 0.03);
    NEAR(c.hi, a.hi, 0.03);
    double sum = 0;
    for (int i = 0; i < N; i++)
        sum += cand[i] - inc[i];
    NEAR(a.est, sum / N, 1e-15);
    assert_true(a.lo <= a.est && a.est <= a.hi);
}

static void test_bootstrap_clear_case(void **state)
{
    (void)state;
    /* candidate passes 90%, incumbent 50%: true difference 0.4 */
    enum { N = 400 };
    double cand[N], inc[N];
    for (int i = 0; i < N; i++) {
        cand[i] = (i % 10) != 0;
        inc[i] = (i % 2) == 0;
    }
    co_interval ci;
    assert_int_equal(co_bootstrap_paired_diff(&ci, cand, inc, N, 2000, 0.95, 5, NULL), 0);
    NEAR(ci.est, 0.4, 1e-12);
    assert_true(ci.lo > 0.3 && ci.lo < 0.4 && ci.hi > 0.4 && ci.hi < 0.5);
    /* roughly the normal-theory width 2·z·sd(d)/sqrt(n) */
    double m2 = 0;
    for (int i = 0; i < N; i++)
        m2 += (cand[i] - inc[i]) * (cand[i] - inc[i]);
    double se = sqrt((m2 / N - 0.4 * 0.4) / N); /* E[d²] = P(d ≠ 0) = 0.6 */
    NEAR(ci.hi - ci.lo, 2 * 1.959964 * se, 0.01);
}

/* Over many simulated eval sets the 90% interval covers the truth about
 * 90% of the time. */
static void test_bootstrap_coverage(void **state)
{
    (void)state;
    enum { N = 200, SETS = 120 };
    static double cand[N], inc[N];
    co_rng g;
    co_rng_seed(&g, 2024);
    int covered = 0;
    const double truth = 0.72 - 0.80;
    for (int s = 0; s < SETS; s++) {
        for (int i = 0; i < N; i++) {
            double u = co_rng_unit(&g);
            inc[i] = u < 0.80;
            /* correlated arms: the candidate mostly agrees with the incumbent */
            cand[i] = co_rng_unit(&g) < 0.5 ? inc[i] * (co_rng_unit(&g) < 0.9) : (u < 0.72 ? 1.0 : 0.0);
        }
        /* the true candidate rate is 0.5·0.8·0.9 + 0.5·0.72 = 0.72 */
        co_interval ci;
        assert_int_equal(co_bootstrap_paired_diff(&ci, cand, inc, N, 400, 0.90, (uint64_t)s, NULL), 0);
        covered += ci.lo <= truth && truth <= ci.hi;
    }
    double rate = (double)covered / SETS;
    assert_true(rate > 0.80 && rate <= 0.98);
}

static void test_bootstrap_degenerate(void **state)
{
    (void)state;
    double a[5] = {1, 1, 0, 1, 0}, b[5] = {1, 1, 0, 1, 0};
    co_interval ci = {9, 9, 9};
    assert_int_equal(co_bootstrap_paired_diff(&ci, a, b, 5, 500, 0.95, 1, NULL), 0);
    assert_true(ci.est == 0 && ci.lo == 0 && ci.hi == 0); /* all equal: [0,0] */
    double c[5] = {1, 1, 1, 1, 1}, d[5] = {0, 0, 0, 0, 0};
    assert_int_equal(co_bootstrap_paired_diff(&ci, c, d, 5, 500, 0.95, 1, NULL), 0);
    assert_true(ci.est == 1 && ci.lo == 1 && ci.hi == 1);
    assert_int_equal(co_bootstrap_paired_diff(&ci, a, b, 0, 500, 0.95, 1, NULL), CO_EINVAL);
    assert_int_equal(co_bootstrap_paired_diff(&ci, a, b, 5, 10, 0.95, 1, NULL), CO_EINVAL);
    assert_int_equal(co_bootstrap_paired_diff(&ci, a, b, 5, 500, 1.0, 1, NULL), CO_EINVAL);
    double nan_in[5] = {1, NAN, 0, 1, 0};
    assert_int_equal(co_bootstrap_paired_diff(&ci, nan_in, b, 5, 500, 0.95, 1, NULL), CO_EINVAL);
    double inf_in[5] = {1, 0, INFINITY, 1, 0};
    assert_int_equal(co_bootstrap_paired_diff(&ci, a, inf_in, 5, 500, 0.95, 1, NULL), CO_EINVAL);
}

/* ------------------------------------------------------------ quantiles */

static void test_quantiles(void **state)
{
    (void)state;
    double x[10] = {7, 3, 10, 1, 9, 2, 8, 4, 6, 5}, v;
    assert_int_equal(co_quantile(&v, x, 10, 0.95, CO_QUANTILE_LINEAR, NULL), 0);
    NEAR(v, 9.55, 1e-12);
    assert_int_equal(co_quantile(&v, x, 10, 0.95, CO_QUANTILE_NEAREST_RANK, NULL), 0);
    assert_true(v == 10);
    assert_int_equal(co_quantile(&v, x, 10, 0.5, CO_QUANTILE_LINEAR, NULL), 0);
    assert_true(v == 5.5);
    assert_int_equal(co_quantile(&v, x, 10, 0.5, CO_QUANTILE_NEAREST_RANK, NULL), 0);
    assert_true(v == 5);
    assert_true(x[0] == 7 && x[1] == 3); /* input untouched */
    /* nearest-rank textbook example: {15, 20, 35, 40, 50} */
    double w[5] = {15, 20, 35, 40, 50};
    const double qs[] = {0.05, 0.30, 0.40, 0.50, 1.00}, want[] = {15, 20, 20, 35, 50};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(co_quantile_sorted(&v, w, 5, qs[i], CO_QUANTILE_NEAREST_RANK), 0);
        assert_true(v == want[i]);
    }
    assert_int_equal(co_quantile_sorted(&v, w, 5, 0.4, CO_QUANTILE_LINEAR), 0);
    NEAR(v, 29.0, 1e-12); /* h = 1.6: 20 + 0.6·15 */
    assert_int_equal(co_quantile_sorted(&v, w, 5, 0.0, CO_QUANTILE_LINEAR), 0);
    assert_true(v == 15);
    assert_int_equal(co_quantile_sorted(&v, w, 5, 1.0, CO_QUANTILE_LINEAR), 0);
    assert_true(v == 50);
    /* nearest rank where q·n is an integer in decimal but not in binary */
    double h[100];
    for (int i = 0; i < 100; i++)
        h[i] = i + 1;
    for (int pct = 1; pct <= 100; pct++) {
        assert_int_equal(co_quantile_sorted(&v, h, 100, pct / 100.0, CO_QUANTILE_NEAREST_RANK), 0);
        assert_true(v == pct);
    }
    /* one value */
    double one = 3.5;
    assert_int_equal(co_quantile(&v, &one, 1, 0.99, CO_QUANTILE_LINEAR, NULL), 0);
    assert_true(v == 3.5);
    /* caller scratch */
    double scratch[10];
    assert_int_equal(co_quantile(&v, x, 10, 0.25, CO_QUANTILE_LINEAR, scratch), 0);
    NEAR(v, 3.25, 1e-12);
    /* invalid */
    assert_int_equal(co_quantile(&v, x, 0, 0.5, CO_QUANTILE_LINEAR, NULL), CO_EINVAL);
    assert_int_equal(co_quantile(&v, x, 10, 1.5, CO_QUANTILE_LINEAR, NULL), CO_EINVAL);
    assert_int_equal(co_quantile(&v, x, 10, NAN, CO_QUANTILE_LINEAR, NULL), CO_EINVAL);
    assert_int_equal(co_quantile(&v, x, 10, 0.5, (co_quantile_method)7, NULL), CO_EINVAL);
    double bad[3] = {1, NAN, 2};
    assert_int_equal(co_quantile(&v, bad, 3, 0.5, CO_QUANTILE_LINEAR, NULL), CO_EINVAL);
    assert_int_equal(co_quantile_sorted(&v, x, 10, 0.5, CO_QUANTILE_LINEAR), CO_EINVAL); /* unsorted */
    /* sorting puts NaN last */
    double s[4] = {3, NAN, 1, 2};
    co_sort_doubles(s, 4);
    assert_true(s[0] == 1 && s[1] == 2 && s[2] == 3 && isnan(s[3]));
}

/* ------------------------------------------------------------ KS */

/* D by brute force: the ECDF difference at every pooled value. */
static double ks_brute(const double *x, size_t nx, const double *y, size_t ny)
{
    double d = 0;
    for (size_t k = 0; k < nx + ny; k++) {
        double v = k < nx ? x[k] : y[k - nx];
        size_t cx = 0, cy = 0;
        for (size_t i = 0; i < nx; i++) cx += x[i] <= v;
        for (size_t i = 0; i < ny; i++) cy += y[i] <= v;
        double diff = fabs((double)cx / nx - (double)cy / ny);
        if (diff > d) d = diff;
    }
    return d;
}

/* Q_KS by the alternating series alone (converges for λ >= 0.3). */
static double qks_series(double lambda)
{
    double s = 0;
    for (int j = 1; j <= 2000; j++)
        s += (j % 2 ? 2.0 : -2.0) * exp(-2.0 * j * j * lambda * lambda);
    return s;
}

static void test_ks_hand(void **state)
{
    (void)state;
    co_ks_result r;
    /* disjoint samples: D = 1; p = Q(1.5811 + 0.12 + 0.0696) = 0.00378135 */
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {6, 7, 8, 9, 10};
    assert_int_equal(co_ks_2samp(&r, x, 5, y, 5, NULL), 0);
    assert_true(r.d == 1.0);
    NEAR(r.p, 0.00378135405937, 1e-11);
    NEAR(r.en, sqrt(2.5), 1e-15);
    /* identical samples: D = 0, p = 1 */
    assert_int_equal(co_ks_2samp(&r, x, 5, x, 5, NULL), 0);
    assert_true(r.d == 0.0 && r.p == 1.0);
    /* interleaved: F_x leads by 1/5 at every odd value */
    double a[5] = {1, 3, 5, 7, 9}, b[5] = {2, 4, 6, 8, 10};
    assert_int_equal(co_ks_2samp(&r, a, 5, b, 5, NULL), 0);
    NEAR(r.d, 0.2, 1e-15);
    assert_true(r.p > 0.99);
    /* unequal sizes: x = {1,2,3,4}, y = {3..8}: at 4, 1 − 2/6 = 2/3 */
    double c[4] = {4, 2, 3, 1}, d[6] = {8, 3, 4, 5, 6, 7};
    assert_int_equal(co_ks_2samp(&r, c, 4, d, 6, NULL), 0);
    NEAR(r.d, 2.0 / 3.0, 1e-15);
    double en = sqrt(24.0 / 10.0);
    NEAR(r.p, qks_series((en + 0.12 + 0.11 / en) * (2.0 / 3.0)), 1e-12);
    /* ties across samples: x = {1,1,2}, y = {1,2,2}: at 1, 2/3 − 1/3 */
    double t1[3] = {1, 1, 2}, t2[3] = {1, 2, 2};
    assert_int_equal(co_ks_2samp(&r, t1, 3, t2, 3, NULL), 0);
    NEAR(r.d, 1.0 / 3.0, 1e-15);
    /* published-style values (40-digit series): 5×5 D = 0.6, 4×6 D = 0.5 */
    double e1[5] = {1, 2, 3, 6, 7}, e2[5] = {4, 5, 8, 9, 10};
    assert_int_equal(co_ks_2samp(&r, e1, 5, e2, 5, NULL), 0);
    NEAR(r.d, 0.6, 1e-15);
    NEAR(r.p, 0.208984830575, 1e-11);
}

static void test_ks_random(void **state)
{
    (void)state;
    enum { NX = 137, NY = 211 };
    double x[NX], y[NY];
    co_rng g;
    co_rng_seed(&g, 11);
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < NX; i++) x[i] = floor(normal_draw(&g) * 5); /* with ties */
        for (int i = 0; i < NY; i++) y[i] = floor(normal_draw(&g) * 5 + rep * 0.3);
        co_ks_result r;
        double scratch[NX + NY];
        assert_int_equal(co_ks_2samp(&r, x, NX, y, NY, scratch), 0);
        NEAR(r.d, ks_brute(x, NX, y, NY), 1e-15);
        double en = sqrt((double)NX * NY / (NX + NY));
        double lambda = (en + 0.12 + 0.11 / en) * r.d;
        if (lambda >= 0.3) /* both forms of Q_KS agree */
            NEAR(r.p, fmin(1.0, fmax(0.0, qks_series(lambda))), 1e-12);
        assert_true(r.p >= 0.0 && r.p <= 1.0);
    }
    /* a clear shift is significant */
    for (int i = 0; i < NX; i++) x[i] = normal_draw(&g);
    for (int i = 0; i < NY; i++) y[i] = normal_draw(&g) + 1.0;
    co_ks_result r;
    assert_int_equal(co_ks_2samp(&r, x, NX, y, NY, NULL), 0);
    assert_true(r.p < 1e-6);
}

static void test_ks_invalid(void **state)
{
    (void)state;
    co_ks_result r;
    double x[3] = {1, 2, 3}, bad[3] = {1, NAN, 3};
    assert_int_equal(co_ks_2samp(&r, x, 0, x, 3, NULL), CO_EINVAL);
    assert_int_equal(co_ks_2samp(&r, x, 3, x, 0, NULL), CO_EINVAL);
    assert_int_equal(co_ks_2samp(&r, x, 3, bad, 3, NULL), CO_EINVAL);
    assert_int_equal(co_ks_2samp(&r, bad, 3, x, 3, NULL), CO_EINVAL);
}

/* ------------------------------------------------------------ z-test */

/* x·log(y) with 0·log(0) = 0. */
static double xlogy(double x, double y)
{
    return x == 0 ? 0.0 : x * log(y);
}

/* The score statistic with the restricted MLE found by maximising the
 * likelihood numerically (golden section on p2), not by the cubic. */
static double fm_z_numeric(double x1, double n1, double x2, double n2, double delta)
{
    double a = fmax(0.0, -delta) + 1e-15, b = fmin(1.0, 1.0 - delta) - 1e-15;
    const double g = (sqrt(5.0) - 1) / 2;
    for (int it = 0; it < 300; it++) {
        double m1 = b - g * (b - a), m2 = a + g * (b - a);
        double l1 = xlogy(x1, m1 + delta) + xlogy(n1 - x1, 1 - m1 - delta) + xlogy(x2, m1) + xlogy(n2 - x2, 1 - m1);
        double l2 = xlogy(x1, m2 + delta) + xlogy(n1 - x1, 1 - m2 - delta) + xlogy(x2, m2) + xlogy(n2 - x2, 1 - m2);
        if (l1 < l2) a = m1; else b = m2;
    }
    double p2 = (a + b) / 2, p1 = p2 + delta;
    return (x1 / n1 - x2 / n2 - delta) / sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2);
}

static void test_two_prop_ztest(void **state)
{
    (void)state;
    co_ztest t;
    /* δ = 0 is the pooled z-test: recompute it from the textbook formula */
    assert_int_equal(co_two_prop_ztest(&t, 56, 70, 48, 80, 0.0), 0);
    double p = 104.0 / 150, se = sqrt(p * (1 - p) * (1.0 / 70 + 1.0 / 80));
    NEAR(t.z, 0.2 / se, 1e-12);
    NEAR(t.p_greater, co_norm_sf(0.2 / se), 1e-15);
    NEAR(t.p_two_sided, 2 * t.p_greater, 1e-15);
    NEAR(t.p_greater + t.p_less, 1.0, 1e-15);
    /* reference (cicalc's Mee/score output): z 2.65, p 0.004 at 0;
     * z 1.348, p 0.0889 at 0.1 */
    NEAR(round(t.z * 100) / 100, 2.65, 1e-9);
    NEAR(round(t.p_greater * 1000) / 1000, 0.004, 1e-9);
    assert_int_equal(co_two_prop_ztest(&t, 56, 70, 48, 80, 0.1), 0);
    NEAR(round(t.z * 1000) / 1000, 1.348, 1e-9);
    NEAR(round(t.p_greater * 10000) / 10000, 0.0889, 1e-9);
    /* the closed-form cubic against a numerically maximised likelihood,
     * including a 1% canary split (n2/n1 = 100) */
    const struct { uint64_t k1, n1, k2, n2; } tabs[] = {
        {56, 70, 48, 80}, {3, 50, 100, 5000}, {0, 40, 2, 60}, {17, 20, 3, 25}, {200, 1000, 50, 1000},
    };
    const double deltas[] = {-0.3, -0.05, 0.02, 0.1, 0.4};
    for (size_t i = 0; i < sizeof tabs / sizeof *tabs; i++)
        for (size_t j = 0; j < sizeof deltas / sizeof *deltas; j++) {
            assert_int_equal(co_two_prop_ztest(&t, tabs[i].k1, tabs[i].n1, tabs[i].k2, tabs[i].n2, deltas[j]), 0);
            double want = fm_z_numeric((double)tabs[i].k1, (double)tabs[i].n1,
                                       (double)tabs[i].k2, (double)tabs[i].n2, deltas[j]);
            NEAR(t.z, want, 1e-6 * fmax(1.0, fabs(want)));
        }
    /* continuity at δ → 0: the cubic's root meets the pooled estimate */
    co_ztest t0, te;
    assert_int_equal(co_two_prop_ztest(&t0, 30, 120, 20, 90, 0.0), 0);
    assert_int_equal(co_two_prop_ztest(&te, 30, 120, 20, 90, 1e-9), 0);
    NEAR(te.z, t0.z, 1e-6);
    /* all outcomes identical: z 0, p 1 — no NaN */
    assert_int_equal(co_two_prop_ztest(&t, 0, 50, 0, 60, 0.0), 0);
    assert_true(t.z == 0 && t.p_two_sided == 1.0);
    assert_int_equal(co_two_prop_ztest(&t, 50, 50, 60, 60, 0.0), 0);
    assert_true(t.z == 0 && t.p_two_sided == 1.0);
    /* invalid */
    assert_int_equal(co_two_prop_ztest(&t, 0, 0, 0, 60, 0.0), CO_EINVAL);
    assert_int_equal(co_two_prop_ztest(&t, 1, 10, 0, 60, 1.0), CO_EINVAL);
    assert_int_equal(co_two_prop_ztest(&t, 1, 10, 0, 60, NAN), CO_EINVAL);
}

/* ------------------------------------------------------------ triggers */

static void test_trigger_rate_diff(void **state)
{
    (void)state;
    co_trigger_result r;
    /* the inverted score interval: cicalc's Mee 95% CI (0.0533, 0.3377) */
    assert_int_equal(co_trigger_rate_diff(&r, 56, 70, 48, 80, 0.0, 0.975), 0);
    NEAR(r4(r.lo), 0.0533, 1e-9);
    NEAR(r4(r.hi), 0.3377, 1e-9);
    NEAR(r.est, 0.2, 1e-15);
    assert_int_equal(r.kind, CO_TRIGGER_RATE_DIFF);
    /* the bounds invert the test: z(lo) = z_0.975 and z(hi) = −z_0.975 */
    co_ztest zt;
    assert_int_equal(co_two_prop_ztest(&zt, 56, 70, 48, 80, r.lo), 0);
    NEAR(zt.z, 1.959963984540054, 1e-9);
    assert_int_equal(co_two_prop_ztest(&zt, 56, 70, 48, 80, r.hi), 0);
    NEAR(zt.z, -1.959963984540054, 1e-9);
    /* clear breach: 20% vs 5% errors, threshold 5 points */
    assert_int_equal(co_trigger_rate_diff(&r, 200, 1000, 50, 1000, 0.05, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_BREACH);
    assert_true(r.lo > 0.05 && r.confidence > 0.999);
    assert_string_equal(co_trigger_verdict_name(r.verdict), "breach");
    /* clear ok: 1.0% vs 1.2% errors */
    assert_int_equal(co_trigger_rate_diff(&r, 10, 1000, 12, 1000, 0.05, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_OK);
    assert_true(r.hi < 0.05 && r.confidence > 0.95);
    /* tiny sample: 1/10 vs 0/10, and 0/10 vs 0/10 (Wald would say "ok") */
    assert_int_equal(co_trigger_rate_diff(&r, 1, 10, 0, 10, 0.05, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_true(r.confidence < 0.95 && r.confidence >= 0.5);
    assert_int_equal(co_trigger_rate_diff(&r, 0, 10, 0, 10, 0.05, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_true(r.lo < 0 && r.hi > 0.05);
    /* a canary split (1% of traffic) works: 6% vs 1% over 400 vs 40000 */
    assert_int_equal(co_trigger_rate_diff(&r, 24, 400, 400, 40000, 0.02, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_BREACH);
    /* the verdict agrees with the bounds and the confidence over a grid */
    int seen[3] = {0, 0, 0};
    for (uint64_t kc = 0; kc <= 60; kc += 4)
        for (uint64_t ki = 0; ki <= 60; ki += 6) {
            assert_int_equal(co_trigger_rate_diff(&r, kc, 300, ki, 250, 0.03, 0.9), 0);
            assert_true(r.lo <= r.est && r.est <= r.hi);
            assert_true(r.lo >= -1 && r.hi <= 1 && !isnan(r.confidence));
            co_trigger_verdict by_bounds = co_trigger_judge(r.lo, r.hi, 0.03);
            if (fabs(r.lo - 0.03) > 1e-9 && fabs(r.hi - 0.03) > 1e-9)
                assert_int_equal(r.verdict, by_bounds);
            assert_int_equal(r.verdict != CO_TRIGGER_INCONCLUSIVE, r.confidence > 0.9);
            seen[r.verdict]++;
        }
    assert_true(seen[CO_TRIGGER_OK] > 0 && seen[CO_TRIGGER_BREACH] > 0 && seen[CO_TRIGGER_INCONCLUSIVE] > 0);
    /* invalid (empty arm: the caller's minimum sample comes first) */
    assert_int_equal(co_trigger_rate_diff(&r, 0, 0, 0, 10, 0.05, 0.95), CO_EINVAL);
    assert_int_equal(co_trigger_rate_diff(&r, 11, 10, 0, 10, 0.05, 0.95), CO_EINVAL);
    assert_int_equal(co_trigger_rate_diff(&r, 1, 10, 0, 10, 0.05, 0.4), CO_EINVAL);
    assert_int_equal(co_trigger_rate_diff(&r, 1, 10, 0, 10, NAN, 0.95), CO_EINVAL);
}

static void test_trigger_rate_ratio(void **state)
{
    (void)state;
    co_trigger_result r;
    /* Katz: 30/100 vs 20/100, 95% two-sided = one-sided 0.975: (0.91596, 2.45644) */
    assert_int_equal(co_trigger_rate_ratio(&r, 30, 100, 20, 100, 1.2, 0.975), 0);
    NEAR(r.est, 1.5, 1e-12);
    NEAR(r.lo, 0.9159608293, 1e-9);
    NEAR(r.hi, 2.456436922, 1e-9);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    /* clear breach: 30% vs 10% negative feedback, "20% higher" */
    assert_int_equal(co_trigger_rate_ratio(&r, 300, 1000, 100, 1000, 1.2, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_BREACH);
    assert_true(r.confidence > 0.999);
    /* clear ok: equal rates over 100k */
    assert_int_equal(co_trigger_rate_ratio(&r, 10000, 100000, 10000, 100000, 1.2, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_OK);
    /* zeros: finite, inconclusive */
    assert_int_equal(co_trigger_rate_ratio(&r, 0, 20, 0, 20, 1.2, 0.95), 0);
    assert_true(isfinite(r.est) && isfinite(r.lo) && isfinite(r.hi));
    NEAR(r.est, 1.0, 1e-12);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(co_trigger_rate_ratio(&r, 5, 20, 0, 20, 1.2, 0.95), 0);
    assert_true(isfinite(r.est) && r.est > 1.2);
    /* confidence is consistent with the bounds */
    assert_int_equal(co_trigger_rate_ratio(&r, 140, 1000, 100, 1000, 1.2, 0.9), 0);
    assert_int_equal(r.verdict != CO_TRIGGER_INCONCLUSIVE, r.confidence > 0.9);
    /* invalid */
    assert_int_equal(co_trigger_rate_ratio(&r, 1, 0, 1, 10, 1.2, 0.95), CO_EINVAL);
    assert_int_equal(co_trigger_rate_ratio(&r, 1, 10, 1, 10, 0.0, 0.95), CO_EINVAL);
    assert_int_equal(co_trigger_rate_ratio(&r, 1, 10, 1, 10, NAN, 0.95), CO_EINVAL);
}

/* Log-normal latencies, median `median`, from the module's RNG. */
static void latencies(double *x, size_t n, double median, uint64_t seed)
{
    co_rng g;
    co_rng_seed(&g, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = median * exp(0.4 * normal_draw(&g));
}

static void test_trigger_quantile_ratio(void **state)
{
    (void)state;
    enum { N = 2000 };
    static double inc[N], cand[N], same[N];
    latencies(inc, N, 100, 1);
    latencies(cand, N, 200, 2);
    latencies(same, N, 100, 3);
    co_trigger_result r;
    /* the candidate is twice as slow: p95 ratio ≈ 2 > 1.5 → breach */
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, N, inc, N, 0.95, 1.5, 0.95, 1000, 7, NULL), 0);
    assert_int_equal(r.kind, CO_TRIGGER_QUANTILE_RATIO);
    assert_int_equal(r.verdict, CO_TRIGGER_BREACH);
    assert_true(r.est > 1.7 && r.est < 2.3 && r.lo > 1.5 && r.lo <= r.hi);
    assert_true(r.confidence > 0.95);
    /* the estimate is exactly the ratio of the linear p95s */
    double qc, qi;
    assert_int_equal(co_quantile(&qc, cand, N, 0.95, CO_QUANTILE_LINEAR, NULL), 0);
    assert_int_equal(co_quantile(&qi, inc, N, 0.95, CO_QUANTILE_LINEAR, NULL), 0);
    NEAR(r.est, qc / qi, 1e-12);
    /* same distribution → ok against 1.5 */
    assert_int_equal(co_trigger_quantile_ratio(&r, same, N, inc, N, 0.95, 1.5, 0.95, 1000, 7, NULL), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_OK);
    assert_true(r.hi < 1.5 && r.lo < 1.0 + 0.2 && r.hi > 1.0 - 0.2);
    /* five requests each, 1.3× slower → inconclusive */
    double c5[5] = {130, 160, 140, 200, 150}, i5[5] = {100, 120, 110, 170, 115};
    assert_int_equal(co_trigger_quantile_ratio(&r, c5, 5, i5, 5, 0.95, 1.5, 0.95, 1000, 7, NULL), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_true(r.confidence < 0.95);
    /* deterministic for a seed; caller scratch gives the same bits */
    co_trigger_result a, b;
    size_t sz = co_quantile_ratio_scratch_size(N, N, 500);
    assert_true(sz >= (2 * N + 500) * sizeof(double));
    void *scratch = malloc(sz);
    assert_non_null(scratch);
    assert_int_equal(co_trigger_quantile_ratio(&a, cand, 300, inc, 400, 0.9, 1.9, 0.9, 500, 99, NULL), 0);
    assert_int_equal(co_trigger_quantile_ratio(&b, cand, 300, inc, 400, 0.9, 1.9, 0.9, 500, 99, scratch), 0);
    assert_true(bit_equal(a.lo, b.lo) && bit_equal(a.hi, b.hi) && bit_equal(a.confidence, b.confidence));
    free(scratch);
    /* confidence agrees with the percentile bounds, across all three verdicts */
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 40; i++) {
        double thr = 1.2 + 0.04 * i;
        assert_int_equal(co_trigger_quantile_ratio(&r, cand, 200, inc, 200, 0.95, thr, 0.9, 400, 3, NULL), 0);
        seen[r.verdict]++;
        if (r.verdict != CO_TRIGGER_INCONCLUSIVE)
            assert_true(r.confidence > 0.9 - 1e-9);
        else
            assert_true(r.confidence <= 0.9 + 1e-9);
    }
    assert_true(seen[CO_TRIGGER_OK] > 0 && seen[CO_TRIGGER_BREACH] > 0 && seen[CO_TRIGGER_INCONCLUSIVE] > 0);
    /* the replicate distribution is the exact bootstrap one: with the
     * incumbent constant at 1 the ratio is the candidate's resampled
     * quantile, whose law is known in closed form for n = 10 values 1..10:
     * min ≤ 2 w.p. 1 − 0.8^10, max ≤ 9 w.p. 0.9^10 */
    double ten[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(co_trigger_quantile_ratio(&r, ten, 10, ones, 10, 0.0, 2.5, 0.95, 20000, 5, NULL), 0);
    NEAR(r.confidence, 1 - pow(0.8, 10), 0.01); /* below 2.5: P(min <= 2) = 0.8926 */
    assert_int_equal(co_trigger_quantile_ratio(&r, ten, 10, ones, 10, 1.0, 9.5, 0.95, 20000, 5, NULL), 0);
    NEAR(r.confidence, 1 - pow(0.9, 10), 0.01); /* above 9.5: P(max = 10) = 0.6513 */
    /* interpolation uses two adjacent order statistics: two values {0, 10},
     * median of a 2-resample is 0 (1/4), 5 (1/2) or 10 (1/4) */
    double two[2] = {0, 10};
    assert_int_equal(co_trigger_quantile_ratio(&r, two, 2, ones, 2, 0.5, 2.5, 0.95, 20000, 6, NULL), 0);
    NEAR(r.confidence, 0.75, 0.01);
    assert_int_equal(co_trigger_quantile_ratio(&r, two, 2, ones, 2, 0.5, 7.5, 0.95, 20000, 6, NULL), 0);
    NEAR(r.confidence, 0.75, 0.01);
    /* p95 with interpolation against brute-force resampling (sort each
     * resample): the two replicate distributions have the same quantiles */
    {
        enum { M = 40, BR = 20000 };
        static double rep[BR];
        double res[M];
        co_rng g;
        co_rng_seed(&g, 77);
        for (int b2 = 0; b2 < BR; b2++) {
            for (int i = 0; i < M; i++)
                res[i] = cand[co_rng_below(&g, M)];
            co_sort_doubles(res, M);
            double qv;
            assert_int_equal(co_quantile_sorted(&qv, res, M, 0.95, CO_QUANTILE_LINEAR), 0);
            rep[b2] = qv;
        }
        co_sort_doubles(rep, BR);
        double ones40[M];
        for (int i = 0; i < M; i++) ones40[i] = 1.0;
        const double probs[] = {0.1, 0.25, 0.6, 0.75, 0.9};
        for (int k = 0; k < 5; k++) {
            /* a threshold between two atoms of the replicate distribution */
            size_t at = (size_t)(probs[k] * BR);
            size_t nx = at;
            while (nx + 1 < BR && rep[nx + 1] == rep[at])
                nx++;
            assert_true(nx + 1 < BR);
            double thr = 0.5 * (rep[at] + rep[nx + 1]);
            double pb = (double)(nx + 1) / BR; /* brute-force P(replicate < thr) */
            assert_int_equal(co_trigger_quantile_ratio(&r, cand, M, ones40, M, 0.95, thr, 0.95, 20000, 8, NULL), 0);
            NEAR(r.confidence, fmax(pb, 1 - pb), 0.015);
        }
    }
    /* zeros: no NaN (0/0 → 1, x/0 → +inf) */
    double z3[3] = {0, 0, 0}, p3[3] = {0, 0, 5};
    assert_int_equal(co_trigger_quantile_ratio(&r, z3, 3, z3, 3, 0.5, 1.5, 0.95, 200, 1, NULL), 0);
    assert_true(r.est == 1.0 && r.lo == 1.0 && r.hi == 1.0);
    assert_int_equal(r.verdict, CO_TRIGGER_OK);
    assert_int_equal(co_trigger_quantile_ratio(&r, p3, 3, z3, 3, 0.9, 1.5, 0.95, 200, 1, NULL), 0);
    assert_true(isinf(r.est) && !isnan(r.lo) && !isnan(r.hi) && !isnan(r.confidence));
    /* invalid */
    double neg[2] = {1, -1}, nan2[2] = {1, NAN};
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, 0, inc, N, 0.95, 1.5, 0.95, 1000, 7, NULL), CO_EINVAL);
    assert_int_equal(co_trigger_quantile_ratio(&r, neg, 2, inc, N, 0.95, 1.5, 0.95, 1000, 7, NULL), CO_EINVAL);
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, N, nan2, 2, 0.95, 1.5, 0.95, 1000, 7, NULL), CO_EINVAL);
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, N, inc, N, 1.5, 1.5, 0.95, 1000, 7, NULL), CO_EINVAL);
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, N, inc, N, 0.95, 0.0, 0.95, 1000, 7, NULL), CO_EINVAL);
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, N, inc, N, 0.95, 1.5, 0.95, 5, 7, NULL), CO_EINVAL);
    assert_int_equal(co_trigger_quantile_ratio(&r, cand, N, inc, N, 0.95, 1.5, 1.0, 1000, 7, NULL), CO_EINVAL);
}

static void test_trigger_mean(void **state)
{
    (void)state;
    co_trigger_result r;
    double x[4] = {1, 2, 3, 4};
    assert_int_equal(co_trigger_mean(&r, x, 4, 10.0, 0.95), 0);
    NEAR(r.est, 2.5, 1e-15);
    double se = sqrt(5.0 / 3.0 / 4.0);
    NEAR(r.lo, 2.5 - 1.6448536269514727 * se, 1e-12);
    NEAR(r.hi, 2.5 + 1.6448536269514727 * se, 1e-12);
    assert_int_equal(r.verdict, CO_TRIGGER_OK);
    assert_int_equal(co_trigger_mean(&r, x, 4, 2.4, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    /* identical costs: a zero-width interval, decided by the mean */
    double c[3] = {0.002, 0.002, 0.002};
    assert_int_equal(co_trigger_mean(&r, c, 3, 0.0015, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_BREACH);
    assert_true(r.confidence == 1.0);
    assert_int_equal(co_trigger_mean(&r, x, 1, 1.0, 0.95), CO_EINVAL);
    double bad[2] = {1, NAN};
    assert_int_equal(co_trigger_mean(&r, bad, 2, 1.0, 0.95), CO_EINVAL);
}

/* ------------------------------------------------------------ verdicts */

static void test_gate_judge(void **state)
{
    (void)state;
    /* max drop 2 points */
    assert_int_equal(co_gate_judge(-1.0, 3.0, 2.0), CO_GATE_PASS);
    assert_int_equal(co_gate_judge(-6.0, -2.5, 2.0), CO_GATE_FAIL);
    assert_int_equal(co_gate_judge(-3.0, 1.0, 2.0), CO_GATE_INCONCLUSIVE);
    assert_int_equal(co_gate_judge(-2.0, 1.0, 2.0), CO_GATE_INCONCLUSIVE); /* lo = −D is not > −D */
    assert_int_equal(co_gate_judge(-0.01, 0.03, 0.02), CO_GATE_PASS);      /* fractions too */
    assert_int_equal(co_gate_judge(NAN, 1.0, 2.0), CO_GATE_INCONCLUSIVE);
    assert_int_equal(co_gate_judge(-1.0, NAN, 2.0), CO_GATE_INCONCLUSIVE);
    assert_int_equal(co_gate_judge(-1.0, 1.0, NAN), CO_GATE_INCONCLUSIVE);
    assert_int_equal(co_gate_judge(1.0, -1.0, 2.0), CO_GATE_INCONCLUSIVE);
    assert_string_equal(co_gate_verdict_name(CO_GATE_PASS), "pass");
    assert_string_equal(co_gate_verdict_name(CO_GATE_FAIL), "fail");
    assert_string_equal(co_gate_verdict_name(CO_GATE_INCONCLUSIVE), "inconclusive");
    assert_int_equal(co_trigger_judge(0.06, 0.1, 0.05), CO_TRIGGER_BREACH);
    assert_int_equal(co_trigger_judge(0.0, 0.04, 0.05), CO_TRIGGER_OK);
    assert_int_equal(co_trigger_judge(0.0, 0.06, 0.05), CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(co_trigger_judge(NAN, 0.06, 0.05), CO_TRIGGER_INCONCLUSIVE);
    assert_string_equal(co_trigger_verdict_name(CO_TRIGGER_OK), "ok");
    assert_string_equal(co_trigger_verdict_name(CO_TRIGGER_INCONCLUSIVE), "inconclusive");
    /* the paired interval drives the gate: a tiny sample is inconclusive */
    co_paired_counts small = {.both = 8, .inc_only = 1, .cand_only = 0, .neither = 1};
    co_paired_result pr;
    assert_int_equal(co_paired_compare(&pr, &small, 0.95), 0);
    assert_int_equal(co_gate_judge(pr.diff.lo, pr.diff.hi, 0.02), CO_GATE_INCONCLUSIVE);
    co_paired_counts bad = {.both = 500, .inc_only = 120, .cand_only = 10, .neither = 370};
    assert_int_equal(co_paired_compare(&pr, &bad, 0.95), 0);
    assert_int_equal(co_gate_judge(pr.diff.lo, pr.diff.hi, 0.02), CO_GATE_FAIL);
    co_paired_counts good = {.both = 900, .inc_only = 5, .cand_only = 8, .neither = 87};
    assert_int_equal(co_paired_compare(&pr, &good, 0.95), 0);
    assert_int_equal(co_gate_judge(pr.diff.lo, pr.diff.hi, 0.02), CO_GATE_PASS);
}

/* ------------------------------------------------------------ sample size */

static void test_gate_more_cases(void **state)
{
    (void)state;
    /* the documented formula, by hand: b = 3, c = 3, n = 50, D = 0.02 */
    co_paired_counts t = {.both = 40, .inc_only = 3, .cand_only = 3, .neither = 4};
    uint64_t extra;
    assert_int_equal(co_gate_more_cases(&extra, &t, 0.02, 0.95, 0.5), 0);
    double s2 = 7.0 / 51.0, z = 1.959963984540054;
    double N = ceil(z * z * s2 / (0.02 * 0.02));
    assert_int_equal(extra, (uint64_t)N - 50);
    /* "likely": more power asks for more cases */
    uint64_t e80, e95;
    assert_int_equal(co_gate_more_cases(&e80, &t, 0.02, 0.95, 0.8), 0);
    assert_int_equal(co_gate_more_cases(&e95, &t, 0.02, 0.95, 0.95), 0);
    assert_true(extra < e80 && e80 < e95);
    /* sensible: at n + extra (power 0.8) with the same proportions the
     * Newcombe interval does settle it; at a quarter of that it does not */
    double f = (double)(50 + e80) / 50.0;
    co_paired_counts big = {.both = (uint64_t)(40 * f), .inc_only = (uint64_t)(3 * f),
                            .cand_only = (uint64_t)(3 * f), .neither = (uint64_t)(4 * f)};
    co_paired_result pr;
    assert_int_equal(co_paired_compare(&pr, &big, 0.95), 0);
    assert_int_equal(co_gate_judge(pr.diff.lo, pr.diff.hi, 0.02), CO_GATE_PASS);
    double f4 = f / 4;
    co_paired_counts mid = {.both = (uint64_t)(40 * f4), .inc_only = (uint64_t)(3 * f4),
                            .cand_only = (uint64_t)(3 * f4), .neither = (uint64_t)(4 * f4)};
    assert_int_equal(co_paired_compare(&pr, &mid, 0.95), 0);
    assert_int_equal(co_gate_judge(pr.diff.lo, pr.diff.hi, 0.02), CO_GATE_INCONCLUSIVE);
    /* monotone: the closer the estimate to the threshold, the more cases */
    uint64_t prev = 0;
    for (uint64_t b = 3; b <= 7; b++) { /* d̂ = (3 − b)/300 → −0.0133 */
        co_paired_counts u = {.both = 250, .inc_only = b, .cand_only = 3, .neither = 47 - b};
        assert_int_equal(co_gate_more_cases(&extra, &u, 0.02, 0.95, 0.8), 0);
        assert_true(extra >= prev);
        prev = extra;
    }
    /* monotone in n at fixed rates: more data already in hand, fewer to add */
    uint64_t e_small, e_large;
    co_paired_counts s1 = {.both = 80, .inc_only = 6, .cand_only = 4, .neither = 10};
    co_paired_counts s2c = {.both = 320, .inc_only = 24, .cand_only = 16, .neither = 40};
    assert_int_equal(co_gate_more_cases(&e_small, &s1, 0.05, 0.95, 0.8), 0);
    assert_int_equal(co_gate_more_cases(&e_large, &s2c, 0.05, 0.95, 0.8), 0);
    assert_true(e_large < e_small);
    /* no discordance yet: still a finite, positive answer */
    co_paired_counts nd = {.both = 10};
    assert_int_equal(co_gate_more_cases(&extra, &nd, 0.02, 0.95, 0.8), 0);
    assert_true(extra > 0 && extra != CO_STATS_NEVER);
    /* exactly on the threshold: never */
    co_paired_counts on = {.both = 40, .inc_only = 2, .cand_only = 1, .neither = 7}; /* d̂ = −0.02 */
    assert_int_equal(co_gate_more_cases(&extra, &on, 0.02, 0.95, 0.8), 0);
    assert_true(extra == CO_STATS_NEVER);
    /* a huge sample already: nothing more */
    co_paired_counts huge = {.both = 900000, .inc_only = 5000, .cand_only = 5000, .neither = 90000};
    assert_int_equal(co_gate_more_cases(&extra, &huge, 0.02, 0.95, 0.8), 0);
    assert_int_equal(extra, 0);
    /* invalid */
    co_paired_counts zero = {0};
    assert_int_equal(co_gate_more_cases(&extra, &zero, 0.02, 0.95, 0.8), CO_EINVAL);
    assert_int_equal(co_gate_more_cases(&extra, &t, 0.02, 0.95, 0.3), CO_EINVAL);
    assert_int_equal(co_gate_more_cases(&extra, &t, NAN, 0.95, 0.8), CO_EINVAL);
}

static void test_trigger_more_samples(void **state)
{
    (void)state;
    co_trigger_result r;
    uint64_t ec, ei;
    /* 6% vs 2% errors over 100 each, threshold 5 points: inconclusive */
    assert_int_equal(co_trigger_rate_diff(&r, 6, 100, 2, 100, 0.05, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 100, 100, 0.8), 0);
    assert_true(ec > 0 && ec == ei);
    /* at that size, with the same rates, the trigger settles (ok) */
    double f = (double)(100 + ec) / 100.0;
    co_trigger_result s;
    assert_int_equal(co_trigger_rate_diff(&s, (uint64_t)llround(6 * f), 100 + ec,
                                          (uint64_t)llround(2 * f), 100 + ei, 0.05, 0.95), 0);
    assert_int_equal(s.verdict, CO_TRIGGER_OK);
    /* power: more power, more requests */
    uint64_t ec2, ei2;
    assert_int_equal(co_trigger_more_samples(&ec2, &ei2, &r, 100, 100, 0.5), 0);
    assert_true(ec2 < ec);
    /* the canary split is kept: the incumbent arm needs proportionally more */
    assert_int_equal(co_trigger_rate_diff(&r, 3, 50, 100, 5000, 0.05, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 50, 5000, 0.8), 0);
    assert_true(ec > 0 && ei > 99 * ec && ei < 101 * ec);
    /* ratio triggers on the log scale */
    assert_int_equal(co_trigger_rate_ratio(&r, 30, 100, 20, 100, 1.2, 0.95), 0);
    assert_int_equal(r.verdict, CO_TRIGGER_INCONCLUSIVE);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 100, 100, 0.8), 0);
    f = (double)(100 + ec) / 100.0;
    assert_int_equal(co_trigger_rate_ratio(&s, (uint64_t)llround(30 * f), 100 + ec,
                                           (uint64_t)llround(20 * f), 100 + ei, 1.2, 0.95), 0);
    assert_int_equal(s.verdict, CO_TRIGGER_BREACH);
    /* conclusive already: zero */
    assert_int_equal(co_trigger_rate_diff(&r, 200, 1000, 50, 1000, 0.05, 0.95), 0);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 1000, 1000, 0.8), 0);
    assert_true(ec == 0 && ei == 0);
    /* estimate on the threshold: never */
    assert_int_equal(co_trigger_rate_diff(&r, 15, 100, 10, 100, 0.05, 0.95), 0);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 100, 100, 0.8), 0);
    assert_true(ec == CO_STATS_NEVER && ei == CO_STATS_NEVER);
    /* the one-arm mean trigger */
    double x[4] = {1, 2, 3, 4};
    assert_int_equal(co_trigger_mean(&r, x, 4, 3.0, 0.95), 0);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 4, 0, 0.8), 0);
    assert_true(ec > 0 && ei == 0);
    /* invalid */
    assert_int_equal(co_trigger_rate_diff(&r, 6, 100, 2, 100, 0.05, 0.95), 0);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 0, 100, 0.8), CO_EINVAL);
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 100, 100, 1.0), CO_EINVAL);
    r.level = 0.5;
    assert_int_equal(co_trigger_more_samples(&ec, &ei, &r, 100, 100, 0.8), CO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_quantile),
        cmocka_unit_test(test_norm_cdf),
        cmocka_unit_test(test_binom_logpmf),
        cmocka_unit_test(test_wilson_textbook),
        cmocka_unit_test(test_wilson_score_equation),
        cmocka_unit_test(test_wilson_invalid),
        cmocka_unit_test(test_agresti_caffo),
        cmocka_unit_test(test_mcnemar_known),
        cmocka_unit_test(test_mcnemar_vs_pascal),
        cmocka_unit_test(test_mcnemar_large),
        cmocka_unit_test(test_paired_newcombe),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_bootstrap_determinism),
        cmocka_unit_test(test_bootstrap_clear_case),
        cmocka_unit_test(test_bootstrap_coverage),
        cmocka_unit_test(test_bootstrap_degenerate),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_ks_hand),
        cmocka_unit_test(test_ks_random),
        cmocka_unit_test(test_ks_invalid),
        cmocka_unit_test(test_two_prop_ztest),
        cmocka_unit_test(test_trigger_rate_diff),
        cmocka_unit_test(test_trigger_rate_ratio),
        cmocka_unit_test(test_trigger_quantile_ratio),
        cmocka_unit_test(test_trigger_mean),
        cmocka_unit_test(test_gate_judge),
        cmocka_unit_test(test_gate_more_cases),
        cmocka_unit_test(test_trigger_more_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
