/* Statistics behind eval gates (issue 4) and rollout triggers (issue 5).
 *
 * Self-contained: no global state, no printing, reentrant. Every function that
 * can fail returns 0 or a negative CO_* status with co_error_last() set;
 * outputs are written only on success. Inputs that would make a result
 * undefined (n = 0, k > n, NaN data, a level outside its range) are CO_EINVAL
 * rather than a NaN in the output. Bootstrap results are reproducible: the
 * same inputs and seed give bit-identical results on every run (checked
 * across gcc/clang and -O0..-O3 on x86-64); the RNG stream is the same on
 * every host, though another libm or fused multiply-adds (arm64) may move
 * the last bits of a bound.
 *
 * Units: proportions and differences of proportions are fractions (0.02 is
 * "2 points"); levels and confidences are fractions (0.95).
 *
 * Naming: "candidate" is the new model, "incumbent" the old one; differences
 * are always candidate − incumbent, ratios candidate / incumbent.
 *
 * Two kinds of level:
 *   - `level` (intervals, gates): two-sided coverage of an interval; 0.95 uses
 *     z = 1.959964.
 *   - `confidence` (triggers): one-sided. A trigger is a pair of one-sided
 *     tests at that confidence: breach when the lower `confidence` bound is
 *     above the threshold, ok when the upper bound is below it. The two bounds
 *     together form a two-sided interval of level 2*confidence − 1 (0.95 →
 *     z = 1.644854, the 90% interval). A true value exactly at the threshold
 *     gives a false breach (or a false ok) at most 1 − confidence of the time.
 */
#ifndef CUTOVER_STATS_H
#define CUTOVER_STATS_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- results */

/* A point estimate with its interval; lo <= est <= hi except, rarely, for a
 * percentile bootstrap, where est is the observed statistic. */
typedef struct co_interval {
    double est, lo, hi;
} co_interval;

/* Eval gate verdicts ("pass_rate_drop_max"). */
typedef enum co_gate_verdict {
    CO_GATE_INCONCLUSIVE = 0,
    CO_GATE_PASS,
    CO_GATE_FAIL
} co_gate_verdict;

/* Rollout trigger verdicts. */
typedef enum co_trigger_verdict {
    CO_TRIGGER_INCONCLUSIVE = 0,
    CO_TRIGGER_OK,
    CO_TRIGGER_BREACH
} co_trigger_verdict;

/* "pass" / "fail" / "inconclusive"; static strings. */
const char *co_gate_verdict_name(co_gate_verdict v);
/* "ok" / "breach" / "inconclusive"; static strings. */
const char *co_trigger_verdict_name(co_trigger_verdict v);

/* The statistic a trigger judged (decides the scale of co_trigger_more_samples). */
typedef enum co_trigger_kind {
    CO_TRIGGER_RATE_DIFF = 0, /* p_c − p_i, fractions          (linear scale) */
    CO_TRIGGER_RATE_RATIO,    /* p_c / p_i                      (log scale)    */
    CO_TRIGGER_QUANTILE_RATIO,/* q_c / q_i, e.g. p95 latencies  (log scale)    */
    CO_TRIGGER_MEAN           /* mean of one sample vs a limit  (linear scale) */
} co_trigger_kind;

typedef struct co_trigger_result {
    co_trigger_kind kind;
    co_trigger_verdict verdict;
    double est;        /* observed statistic */
    double lo, hi;     /* one-sided bounds at `level` */
    double threshold;  /* what the statistic was judged against */
    double level;      /* the one-sided confidence asked for */
    /* How sure the data are of the side they lean to: the largest one-sided
     * level at which the bound on that side still clears the threshold.
     * 0.5 is a coin toss; the verdict is conclusive exactly when this exceeds
     * `level` (up to rounding). In [0, 1]. */
    double confidence;
} co_trigger_result;

/* Sample-size helpers answer CO_STATS_NEVER when the observed effect sits
 * exactly on the threshold (no finite sample is expected to settle it) or
 * when the projection exceeds 1e15. */
#define CO_STATS_NEVER UINT64_MAX

/* Bootstrap resamples: the default, and the accepted range. */
#define CO_BOOTSTRAP_B_DEFAULT 2000u
#define CO_BOOTSTRAP_B_MIN 100u
#define CO_BOOTSTRAP_B_MAX 10000000u

/* ---------------------------------------------------------- distributions */

/* Standard normal CDF Φ(x), via erfc (full relative precision in the lower
 * tail: Φ(−10) = 7.6198530e-24). NaN in → NaN out. */
double co_norm_cdf(double x);
/* Upper tail 1 − Φ(x), accurate for large x (no cancellation). */
double co_norm_sf(double x);
/* Inverse of Φ: Wichura's AS 241 (PPND16), relative error ~1e-16.
 * p = 0 → −INFINITY, p = 1 → +INFINITY, p outside [0,1] or NaN → NaN. */
double co_norm_quantile(double p);

/* log P(X = k) for X ~ Binomial(n, p), by Loader's saddle-point expansion
 * (Stirling-error terms plus a deviance term; lgamma only for n <= 15):
 * full precision for n up to 2^53, no overflow. k > n → −INFINITY;
 * p outside [0,1] or NaN → NaN. */
double co_binom_logpmf(uint64_t k, uint64_t n, double p);

/* ------------------------------------------------------------ proportions */

/* Wilson score interval for k successes in n trials (est = k/n), clamped to
 * [0,1]; lo is exactly 0 when k = 0, hi exactly 1 when k = n.
 * CO_EINVAL: n = 0, k > n, level not in (0,1). */
int co_wilson(co_interval *out, uint64_t k, uint64_t n, double level);

/* Agresti–Caffo interval for p1 − p2 of two independent proportions: add one
 * success and one failure to each sample, then the Wald interval
 * (p̃1 − p̃2) ± z·sqrt(p̃1(1−p̃1)/(n1+2) + p̃2(1−p̃2)/(n2+2)), clamped to
 * [−1,1]. est is the raw k1/n1 − k2/n2. CO_EINVAL: n1 or n2 = 0, k > n,
 * level not in (0,1). */
int co_agresti_caffo(co_interval *out, uint64_t k1, uint64_t n1,
                     uint64_t k2, uint64_t n2, double level);

/* Two-proportion z-test of H0: p1 − p2 = delta, statistic
 * z = (p̂1 − p̂2 − delta) / SE(delta) with SE from the restricted maximum
 * likelihood estimates under H0 (Farrington–Manning score test, closed-form
 * cubic). For delta = 0 this is exactly the classical pooled z-test.
 * p_greater: one-sided p for H1: p1 − p2 > delta (H0: p1 − p2 <= delta);
 * p_less: for H1: p1 − p2 < delta; p_two_sided = min(1, 2·min(both)).
 * When SE is 0 (every outcome identical and delta = 0) z is 0 and the
 * p-values are 1 (or z = ±INFINITY when the difference is not delta).
 * CO_EINVAL: n1 or n2 = 0, k > n, delta not in (−1,1). */
typedef struct co_ztest {
    double z, p_greater, p_less, p_two_sided;
} co_ztest;
int co_two_prop_ztest(co_ztest *out, uint64_t k1, uint64_t n1,
                      uint64_t k2, uint64_t n2, double delta);

/* ----------------------------------------------------- paired (same cases) */

/* McNemar's exact test on the discordant pairs b and c: two-sided exact
 * binomial p = min(1, 2·P(X <= min(b,c))), X ~ Binomial(b+c, 1/2);
 * out_midp (optional, may be NULL) gets the mid-p version
 * min(1, 2·(P(X <= min) − P(X = min)/2)). The tail is summed from its largest
 * term downwards in linear space, scaled by that term's log-pmf, so b + c up
 * to 2^53 neither overflows nor loses precision (tiny p underflow to 0).
 * b = c (including 0, 0) gives exactly 1 for both. CO_EINVAL: b + c > 2^53. */
int co_mcnemar_exact(double *out_p, double *out_midp, uint64_t b, uint64_t c);

/* The paired 2×2 table of one workload's cases run on both arms. */
typedef struct co_paired_counts {
    uint64_t both;      /* passed on both arms */
    uint64_t inc_only;  /* passed on the incumbent only: regressions */
    uint64_t cand_only; /* passed on the candidate only: improvements */
    uint64_t neither;   /* failed on both */
} co_paired_counts;

typedef struct co_paired_result {
    uint64_t n;                   /* pairs */
    double cand_rate, inc_rate;   /* marginal pass rates */
    /* candidate − incumbent pass rate: est = (cand_only − inc_only)/n, and
     * Newcombe's square-and-add (hybrid score) interval for paired
     * proportions (Newcombe 1998, method 10): Wilson intervals of the two
     * marginal rates combined with the correlation estimate φ, where φ uses
     * the continuity-adjusted A = both·neither − inc_only·cand_only
     * (A − n/2 when A > n/2, 0 when 0 <= A <= n/2, A when A < 0; φ = 0 when a
     * margin is empty), as in Altman et al., "Statistics with Confidence".
     * Clamped to [−1,1]. This is the interval the gate should use. */
    co_interval diff;
    double p_exact;  /* co_mcnemar_exact(inc_only, cand_only) */
    double p_midp;
} co_paired_result;

/* CO_EINVAL: n = 0 (or overflowing), level not in (0,1). */
int co_paired_compare(co_paired_result *out, const co_paired_counts *t, double level);

/* -------------------------------------------------------------- bootstrap */

/* Deterministic RNG: xoshiro256**, its state filled by splitmix64 from
 * co_hash64(seed) (so nearby seeds give unrelated streams). Not for secrets. */
typedef struct co_rng {
    uint64_t s[4];
} co_rng;
void co_rng_seed(co_rng *r, uint64_t seed);
uint64_t co_rng_next(co_rng *r);
/* Uniform in [0, bound), unbiased (Lemire's multiply-and-reject); bound 0 → 0. */
uint64_t co_rng_below(co_rng *r, uint64_t bound);
/* Uniform double in [0, 1) with 53 random bits. */
double co_rng_unit(co_rng *r);

/* Paired bootstrap of mean(cand[i] − inc[i]) over the n cases (0/1 pass
 * flags or scores): B resamples of n case indices with replacement, the
 * percentile interval at two-sided `level` (linear-interpolated quantiles
 * (1−level)/2 and (1+level)/2 of the B replicate means). est is the observed
 * mean difference. When no case differs the interval is [0,0]: prefer
 * co_paired_compare for the gate at small n.
 * scratch: B doubles, or NULL to allocate (once) and free inside.
 * CO_EINVAL: n = 0, a NaN or infinite score, B outside
 * [CO_BOOTSTRAP_B_MIN, CO_BOOTSTRAP_B_MAX], level not in (0,1).
 * CO_ENOMEM when scratch is NULL and allocation fails. */
int co_bootstrap_paired_diff(co_interval *out, const double *cand, const double *inc,
                             size_t n, unsigned B, double level, uint64_t seed,
                             double *scratch);

/* --------------------------------------------------------------- quantiles */

typedef enum co_quantile_method {
    /* The default: linear interpolation between order statistics,
     * Hyndman–Fan type 7 (R's and numpy's default): h = (n−1)q,
     * x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]). p95 of 1..10 is 9.55. */
    CO_QUANTILE_LINEAR = 0,
    /* Nearest rank: the ⌈q·n⌉-th smallest value (1-based; the first for
     * q = 0). p95 of 1..10 is 10. */
    CO_QUANTILE_NEAREST_RANK
} co_quantile_method;

/* Sorts ascending in place (NaNs, if any, go last). */
void co_sort_doubles(double *x, size_t n);
/* Quantile q in [0,1] of an ascending array (p95 is q = 0.95).
 * CO_EINVAL: n = 0, q outside [0,1], a NaN, or the array not ascending. */
int co_quantile_sorted(double *out, const double *sorted, size_t n, double q,
                       co_quantile_method method);
/* Same for unsorted data, which is left untouched: it is copied into scratch
 * (n doubles, or NULL to allocate and free inside) and sorted there. */
int co_quantile(double *out, const double *x, size_t n, double q,
                co_quantile_method method, double *scratch);

/* ------------------------------------------------------------------ drift */

typedef struct co_ks_result {
    double d;    /* sup |F_x − F_y| over the pooled values (ties handled) */
    double p;    /* asymptotic p-value Q_KS((en + 0.12 + 0.11/en)·D) */
    double en;   /* sqrt(nx·ny/(nx+ny)) */
} co_ks_result;

/* Two-sample Kolmogorov–Smirnov test (e.g. output lengths per arm). The
 * p-value is the Kolmogorov distribution's tail Q_KS(λ) at
 * λ = (en + 0.12 + 0.11/en)·D (Stephens' small-sample correction, as in
 * Numerical Recipes); Q_KS uses the alternating series
 * 2·Σ(−1)^(j−1)·exp(−2j²λ²) for λ >= 1.18 and the Jacobi-theta form
 * 1 − sqrt(2π)/λ·Σexp(−(2j−1)²π²/(8λ²)) below, so it is accurate at every λ.
 * scratch: nx + ny doubles (sorted copies), or NULL to allocate and free.
 * CO_EINVAL: an empty sample or a NaN. */
int co_ks_2samp(co_ks_result *out, const double *x, size_t nx,
                const double *y, size_t ny, double *scratch);

/* --------------------------------------------------------------- triggers */

/* "Candidate error rate more than delta_max above the incumbent's":
 * k_c of n_c candidate requests vs k_i of n_i incumbent ones. est = p̂_c − p̂_i;
 * [lo, hi] are the one-sided `confidence` bounds of the Farrington–Manning
 * score interval (the set of δ that co_two_prop_ztest does not reject),
 * found by bisection; the verdict and `confidence` come from the test at
 * δ = delta_max directly (confidence = Φ(|z|)): breach when
 * Φ(z) > confidence (⇔ lo > delta_max), ok when Φ(−z) > confidence
 * (⇔ hi < delta_max). Unlike Wald, zero observed errors in a small sample
 * stay inconclusive. CO_EINVAL: n_c or n_i = 0 (check the trigger's
 * minimum sample first), k > n, delta_max not in (−1,1), confidence not in
 * [0.5,1). */
int co_trigger_rate_diff(co_trigger_result *out, uint64_t k_c, uint64_t n_c,
                         uint64_t k_i, uint64_t n_i, double delta_max,
                         double confidence);

/* "Negative feedback rate more than 20% higher (relative)": ratio_max = 1.2.
 * est = p̂_c / p̂_i with the Katz log interval
 * exp(log est ± z·sqrt(1/k_c − 1/n_c + 1/k_i − 1/n_i)); when k_c or k_i is 0,
 * 0.5 is added to every cell (k + 0.5 of n + 1, both arms) for est and SE
 * alike, so the result stays finite. confidence = Φ(|log est − log
 * ratio_max| / SE). CO_EINVAL: n = 0, k > n, ratio_max <= 0, confidence not in
 * [0.5,1). */
int co_trigger_rate_ratio(co_trigger_result *out, uint64_t k_c, uint64_t n_c,
                          uint64_t k_i, uint64_t n_i, double ratio_max,
                          double confidence);

/* "Latency p95 more than 1.5× the incumbent's": q = 0.95, ratio_max = 1.5.
 * Independent samples (values finite and >= 0, e.g. milliseconds).
 * est = Q_q(cand)/Q_q(inc) (linear quantiles); B bootstrap replicates resample
 * each arm separately. A replicate needs only the one or two order
 * statistics the quantile uses, so they are drawn directly with their exact
 * resampling distribution (the r-th smallest of n uniform indices is
 * ⌊n·Beta(r, n−r+1)⌋, the next one the minimum of those left above): O(1)
 * per replicate after one O(n log n) sort per arm, so windows of millions of
 * requests cost about the sort. [lo, hi] are the (1 − confidence) and
 * confidence percentiles (linear) of the replicate ratios, the verdict is
 * co_trigger_judge(lo, hi, ratio_max), and `confidence` is read off the same
 * replicate distribution. A zero denominator gives +INFINITY (or 1
 * when the numerator is 0 too), never NaN.
 * scratch: co_quantile_ratio_scratch_size(n_c, n_i, B) bytes aligned as
 * malloc aligns, or NULL to allocate once and free inside.
 * CO_EINVAL: an empty sample, a negative/NaN/infinite value, q outside [0,1],
 * ratio_max <= 0, B out of range, confidence not in [0.5,1).
 * CO_ENOMEM: allocation failed. */
int co_trigger_quantile_ratio(co_trigger_result *out,
                              const double *cand, size_t n_c,
                              const double *inc, size_t n_i,
                              double q, double ratio_max, double confidence,
                              unsigned B, uint64_t seed, void *scratch);
/* Bytes of scratch co_trigger_quantile_ratio needs; 0 when it would overflow. */
size_t co_quantile_ratio_scratch_size(size_t n_c, size_t n_i, unsigned B);

/* "Cost per request more than 10% over the forecast": limit = 1.1·forecast.
 * est = mean(x), bounds mean ∓ z·s/sqrt(n) (normal approximation, s the
 * sample standard deviation; s = 0 gives a zero-width interval).
 * CO_EINVAL: n < 2, a NaN or infinite value, confidence not in [0.5,1). */
int co_trigger_mean(co_trigger_result *out, const double *x, size_t n,
                    double limit, double confidence);

/* ---------------------------------------------------------------- verdicts */

/* Gate on an interval of (candidate − incumbent) and a maximum drop, all in
 * the same units (fractions or points): pass when lo > −max_drop, fail when
 * hi < −max_drop, inconclusive otherwise, and whenever an input is NaN or
 * lo > hi. */
co_gate_verdict co_gate_judge(double lo, double hi, double max_drop);

/* Trigger on an interval of a statistic: breach when lo > threshold, ok when
 * hi < threshold, inconclusive otherwise (and on NaN or lo > hi). */
co_trigger_verdict co_trigger_judge(double lo, double hi, double threshold);

/* ------------------------------------------------------------ sample size */

/* Extra paired cases likely to make the gate conclusive, assuming the
 * observed rates persist. With b = inc_only, c = cand_only, n pairs:
 *   d̂  = (c − b)/n                        observed difference
 *   s²  = (b'+c')/n' − ((c'−b')/n')²       per-pair variance of the
 *         difference, b' = b + ½, c' = c + ½, n' = n + 1 (so a table without
 *         discordant pairs still has s² > 0)
 *   N   = ⌈(z_(1−(1−level)/2) + z_power)² · s² / (d̂ + max_drop)²⌉
 *   out = max(0, N − n)
 * i.e. the n at which the normal-approximation interval of the difference
 * clears −max_drop with probability `power` (0.5: half the time; 0.8 is a
 * sensible "likely"). max_drop is a fraction (0.02 for 2 points); `level` is
 * the gate interval's two-sided level. d̂ = −max_drop → CO_STATS_NEVER.
 * CO_EINVAL: n = 0, level not in (0,1), power not in [0.5,1), NaN max_drop. */
int co_gate_more_cases(uint64_t *out_extra, const co_paired_counts *t,
                       double max_drop, double level, double power);

/* Extra requests per arm likely to make an inconclusive trigger conclusive,
 * assuming traffic keeps its current split and the estimate persists. On
 * the trigger's scale g (identity for RATE_DIFF and MEAN, log for the
 * ratios), with w the current half-width on the threshold's side
 * (g(est) − g(lo) or g(hi) − g(est)) and gap = |g(est) − g(threshold)|:
 *   f = ((z_level + z_power) / z_level)² · (w / gap)²
 * since a half-width shrinks as 1/sqrt(n); each arm needs ⌈n·f⌉ − n more
 * (0 when f <= 1 or the verdict is already conclusive). gap = 0 or an
 * unbounded side (a zero bound on a log scale) → CO_STATS_NEVER.
 * For CO_TRIGGER_MEAN pass the sample size as n_cand and 0 as n_inc.
 * CO_EINVAL: n_cand = 0 (or n_inc = 0 for two-arm kinds), r->level not in
 * (0.5,1), power not in [0.5,1). */
int co_trigger_more_samples(uint64_t *out_extra_cand, uint64_t *out_extra_inc,
                            const co_trigger_result *r, uint64_t n_cand,
                            uint64_t n_inc, double power);

#endif
