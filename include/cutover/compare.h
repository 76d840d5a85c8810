/* Eval comparison: turns stored eval runs into a decision — per workload, for
 * the critical cases and overall: pass rate per arm with Wilson intervals,
 * the paired difference (exact McNemar, paired bootstrap), the gate verdict
 * (pass / fail / inconclusive, with the extra cases likely to settle it),
 * cost per request and projected monthly cost, latency p50/p95/p99 and their
 * ratios, error rate, format drift between arms, and the regressions and
 * improvements with both outputs.
 *
 * Input is the store only (runs, results, baselines): a comparison can be
 * re-rendered long after the models were called (`cutover eval --compare`).
 * The run's config_json carries what the analysis needs besides results
 * (gates, models, prices, critical cases, recorded volume); its schema is
 * documented in docs/eval.md.
 *
 * Ownership: co_eval_analyze allocates *out, co_eval_analysis_free releases
 * it (and every string inside). Library code never prints. */
#ifndef CUTOVER_COMPARE_H
#define CUTOVER_COMPARE_H

#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/stats.h"
#include "cutover/store.h"

typedef struct co_compare_opts {
    double level;            /* confidence level; 0 = 0.95 */
    unsigned bootstrap;      /* paired-bootstrap resamples; 0 = 2000 */
    uint64_t seed;           /* bootstrap seed; 0 = a fixed default (reports are reproducible) */
    int inconclusive_as;     /* how `inconclusive` folds into the exit code:
                                0 = stays inconclusive (3), 1 = fail (1), 2 = pass (0) */
    size_t max_listed;       /* regressions/improvements listed per workload; 0 = 50 */
} co_compare_opts;

typedef struct co_eval_analysis co_eval_analysis;

/* run_b == 0: compares the two arms of run_a; when run_a holds only the
 * candidate arm, each workload's candidate results are compared with that
 * workload's saved baseline run (its incumbent results). run_b != 0:
 * run_a's incumbent arm (or its only arm) is compared with run_b's candidate
 * arm (or its only arm), paired by (case id, repeat).
 * Errors: CO_ENOENT (no such run, or no baseline for a candidate-only run,
 * named in the message), CO_EINVAL (runs that share no case), CO_ESTORE,
 * CO_ENOMEM. */
int co_eval_analyze(co_eval_analysis **out, co_store *st, int64_t run_a, int64_t run_b,
                    const co_compare_opts *opts);
void co_eval_analysis_free(co_eval_analysis *a);

/* 0: every gate passes; 1: a gate failed; 3: inconclusive (after folding by
 * opts.inconclusive_as). */
int co_eval_analysis_exit_code(const co_eval_analysis *a);

/* A short plain-text summary for the terminal: one line per workload gate
 * (verdict, pass rates, difference and interval, extra cases needed), then
 * the overall verdict. Appended to out. */
int co_eval_analysis_summary(co_buf *out, const co_eval_analysis *a);

/* Saves, per workload, the incumbent arm's pass rate, cost per request and
 * latency p50/p95/p99 as the baseline (co_store_baseline_put with the run
 * id) that later candidate-only runs and the rollout controller's cost
 * forecast compare with. CO_EINVAL when the analysis has no incumbent arm. */
int co_eval_save_baselines(co_store *st, const co_eval_analysis *a);

#endif
