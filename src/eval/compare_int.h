/* The eval analysis as the comparison (compare.c, drift.c) builds it and the
 * report renderers (report*.c) read it. Internal to libcutover: the public
 * face is the opaque co_eval_analysis of include/cutover/compare.h.
 *
 * Everything here is owned by the analysis and released by
 * co_eval_analysis_free. Units: rates are fractions, differences of rates
 * are fractions too (renderers print points), latencies ms, costs USD. */
#ifndef CO_EVAL_COMPARE_INT_H
#define CO_EVAL_COMPARE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/compare.h"
#include "cutover/stats.h"

enum { CO__INC = 0, CO__CAND = 1 };

/* How the two arms were obtained. */
typedef enum co__mode {
    CO__MODE_ARMS = 0,   /* both arms of one run */
    CO__MODE_BASELINE,   /* a candidate-only run against saved baselines */
    CO__MODE_RUNS,       /* run A's incumbent (or only) arm vs run B's candidate (or only) arm */
    CO__MODE_SINGLE      /* one arm only (a baseline run): nothing compared */
} co__mode;

/* One stored result, copied out of the store. */
typedef struct co__result {
    char *case_id, *workload;
    int arm;                 /* CO__INC / CO__CAND (after relabelling in RUNS mode) */
    int repeat;
    int passed;
    int critical;
    int cached;
    double score, latency_ms, cost_usd;
    int64_t tokens_in, tokens_out;
    int64_t run_id;
    char *output;            /* NULL when none was stored */
    char *error;             /* NULL when the call succeeded */
    char **reasons;          /* the failed assertions' reasons */
    size_t n_reasons;
} co__result;

/* One arm's pass count in a group. */
typedef struct co__rate {
    uint64_t n, passed;
    co_interval wilson;      /* valid when n > 0 */
} co__rate;

/* A pass-rate comparison over a set of results (all of a workload's cases,
 * its critical cases, or everything) and its gate. */
typedef struct co__group {
    co__rate rate[2];
    uint64_t pairs, cases;   /* paired (case, repeat) results; distinct paired cases */
    co_paired_counts t;
    co_paired_result paired; /* valid when pairs > 0 */
    int has_boot;
    co_interval boot;        /* paired bootstrap over cases (repeats averaged) */
    /* gate */
    int gated;
    double max_drop;         /* points, from the config */
    int zero_tolerance;      /* max_drop == 0: pass iff no pair regressed */
    co_interval gate_ci;     /* the interval judged (fractions) */
    co_gate_verdict verdict;
    uint64_t extra_cases;    /* when inconclusive; CO_STATS_NEVER when none would settle it */
    const char *note;        /* static: why the verdict is what it is, or NULL */
} co__group;

/* One arm's operational numbers in a workload (or overall). Cost and
 * latency are over successful calls. */
typedef struct co__arm_metrics {
    int present;
    char *model;             /* NULL when the config does not say */
    int64_t run_id;          /* the run the arm's results came from (0 overall) */
    uint64_t n, ok, errors, cached;
    co_interval error_rate;  /* Wilson; valid when n > 0 */
    double cost_total, cost_per_request;
    int has_monthly;
    double monthly_cost;
    size_t n_latency;
    double lat[3];           /* p50, p95, p99 (NAN when no latency) */
    double tokens_out_mean;
} co__arm_metrics;

/* The cost and latency gates (judged on ratios, not on pass rates). */
typedef struct co__ratio_gate {
    int gated;
    double max;              /* cost: percent increase; latency: p95 ratio */
    int computed;            /* enough data for an interval */
    double est, lo, hi;      /* cost: percent increase; latency: p95 ratio */
    co_gate_verdict verdict;
    uint64_t extra_cases;    /* when inconclusive */
    const char *note;
} co__ratio_gate;

/* Format drift: output features per arm, and whether they moved. */
enum {
    CO__DRIFT_HEADERS = 0,
    CO__DRIFT_BULLETS,
    CO__DRIFT_FENCES,
    CO__DRIFT_JSON,
    CO__DRIFT_REFUSALS,
    CO__DRIFT_TRAILING_PUNCT,
    CO__DRIFT_NRATES
};

typedef struct co__rate_drift {
    uint64_t k[2], n[2];
    double p;                /* two-proportion z-test, two-sided */
    int flagged;
} co__rate_drift;

typedef struct co__drift {
    int computed;            /* both arms have outputs */
    uint64_t n[2];           /* outputs per arm (successful calls) */
    double len_mean[2], len_p50[2], len_p95[2]; /* in characters */
    co_ks_result ks;
    int len_flagged;
    co__rate_drift rates[CO__DRIFT_NRATES];
    int any_flagged;
} co__drift;

/* A listed regression (or improvement): indexes into a->results. */
typedef struct co__pair_ref {
    size_t inc, cand;
} co__pair_ref;

typedef struct co__workload {
    char *name;              /* NULL for the overall block */
    size_t first, count;     /* its results in a->results (sorted) */
    int compared;            /* both arms present */
    co__group all, critical;
    int has_critical;
    co__arm_metrics arm[2];
    double cost_ratio;       /* candidate / incumbent cost per request; NAN when undefined */
    double lat_ratio[3];     /* p50, p95, p99 */
    int has_volume;
    int64_t monthly_requests;
    co__ratio_gate cost, latency;
    co__drift drift;
    size_t n_regressions, n_improvements;           /* totals */
    co__pair_ref *regressions, *improvements;       /* the listed ones */
    size_t listed_regressions, listed_improvements;
    co_gate_verdict verdict;                        /* all gates combined */
    uint64_t extra_cases;
    int64_t baseline_run;    /* BASELINE mode: the run the baseline came from */
} co__workload;

typedef struct co__run_info {
    int64_t id, started_ms, finished_ms;
    char *suite, *status;
    char *summary_json;      /* the runner's tally, or NULL */
    const char *role;        /* static: "both arms", "incumbent", "candidate", "baseline" */
} co__run_info;

struct co_eval_analysis {
    co__mode mode;
    double level;
    unsigned bootstrap;
    uint64_t seed;
    int inconclusive_as;
    size_t max_listed;
    int64_t run_a, run_b;
    co__run_info *runs;      /* run A, then run B or the baseline runs */
    size_t n_runs;
    int repeat;              /* largest repeat count seen */
    int has_arm[2];
    co__result *results;     /* sorted by (workload, case, repeat, arm) */
    size_t n_results;
    co__workload *w;         /* sorted by name */
    size_t n_w;
    co__workload overall;
    int compared;            /* some workload had both arms */
    co_gate_verdict verdict;
    uint64_t extra_cases;
};

/* Drift (drift.c). Bits of co__drift_features' *flags, one per CO__DRIFT_* rate. */
unsigned co__drift_features(const char *text, uint64_t *out_chars);
/* Fills d from the successful results among res[0..n) (arm decides the side). */
int co__drift_compute(co__drift *d, const co__result *res, size_t n, double level);
/* "markdown headers", ...; static. */
const char *co__drift_rate_name(int i);
/* "markdown_headers", ...; the JSON keys. */
const char *co__drift_rate_key(int i);

/* Shared by the renderers. */
const char *co__arm_name(int arm); /* "incumbent" / "candidate" */
const char *co__mode_name(co__mode m);
/* "2025-11-23T12:13:20Z" from ms since the epoch ("" for <= 0). */
void co__fmt_time(char *buf, size_t n, int64_t ms);
/* Fixed-format numbers (no "-0", NAN as "n/a"). */
void co__fmt_pct(char *buf, size_t n, double frac);         /* "92.0%" */
void co__fmt_pts(char *buf, size_t n, double frac);         /* "+1.5" (points) */
void co__fmt_p(char *buf, size_t n, double p);              /* "0.125", "<0.001" */
void co__fmt_usd(char *buf, size_t n, double usd);          /* "$0.001234", "$1,234.56" */
void co__fmt_ms(char *buf, size_t n, double ms);            /* "1234 ms" */
void co__fmt_ratio(char *buf, size_t n, double r);          /* "1.25x" */
/* "87 more cases", "no finite number of cases", "" when 0. */
void co__fmt_extra(char *buf, size_t n, uint64_t extra);

#endif
