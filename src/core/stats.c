/* Statistics for eval gates and rollout triggers: normal and binomial
 * distributions, Wilson / Agresti–Caffo / Newcombe intervals, exact McNemar,
 * Farrington–Manning score test, Katz log ratio, bootstraps (paired mean
 * difference, independent quantile ratio), two-sample KS, quantiles, and the
 * verdict and sample-size helpers. See include/cutover/stats.h. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cutover/error.h"
#include "cutover/stats.h"
#include "cutover/util.h"

#define CO__TWO53 9007199254740992.0 /* 2^53: counts above this lose precision */
#define CO__LN_SQRT_2PI 0.918938533204672741780329736406
#define CO__LN_2PI 1.837877066409345483560659472811
#define CO__SQRT_2PI 2.506628274631000502415765284811
#define CO__NEVER_LIMIT 1e15

/* ------------------------------------------------------------ names */

const char *co_gate_verdict_name(co_gate_verdict v)
{
    switch (v) {
    case CO_GATE_PASS: return "pass";
    case CO_GATE_FAIL: return "fail";
    case CO_GATE_INCONCLUSIVE: return "inconclusive";
    }
    return "inconclusive";
}

const char *co_trigger_verdict_name(co_trigger_verdict v)
{
    switch (v) {
    case CO_TRIGGER_OK: return "ok";
    case CO_TRIGGER_BREACH: return "breach";
    case CO_TRIGGER_INCONCLUSIVE: return "inconclusive";
    }
    return "inconclusive";
}

/* ------------------------------------------------------------ validation */

static int co__check_level(double level, const char *what)
{
    if (!(level > 0.0 && level < 1.0))
        return co_error_set(CO_EINVAL, "%s must be in (0, 1), got %g", what, level);
    return 0;
}

static int co__check_confidence(double c)
{
    if (!(c >= 0.5 && c < 1.0))
        return co_error_set(CO_EINVAL, "confidence must be in [0.5, 1), got %g", c);
    return 0;
}

static int co__check_count(uint64_t k, uint64_t n, const char *what)
{
    if (n == 0)
        return co_error_set(CO_EINVAL, "%s: no observations (n = 0)", what);
    if (k > n)
        return co_error_set(CO_EINVAL, "%s: %llu successes out of %llu", what,
                            (unsigned long long)k, (unsigned long long)n);
    if ((double)n > CO__TWO53)
        return co_error_set(CO_EINVAL, "%s: n = %llu is too large", what,
                            (unsigned long long)n);
    return 0;
}

static int co__check_finite(const double *x, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return co_error_set(CO_EINVAL, "%s[%zu] is not a finite number", what, i);
    return 0;
}

/* z for a two-sided interval of coverage `level`. */
static double co__z_two_sided(double level)
{
    return co_norm_quantile(0.5 + 0.5 * level);
}

static double co__clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* ------------------------------------------------------------ normal */

double co_norm_cdf(double x)
{
    return 0.5 * erfc(-x * M_SQRT1_2);
}

double co_norm_sf(double x)
{
    return 0.5 * erfc(x * M_SQRT1_2);
}

/* Wichura, Algorithm AS 241, Appl. Statist. 37 (1988) 477-484: PPND16. */
double co_norm_quantile(double p)
{
    if (isnan(p) || p < 0.0 || p > 1.0)
        return NAN;
    if (p == 0.0)
        return -INFINITY;
    if (p == 1.0)
        return INFINITY;
    double q = p - 0.5, r, val;
    if (fabs(q) <= 0.425) {
        r = 0.180625 - q * q;
        return q *
               (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r +
                     6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r +
                   1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
                 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) /
               (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r +
                     3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r +
                   5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
                 4.2313330701600911252e+1) * r + 1.0);
    }
    r = q < 0.0 ? p : 1.0 - p; /* for q > 0, 1 - p is exact (Sterbenz) */
    r = sqrt(-log(r));
    if (r <= 5.0) {
        r -= 1.6;
        val = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r +
                    2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r +
                  3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r +
                4.63033784615654529590e+0) * r + 1.42343711074968357734e+0) /
              (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r +
                    1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r +
                  6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r +
                2.05319162663775882187e+0) * r + 1.0);
    } else {
        r -= 5.0;
        val = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
                    1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r +
                  2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r +
                5.46378491116411436990e+0) * r + 6.65790464350110377720e+0) /
              (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r +
                    1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r +
                  1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
                5.99832206555887937690e-1) * r + 1.0);
    }
    return q < 0.0 ? -val : val;
}

/* ------------------------------------------------------------ binomial */

/* Stirling's error log(n!) − log(sqrt(2πn)·(n/e)^n), n >= 1 (Loader 2000). */
static double co__stirlerr(double n)
{
    const double S0 = 1.0 / 12, S1 = 1.0 / 360, S2 = 1.0 / 1260, S3 = 1.0 / 1680,
                 S4 = 1.0 / 1188;
    if (n <= 15.0)
        return lgamma(n + 1.0) - (n + 0.5) * log(n) + n - CO__LN_SQRT_2PI;
    double nn = n * n;
    if (n > 500)
        return (S0 - S1 / nn) / n;
    if (n > 80)
        return (S0 - (S1 - S2 / nn) / nn) / n;
    if (n > 35)
        return (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n;
    return (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n;
}

/* Deviance term x·log(x/np) + np − x, without cancellation when x ≈ np. */
static double co__bd0(double x, double np)
{
    if (fabs(x - np) < 0.1 * (x + np)) {
        double v = (x - np) / (x + np);
        double s = (x - np) * v;
        double ej = 2 * x * v;
        v *= v;
        for (int j = 1; j < 1000; j++) {
            ej *= v;
            double s1 = s + ej / (2 * j + 1);
            if (s1 == s)
                return s1;
            s = s1;
        }
        return s;
    }
    return x * log(x / np) + np - x;
}

double co_binom_logpmf(uint64_t k, uint64_t n, double p)
{
    if (isnan(p) || p < 0.0 || p > 1.0)
        return NAN;
    if (k > n)
        return -INFINITY;
    if (p == 0.0)
        return k == 0 ? 0.0 : -INFINITY;
    if (p == 1.0)
        return k == n ? 0.0 : -INFINITY;
    double q = 1.0 - p, dn = (double)n, dk = (double)k;
    if (k == 0)
        return dn * log1p(-p);
    if (k == n)
        return dn * log(p);
    double dnk = dn - dk;
    double lc = co__stirlerr(dn) - co__stirlerr(dk) - co__stirlerr(dnk) -
                co__bd0(dk, dn * p) - co__bd0(dnk, dn * q);
    double lf = CO__LN_2PI + log(dk) + log1p(-dk / dn);
    return lc - 0.5 * lf;
}

/* P(X <= m) for X ~ Binomial(n, 1/2) with m <= n/2, and P(X = m). The terms
 * below m shrink (ratio j/(n−j+1) < 1), so they are summed relative to the
 * m-th and the sum stops once a term no longer changes it. */
static double co__binom_half_lower(uint64_t m, uint64_t n, double *out_pm)
{
    double lt = co_binom_logpmf(m, n, 0.5);
    double t = 1.0, s = 1.0;
    for (uint64_t j = m; j > 0; j--) {
        t *= (double)j / (double)(n - j + 1);
        s += t;
        if (t < s * 1e-17)
            break;
    }
    *out_pm = exp(lt);
    return exp(lt + log(s));
}

/* ------------------------------------------------------------ proportions */

/* Wilson bounds without validation; z > 0, n > 0. */
static void co__wilson(double *lo, double *hi, double k, double n, double z)
{
    double p = k / n, z2 = z * z;
    double denom = 1.0 + z2 / n;
    double center = (p + z2 / (2 * n)) / denom;
    double half = z / denom * sqrt(p * (1 - p) / n + z2 / (4 * n * n));
    *lo = k == 0 ? 0.0 : co__clamp(center - half, 0.0, 1.0);
    *hi = k == n ? 1.0 : co__clamp(center + half, 0.0, 1.0);
}

int co_wilson(co_interval *out, uint64_t k, uint64_t n, double level)
{
    int rc;
    if ((rc = co__check_count(k, n, "wilson")) || (rc = co__check_level(level, "level")))
        return rc;
    co_interval r;
    r.est = (double)k / (double)n;
    co__wilson(&r.lo, &r.hi, (double)k, (double)n, co__z_two_sided(level));
    *out = r;
    return 0;
}

int co_agresti_caffo(co_interval *out, uint64_t k1, uint64_t n1,
                     uint64_t k2, uint64_t n2, double level)
{
    int rc;
    if ((rc = co__check_count(k1, n1, "agresti-caffo sample 1")) ||
        (rc = co__check_count(k2, n2, "agresti-caffo sample 2")) ||
        (rc = co__check_level(level, "level")))
        return rc;
    double z = co__z_two_sided(level);
    double a1 = ((double)k1 + 1) / ((double)n1 + 2), a2 = ((double)k2 + 1) / ((double)n2 + 2);
    double se = sqrt(a1 * (1 - a1) / ((double)n1 + 2) + a2 * (1 - a2) / ((double)n2 + 2));
    double d = a1 - a2;
    co_interval r;
    r.est = (double)k1 / (double)n1 - (double)k2 / (double)n2;
    r.lo = co__clamp(d - z * se, -1.0, 1.0);
    r.hi = co__clamp(d + z * se, -1.0, 1.0);
    *out = r;
    return 0;
}

/* Farrington–Manning score statistic for H0: p1 − p2 = delta. The
 * restricted MLE solves a cubic (closed form, Farrington & Manning 1990). */
static double co__fm_z(double x1, double n1, double x2, double n2, double delta)
{
    double p1 = x1 / n1, p2 = x2 / n2;
    double num = p1 - p2 - delta;
    double r1, r2;
    if (delta == 0.0) {
        r1 = r2 = (x1 + x2) / (n1 + n2);
    } else {
        double th = n2 / n1;
        double a = 1 + th;
        double b = -(1 + th + p1 + th * p2 + delta * (th + 2));
        double c = delta * delta + delta * (2 * p1 + th + 1) + p1 + th * p2;
        double d = -p1 * delta * (1 + delta);
        double v = b * b * b / (27 * a * a * a) - b * c / (6 * a * a) + d / (2 * a);
        double u2 = b * b / (9 * a * a) - c / (3 * a);
        double u = (v < 0 ? -1.0 : 1.0) * sqrt(u2 > 0 ? u2 : 0.0);
        double u3 = u * u * u;
        double cw = u3 != 0.0 ? co__clamp(v / u3, -1.0, 1.0) : 0.0;
        double w = (M_PI + acos(cw)) / 3.0;
        r1 = co__clamp(2 * u * cos(w) - b / (3 * a), 0.0, 1.0);
        r2 = co__clamp(r1 - delta, 0.0, 1.0);
    }
    double var = r1 * (1 - r1) / n1 + r2 * (1 - r2) / n2;
    if (!(var > 0.0)) {
        if (num == 0.0)
            return 0.0;
        return num > 0 ? INFINITY : -INFINITY;
    }
    return num / sqrt(var);
}

int co_two_prop_ztest(co_ztest *out, uint64_t k1, uint64_t n1,
                      uint64_t k2, uint64_t n2, double delta)
{
    int rc;
    if ((rc = co__check_count(k1, n1, "two-proportion test sample 1")) ||
        (rc = co__check_count(k2, n2, "two-proportion test sample 2")))
        return rc;
    if (!(delta > -1.0 && delta < 1.0))
        return co_error_set(CO_EINVAL, "delta must be in (-1, 1), got %g", delta);
    co_ztest r;
    r.z = co__fm_z((double)k1, (double)n1, (double)k2, (double)n2, delta);
    r.p_greater = co_norm_sf(r.z);
    r.p_less = co_norm_cdf(r.z);
    r.p_two_sided = fmin(1.0, 2.0 * fmin(r.p_greater, r.p_less));
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ paired */

int co_mcnemar_exact(double *out_p, double *out_midp, uint64_t b, uint64_t c)
{
    if (b > (uint64_t)CO__TWO53 || c > (uint64_t)CO__TWO53 - b)
        return co_error_set(CO_EINVAL, "mcnemar: b + c is too large");
    double p, midp;
    if (b == c) {
        p = midp = 1.0;
    } else {
        uint64_t n = b + c, m = b < c ? b : c;
        double pm;
        double tail = co__binom_half_lower(m, n, &pm);
        p = fmin(1.0, 2.0 * tail);
        midp = fmin(1.0, 2.0 * (tail - 0.5 * pm));
        if (midp < 0)
            midp = 0;
    }
    *out_p = p;
    if (out_midp)
        *out_midp = midp;
    return 0;
}

int co_paired_compare(co_paired_result *out, const co_paired_counts *t, double level)
{
    int rc;
    if ((rc = co__check_level(level, "level")))
        return rc;
    uint64_t n = t->both;
    const uint64_t parts[3] = {t->inc_only, t->cand_only, t->neither};
    for (int i = 0; i < 3; i++) {
        if (parts[i] > UINT64_MAX - n)
            return co_error_set(CO_EINVAL, "paired counts overflow");
        n += parts[i];
    }
    if (n == 0)
        return co_error_set(CO_EINVAL, "paired comparison: no cases (n = 0)");
    if ((double)n > CO__TWO53)
        return co_error_set(CO_EINVAL, "paired comparison: n is too large");

    /* arm 1 = candidate, arm 2 = incumbent; rows = candidate pass/fail,
     * columns = incumbent pass/fail */
    double n11 = (double)t->both, n12 = (double)t->cand_only;
    double n21 = (double)t->inc_only, n22 = (double)t->neither, N = (double)n;
    double r1 = n11 + n12, r2 = n21 + n22, c1 = n11 + n21, c2 = n12 + n22;
    double p1 = r1 / N, p2 = c1 / N, est = (n12 - n21) / N;
    double z = co__z_two_sided(level);
    double l1, u1, l2, u2;
    co__wilson(&l1, &u1, r1, N, z);
    co__wilson(&l2, &u2, c1, N, z);
    double phi = 0.0;
    if (r1 > 0 && r2 > 0 && c1 > 0 && c2 > 0) {
        double A = n11 * n22 - n12 * n21;
        double den = sqrt(r1) * sqrt(r2) * sqrt(c1) * sqrt(c2);
        if (A > N / 2)
            phi = (A - N / 2) / den;
        else if (A < 0)
            phi = A / den;
    }
    double dl1 = p1 - l1, du1 = u1 - p1, dl2 = p2 - l2, du2 = u2 - p2;
    double sl = dl1 * dl1 + du2 * du2 - 2 * phi * dl1 * du2;
    double su = dl2 * dl2 + du1 * du1 - 2 * phi * dl2 * du1;
    co_paired_result r;
    r.n = n;
    r.cand_rate = p1;
    r.inc_rate = p2;
    r.diff.est = est;
    r.diff.lo = co__clamp(est - sqrt(sl > 0 ? sl : 0.0), -1.0, 1.0);
    r.diff.hi = co__clamp(est + sqrt(su > 0 ? su : 0.0), -1.0, 1.0);
    if ((rc = co_mcnemar_exact(&r.p_exact, &r.p_midp, t->inc_only, t->cand_only)))
        return rc;
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ rng */

static uint64_t co__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void co_rng_seed(co_rng *r, uint64_t seed)
{
    unsigned char le[8]; /* little-endian bytes: the same stream on every host */
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(seed >> (8 * i));
    uint64_t x = co_hash64(le, sizeof le, 0x636f2d7374617473ull /* "co-stats" */);
    for (int i = 0; i < 4; i++)
        r->s[i] = co__splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1; /* the all-zero state is a fixed point */
}

static uint64_t co__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t co_rng_next(co_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = co__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = co__rotl(s[3], 45);
    return result;
}

uint64_t co_rng_below(co_rng *r, uint64_t bound)
{
    if (bound == 0)
        return 0;
    unsigned __int128 m = (unsigned __int128)co_rng_next(r) * bound;
    uint64_t l = (uint64_t)m;
    if (l < bound) {
        uint64_t thresh = (0 - bound) % bound;
        while (l < thresh) {
            m = (unsigned __int128)co_rng_next(r) * bound;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double co_rng_unit(co_rng *r)
{
    return (double)(co_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------ quantiles */

static int co__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : 1;
    if (isnan(y))
        return -1;
    return (x > y) - (x < y);
}

void co_sort_doubles(double *x, size_t n)
{
    if (n > 1)
        qsort(x, n, sizeof *x, co__cmp_double);
}

/* a + h·(b − a) for a <= b, without inf − inf. */
static double co__lerp(double a, double b, double h)
{
    if (a == b || h <= 0.0)
        return a;
    if (isinf(b))
        return b;
    return a + h * (b - a);
}

/* Position of quantile q: the 0-based order statistic index j and the weight
 * of the next one (type 7), or the nearest rank with weight 0. */
static void co__quantile_pos(size_t n, double q, co_quantile_method m, size_t *j, double *frac)
{
    if (m == CO_QUANTILE_NEAREST_RANK) {
        double r = ceil(q * (double)n - 1e-9); /* 0.95·20 may round up past 19 */
        *j = r < 1 ? 0 : (size_t)r - 1;
        if (*j >= n)
            *j = n - 1;
        *frac = 0.0;
        return;
    }
    double h = q * (double)(n - 1);
    double fl = floor(h);
    *j = (size_t)fl;
    *frac = h - fl;
    if (*j >= n - 1) {
        *j = n - 1;
        *frac = 0.0;
    }
}

static double co__quantile_sorted(const double *x, size_t n, double q, co_quantile_method m)
{
    size_t j;
    double frac;
    co__quantile_pos(n, q, m, &j, &frac);
    return frac > 0.0 ? co__lerp(x[j], x[j + 1], frac) : x[j];
}

static int co__check_quantile_args(size_t n, double q, co_quantile_method m)
{
    if (n == 0)
        return co_error_set(CO_EINVAL, "quantile of an empty sample");
    if (!(q >= 0.0 && q <= 1.0))
        return co_error_set(CO_EINVAL, "quantile must be in [0, 1], got %g", q);
    if (m != CO_QUANTILE_LINEAR && m != CO_QUANTILE_NEAREST_RANK)
        return co_error_set(CO_EINVAL, "unknown quantile method %d", (int)m);
    return 0;
}

int co_quantile_sorted(double *out, const double *sorted, size_t n, double q,
                       co_quantile_method method)
{
    int rc;
    if ((rc = co__check_quantile_args(n, q, method)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (isnan(sorted[i]))
            return co_error_set(CO_EINVAL, "quantile: value %zu is NaN", i);
        if (i > 0 && sorted[i] < sorted[i - 1])
            return co_error_set(CO_EINVAL, "quantile: values not ascending at %zu", i);
    }
    *out = co__quantile_sorted(sorted, n, q, method);
    return 0;
}

int co_quantile(double *out, const double *x, size_t n, double q,
                co_quantile_method method, double *scratch)
{
    int rc;
    if ((rc = co__check_quantile_args(n, q, method)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return co_error_set(CO_EINVAL, "quantile: value %zu is NaN", i);
    double *buf = scratch, *owned = NULL;
    if (!buf) {
        if (n > SIZE_MAX / sizeof *buf)
            return co_error_set(CO_EINVAL, "quantile: sample too large");
        buf = owned = malloc(n * sizeof *buf);
        if (!buf)
            return co_error_set(CO_ENOMEM, "quantile: out of memory for %zu values", n);
    }
    memcpy(buf, x, n * sizeof *buf);
    co_sort_doubles(buf, n);
    *out = co__quantile_sorted(buf, n, q, method);
    free(owned);
    return 0;
}

/* ------------------------------------------------------------ bootstrap */

static int co__check_B(unsigned B)
{
    if (B < CO_BOOTSTRAP_B_MIN || B > CO_BOOTSTRAP_B_MAX)
        return co_error_set(CO_EINVAL, "bootstrap resamples must be in [%u, %u], got %u",
                            CO_BOOTSTRAP_B_MIN, CO_BOOTSTRAP_B_MAX, B);
    return 0;
}

int co_bootstrap_paired_diff(co_interval *out, const double *cand, const double *inc,
                             size_t n, unsigned B, double level, uint64_t seed,
                             double *scratch)
{
    int rc;
    if (n == 0)
        return co_error_set(CO_EINVAL, "paired bootstrap: no cases (n = 0)");
    if ((rc = co__check_B(B)) || (rc = co__check_level(level, "level")) ||
        (rc = co__check_finite(cand, n, "candidate score")) ||
        (rc = co__check_finite(inc, n, "incumbent score")))
        return rc;
    double *rep = scratch, *owned = NULL;
    if (!rep) {
        rep = owned = malloc((size_t)B * sizeof *rep);
        if (!rep)
            return co_error_set(CO_ENOMEM, "paired bootstrap: out of memory");
    }
    double sum = 0.0;
    bool all_equal = true;
    for (size_t i = 0; i < n; i++) {
        double d = cand[i] - inc[i];
        sum += d;
        if (d != cand[0] - inc[0])
            all_equal = false;
    }
    co_interval r;
    r.est = sum / (double)n;
    if (all_equal) { /* every resample has the same mean: skip the work */
        r.lo = r.hi = r.est;
    } else {
        co_rng rng;
        co_rng_seed(&rng, seed);
        for (unsigned b = 0; b < B; b++) {
            double s = 0.0;
            for (size_t i = 0; i < n; i++) {
                size_t k = (size_t)co_rng_below(&rng, n);
                s += cand[k] - inc[k];
            }
            rep[b] = s / (double)n;
        }
        co_sort_doubles(rep, B);
        r.lo = co__quantile_sorted(rep, B, 0.5 - 0.5 * level, CO_QUANTILE_LINEAR);
        r.hi = co__quantile_sorted(rep, B, 0.5 + 0.5 * level, CO_QUANTILE_LINEAR);
    }
    free(owned);
    *out = r;
    return 0;
}

/* Confidences that the statistic lies above / below t, read off the sorted
 * replicate distribution so that they agree with the percentile bounds:
 * Q(1 − c) > t ⇔ c < above, Q(c) < t ⇔ c < below, with Q the type-7
 * quantile function of the replicates. */
static void co__replicate_conf(const double *r, size_t B, double t, double *above, double *below)
{
    /* j = #{r <= t}, i = #{r < t} (binary searches on the sorted array) */
    size_t lo = 0, hi = B;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid] <= t) lo = mid + 1; else hi = mid;
    }
    size_t j = lo;
    lo = 0;
    hi = B;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid] < t) lo = mid + 1; else hi = mid;
    }
    size_t i = lo;
    double span = (double)(B - 1);
    double qsup; /* sup { q : Q(q) <= t } */
    if (j == 0)
        qsup = 0.0;
    else if (j == B)
        qsup = 1.0;
    else
        qsup = ((double)(j - 1) + (isinf(r[j]) ? 0.0 : (t - r[j - 1]) / (r[j] - r[j - 1]))) / span;
    double qinf; /* inf { q : Q(q) >= t } */
    if (i == 0)
        qinf = 0.0;
    else if (i == B)
        qinf = 1.0;
    else
        qinf = ((double)(i - 1) + (isinf(r[i]) ? 0.0 : (t - r[i - 1]) / (r[i] - r[i - 1]))) / span;
    *above = co__clamp(1.0 - qsup, 0.0, 1.0);
    *below = co__clamp(qinf, 0.0, 1.0);
}

static double co__ratio(double num, double den)
{
    if (den == 0.0)
        return num == 0.0 ? 1.0 : INFINITY;
    return num / den;
}

size_t co_quantile_ratio_scratch_size(size_t n_c, size_t n_i, unsigned B)
{
    if (n_c > SIZE_MAX / 32 || n_i > SIZE_MAX / 32)
        return 0;
    return (n_c + n_i + (size_t)B) * sizeof(double);
}

/* Uniform in the open interval (0, 1). */
static double co__rng_open01(co_rng *r)
{
    return ((double)(co_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Gamma(a, 1) for a >= 1: Marsaglia & Tsang (2000), normal deviates by
 * inversion so the stream stays a pure function of the seed. */
static double co__gamma(co_rng *r, double a)
{
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double z = co_norm_quantile(co__rng_open01(r));
        double v = 1.0 + c * z;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = co__rng_open01(r);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v))
            return d * v;
    }
}

static size_t co__unit_index(double u, size_t n)
{
    double f = floor(u * (double)n);
    return f >= (double)n ? n - 1 : (size_t)f;
}

/* One bootstrap replicate's type-7 quantile of a sorted sample, in O(1):
 * the resample's (j+1)-th smallest index is ⌊n·U⌋ with U the (j+1)-th order
 * statistic of n uniforms, U ~ Beta(j+1, n−j) (drawn as a ratio of gammas);
 * given U = u, the next order statistic is u + (1−u)·(1 − W^(1/(n−j−1))),
 * the minimum of the n−j−1 uniforms left above u. Same distribution as
 * drawing n indices and sorting them, without the O(n) per replicate. */
static double co__boot_quantile(co_rng *rng, const double *sorted, size_t n, size_t j, double frac)
{
    double rank = (double)j + 1.0;
    double ga = co__gamma(rng, rank), gb = co__gamma(rng, (double)n - rank + 1.0);
    double u = ga / (ga + gb);
    double a = sorted[co__unit_index(u, n)];
    if (frac <= 0.0)
        return a;
    double above = (double)(n - j - 1); /* >= 1 since frac > 0 implies j + 1 < n */
    double u2 = u + (1.0 - u) * -expm1(log(co__rng_open01(rng)) / above);
    return co__lerp(a, sorted[co__unit_index(u2, n)], frac);
}

static int co__check_nonneg(const double *x, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || x[i] < 0.0)
            return co_error_set(CO_EINVAL, "%s[%zu] = %g: values must be finite and >= 0",
                                what, i, x[i]);
    return 0;
}

int co_trigger_quantile_ratio(co_trigger_result *out,
                              const double *cand, size_t n_c,
                              const double *inc, size_t n_i,
                              double q, double ratio_max, double confidence,
                              unsigned B, uint64_t seed, void *scratch)
{
    int rc;
    if (n_c == 0 || n_i == 0)
        return co_error_set(CO_EINVAL, "quantile ratio: an arm has no observations");
    if ((rc = co__check_quantile_args(n_c, q, CO_QUANTILE_LINEAR)) ||
        (rc = co__check_confidence(confidence)) || (rc = co__check_B(B)) ||
        (rc = co__check_nonneg(cand, n_c, "candidate")) ||
        (rc = co__check_nonneg(inc, n_i, "incumbent")))
        return rc;
    if (!(ratio_max > 0.0) || isinf(ratio_max))
        return co_error_set(CO_EINVAL, "ratio threshold must be > 0, got %g", ratio_max);
    size_t need = co_quantile_ratio_scratch_size(n_c, n_i, B);
    if (need == 0)
        return co_error_set(CO_EINVAL, "quantile ratio: samples too large");
    void *owned = NULL;
    if (!scratch) {
        scratch = owned = malloc(need);
        if (!scratch)
            return co_error_set(CO_ENOMEM, "quantile ratio: out of memory (%zu bytes)", need);
    }
    double *sc = scratch, *si = sc + n_c, *rep = si + n_i;
    memcpy(sc, cand, n_c * sizeof *sc);
    memcpy(si, inc, n_i * sizeof *si);
    co_sort_doubles(sc, n_c);
    co_sort_doubles(si, n_i);

    co_trigger_result r;
    r.kind = CO_TRIGGER_QUANTILE_RATIO;
    r.threshold = ratio_max;
    r.level = confidence;
    r.est = co__ratio(co__quantile_sorted(sc, n_c, q, CO_QUANTILE_LINEAR),
                      co__quantile_sorted(si, n_i, q, CO_QUANTILE_LINEAR));
    size_t jc, ji;
    double fc, fi;
    co__quantile_pos(n_c, q, CO_QUANTILE_LINEAR, &jc, &fc);
    co__quantile_pos(n_i, q, CO_QUANTILE_LINEAR, &ji, &fi);
    co_rng rng;
    co_rng_seed(&rng, seed);
    for (unsigned b = 0; b < B; b++) {
        double qc = co__boot_quantile(&rng, sc, n_c, jc, fc);
        double qi = co__boot_quantile(&rng, si, n_i, ji, fi);
        rep[b] = co__ratio(qc, qi);
    }
    co_sort_doubles(rep, B);
    r.lo = co__quantile_sorted(rep, B, 1.0 - confidence, CO_QUANTILE_LINEAR);
    r.hi = co__quantile_sorted(rep, B, confidence, CO_QUANTILE_LINEAR);
    double above, below;
    co__replicate_conf(rep, B, ratio_max, &above, &below);
    r.confidence = fmax(above, below);
    r.verdict = co_trigger_judge(r.lo, r.hi, ratio_max);
    free(owned);
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ KS */

/* Kolmogorov distribution tail Q_KS(λ) = P(K > λ). */
static double co__qks(double lambda)
{
    if (!(lambda > 0.0))
        return 1.0;
    if (lambda < 1.18) {
        double l2 = lambda * lambda, s = 0.0;
        for (int j = 1; j <= 20; j++) {
            double k = 2.0 * j - 1.0;
            double t = exp(-k * k * M_PI * M_PI / (8.0 * l2));
            s += t;
            if (t < 1e-17 * s)
                break;
        }
        return co__clamp(1.0 - CO__SQRT_2PI / lambda * s, 0.0, 1.0);
    }
    double s = 0.0, sign = 1.0;
    for (int j = 1; j <= 100; j++) {
        double t = exp(-2.0 * j * j * lambda * lambda);
        s += sign * t;
        sign = -sign;
        if (t < 1e-17 * fabs(s))
            break;
    }
    return co__clamp(2.0 * s, 0.0, 1.0);
}

int co_ks_2samp(co_ks_result *out, const double *x, size_t nx,
                const double *y, size_t ny, double *scratch)
{
    if (nx == 0 || ny == 0)
        return co_error_set(CO_EINVAL, "KS test: an empty sample");
    for (size_t i = 0; i < nx; i++)
        if (isnan(x[i]))
            return co_error_set(CO_EINVAL, "KS test: x[%zu] is NaN", i);
    for (size_t i = 0; i < ny; i++)
        if (isnan(y[i]))
            return co_error_set(CO_EINVAL, "KS test: y[%zu] is NaN", i);
    if (nx > SIZE_MAX / 16 || ny > SIZE_MAX / 16)
        return co_error_set(CO_EINVAL, "KS test: samples too large");
    double *buf = scratch, *owned = NULL;
    if (!buf) {
        buf = owned = malloc((nx + ny) * sizeof *buf);
        if (!buf)
            return co_error_set(CO_ENOMEM, "KS test: out of memory");
    }
    double *sx = buf, *sy = buf + nx;
    memcpy(sx, x, nx * sizeof *sx);
    memcpy(sy, y, ny * sizeof *sy);
    co_sort_doubles(sx, nx);
    co_sort_doubles(sy, ny);
    size_t i = 0, j = 0;
    double d = 0.0, fnx = (double)nx, fny = (double)ny;
    while (i < nx && j < ny) {
        double v = sx[i] < sy[j] ? sx[i] : sy[j];
        while (i < nx && sx[i] <= v)
            i++;
        while (j < ny && sy[j] <= v)
            j++;
        double diff = fabs((double)i / fnx - (double)j / fny);
        if (diff > d)
            d = diff;
    }
    free(owned);
    co_ks_result r;
    r.d = d;
    r.en = sqrt(fnx * fny / (fnx + fny));
    r.p = co__qks((r.en + 0.12 + 0.11 / r.en) * d);
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ triggers */

co_gate_verdict co_gate_judge(double lo, double hi, double max_drop)
{
    if (isnan(lo) || isnan(hi) || isnan(max_drop) || lo > hi)
        return CO_GATE_INCONCLUSIVE;
    if (lo > -max_drop)
        return CO_GATE_PASS;
    if (hi < -max_drop)
        return CO_GATE_FAIL;
    return CO_GATE_INCONCLUSIVE;
}

co_trigger_verdict co_trigger_judge(double lo, double hi, double threshold)
{
    if (isnan(lo) || isnan(hi) || isnan(threshold) || lo > hi)
        return CO_TRIGGER_INCONCLUSIVE;
    if (lo > threshold)
        return CO_TRIGGER_BREACH;
    if (hi < threshold)
        return CO_TRIGGER_OK;
    return CO_TRIGGER_INCONCLUSIVE;
}

/* The δ in [a, b] where the (decreasing) score statistic equals target,
 * by bisection; z(a) >= target >= z(b) is the caller's business. */
static double co__fm_solve(double x1, double n1, double x2, double n2, double target,
                           double a, double b)
{
    for (int it = 0; it < 200 && b - a > 1e-14; it++) {
        double mid = 0.5 * (a + b);
        if (co__fm_z(x1, n1, x2, n2, mid) > target)
            a = mid;
        else
            b = mid;
    }
    return 0.5 * (a + b);
}

int co_trigger_rate_diff(co_trigger_result *out, uint64_t k_c, uint64_t n_c,
                         uint64_t k_i, uint64_t n_i, double delta_max,
                         double confidence)
{
    int rc;
    if ((rc = co__check_count(k_c, n_c, "candidate rate")) ||
        (rc = co__check_count(k_i, n_i, "incumbent rate")) ||
        (rc = co__check_confidence(confidence)))
        return rc;
    if (!(delta_max > -1.0 && delta_max < 1.0))
        return co_error_set(CO_EINVAL, "rate difference threshold must be in (-1, 1), got %g",
                            delta_max);
    double x1 = (double)k_c, n1 = (double)n_c, x2 = (double)k_i, n2 = (double)n_i;
    double zc = co_norm_quantile(confidence);
    co_trigger_result r;
    r.kind = CO_TRIGGER_RATE_DIFF;
    r.threshold = delta_max;
    r.level = confidence;
    r.est = x1 / n1 - x2 / n2;
    const double edge = 1.0 - 1e-12;
    /* lower bound: z(lo) = zc on [−1, est]; upper: z(hi) = −zc on [est, 1] */
    if (co__fm_z(x1, n1, x2, n2, -edge) <= zc)
        r.lo = -1.0;
    else
        r.lo = co__fm_solve(x1, n1, x2, n2, zc, -edge, r.est);
    if (co__fm_z(x1, n1, x2, n2, edge) >= -zc)
        r.hi = 1.0;
    else
        r.hi = co__fm_solve(x1, n1, x2, n2, -zc, r.est, edge);
    if (r.lo > r.est) r.lo = r.est;
    if (r.hi < r.est) r.hi = r.est;
    double z = co__fm_z(x1, n1, x2, n2, delta_max);
    double above = co_norm_cdf(z), below = co_norm_sf(z);
    if (above > confidence)
        r.verdict = CO_TRIGGER_BREACH;
    else if (below > confidence)
        r.verdict = CO_TRIGGER_OK;
    else
        r.verdict = CO_TRIGGER_INCONCLUSIVE;
    r.confidence = fmax(above, below);
    *out = r;
    return 0;
}

int co_trigger_rate_ratio(co_trigger_result *out, uint64_t k_c, uint64_t n_c,
                          uint64_t k_i, uint64_t n_i, double ratio_max,
                          double confidence)
{
    int rc;
    if ((rc = co__check_count(k_c, n_c, "candidate rate")) ||
        (rc = co__check_count(k_i, n_i, "incumbent rate")) ||
        (rc = co__check_confidence(confidence)))
        return rc;
    if (!(ratio_max > 0.0) || isinf(ratio_max))
        return co_error_set(CO_EINVAL, "ratio threshold must be > 0, got %g", ratio_max);
    double x1 = (double)k_c, n1 = (double)n_c, x2 = (double)k_i, n2 = (double)n_i;
    if (k_c == 0 || k_i == 0) { /* Haldane–Anscombe: ½ to every cell */
        x1 += 0.5;
        x2 += 0.5;
        n1 += 1.0;
        n2 += 1.0;
    }
    double lrr = log(x1 / n1) - log(x2 / n2);
    double se = sqrt(1.0 / x1 - 1.0 / n1 + 1.0 / x2 - 1.0 / n2);
    double zc = co_norm_quantile(confidence);
    co_trigger_result r;
    r.kind = CO_TRIGGER_RATE_RATIO;
    r.threshold = ratio_max;
    r.level = confidence;
    r.est = exp(lrr);
    r.lo = exp(lrr - zc * se);
    r.hi = exp(lrr + zc * se);
    double gap = lrr - log(ratio_max);
    double above, below;
    if (se > 0.0) {
        above = co_norm_cdf(gap / se);
        below = co_norm_sf(gap / se);
    } else { /* k = n in both arms: the ratio is known exactly */
        above = gap > 0 ? 1.0 : gap < 0 ? 0.0 : 0.5;
        below = gap < 0 ? 1.0 : gap > 0 ? 0.0 : 0.5;
    }
    r.confidence = fmax(above, below);
    r.verdict = co_trigger_judge(r.lo, r.hi, ratio_max);
    *out = r;
    return 0;
}

int co_trigger_mean(co_trigger_result *out, const double *x, size_t n,
                    double limit, double confidence)
{
    int rc;
    if (n < 2)
        return co_error_set(CO_EINVAL, "mean trigger needs at least 2 values, got %zu", n);
    if ((rc = co__check_confidence(confidence)) || (rc = co__check_finite(x, n, "value")))
        return rc;
    if (isnan(limit))
        return co_error_set(CO_EINVAL, "mean trigger: limit is NaN");
    double mean = 0.0, m2 = 0.0; /* Welford */
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        mean += d / (double)(i + 1);
        m2 += d * (x[i] - mean);
    }
    double se = sqrt((m2 > 0 ? m2 : 0.0) / (double)(n - 1) / (double)n);
    double zc = co_norm_quantile(confidence);
    co_trigger_result r;
    r.kind = CO_TRIGGER_MEAN;
    r.threshold = limit;
    r.level = confidence;
    r.est = mean;
    r.lo = mean - zc * se;
    r.hi = mean + zc * se;
    double gap = mean - limit, above, below;
    if (se > 0.0) {
        above = co_norm_cdf(gap / se);
        below = co_norm_sf(gap / se);
    } else {
        above = gap > 0 ? 1.0 : gap < 0 ? 0.0 : 0.5;
        below = gap < 0 ? 1.0 : gap > 0 ? 0.0 : 0.5;
    }
    r.confidence = fmax(above, below);
    r.verdict = co_trigger_judge(r.lo, r.hi, limit);
    *out = r;
    return 0;
}

/* ------------------------------------------------------------ sample size */

static int co__check_power(double power)
{
    if (!(power >= 0.5 && power < 1.0))
        return co_error_set(CO_EINVAL, "power must be in [0.5, 1), got %g", power);
    return 0;
}

/* max(0, ⌈need⌉ − have), or CO_STATS_NEVER beyond the limit. */
static uint64_t co__extra(double need, uint64_t have)
{
    if (!(need <= CO__NEVER_LIMIT))
        return CO_STATS_NEVER;
    double c = ceil(need - 1e-9);
    if (c <= (double)have)
        return 0;
    return (uint64_t)c - have;
}

int co_gate_more_cases(uint64_t *out_extra, const co_paired_counts *t,
                       double max_drop, double level, double power)
{
    int rc;
    if ((rc = co__check_level(level, "level")) || (rc = co__check_power(power)))
        return rc;
    if (isnan(max_drop))
        return co_error_set(CO_EINVAL, "max drop is NaN");
    uint64_t n = t->both;
    const uint64_t parts[3] = {t->inc_only, t->cand_only, t->neither};
    for (int i = 0; i < 3; i++) {
        if (parts[i] > UINT64_MAX - n)
            return co_error_set(CO_EINVAL, "paired counts overflow");
        n += parts[i];
    }
    if (n == 0)
        return co_error_set(CO_EINVAL, "sample size: no cases yet (n = 0)");
    double N = (double)n, b = (double)t->inc_only, c = (double)t->cand_only;
    double d = (c - b) / N;
    double gap = d + max_drop;
    if (gap == 0.0) {
        *out_extra = CO_STATS_NEVER;
        return 0;
    }
    double bp = b + 0.5, cp = c + 0.5, np = N + 1.0;
    double s2 = (bp + cp) / np - ((cp - bp) / np) * ((cp - bp) / np);
    double z = co__z_two_sided(level) + co_norm_quantile(power);
    *out_extra = co__extra(z * z * s2 / (gap * gap), n);
    return 0;
}

int co_trigger_more_samples(uint64_t *out_extra_cand, uint64_t *out_extra_inc,
                            const co_trigger_result *r, uint64_t n_cand,
                            uint64_t n_inc, double power)
{
    int rc;
    if ((rc = co__check_power(power)))
        return rc;
    if (!(r->level > 0.5 && r->level < 1.0))
        return co_error_set(CO_EINVAL, "sample size: the trigger's level must be in (0.5, 1)");
    bool one_arm = r->kind == CO_TRIGGER_MEAN;
    if (n_cand == 0 || (!one_arm && n_inc == 0))
        return co_error_set(CO_EINVAL, "sample size: an arm has no observations yet");
    if (r->verdict != CO_TRIGGER_INCONCLUSIVE) {
        *out_extra_cand = 0;
        *out_extra_inc = 0;
        return 0;
    }
    bool logscale = r->kind == CO_TRIGGER_RATE_RATIO || r->kind == CO_TRIGGER_QUANTILE_RATIO;
    double e = r->est, t = r->threshold, lo = r->lo, hi = r->hi;
    if (isnan(e) || isnan(t) || isnan(lo) || isnan(hi))
        return co_error_set(CO_EINVAL, "sample size: the trigger result has a NaN");
    double w, gap;
    if (logscale) {
        if (!(e > 0.0) || !(t > 0.0) || isinf(e)) {
            *out_extra_cand = *out_extra_inc = CO_STATS_NEVER;
            return 0;
        }
        gap = log(e) - log(t);
        w = gap > 0 ? log(e) - log(lo) : log(hi) - log(e);
    } else {
        gap = e - t;
        w = gap > 0 ? e - lo : hi - e;
    }
    if (gap == 0.0 || !isfinite(w)) {
        *out_extra_cand = *out_extra_inc = CO_STATS_NEVER;
        return 0;
    }
    double zc = co_norm_quantile(r->level), zp = co_norm_quantile(power);
    double ratio = (zc + zp) / zc * w / fabs(gap);
    double f = ratio * ratio;
    *out_extra_cand = co__extra((double)n_cand * f, n_cand);
    *out_extra_inc = one_arm ? 0 : co__extra((double)n_inc * f, n_inc);
    return 0;
}
