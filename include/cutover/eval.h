/* The eval runner: runs a loaded suite (suite.h) through the configured
 * models and stores every result, for the comparison (compare.h) and the
 * reports (report.h) to read back.
 *
 * Every case x arm x repeat is one model call through the same provider code
 * the gateway uses: endpoint.h (URL and key headers), chat.h (the request
 * emitted for the provider's API with the model's upstream id, the reply
 * parsed, the cost from the model's prices) and upstream.h (libcurl multi on
 * a private libevent loop). Both arms run at once; `concurrency` bounds the
 * calls in flight, both arms and judge calls together. Calls are not
 * streamed.
 *
 * A case's workload picks the models: cutover.yaml's workload of that name,
 * its incumbent and candidate. 429, 503 and 529 answers are retried (at most
 * `retries` times) after the Retry-After the provider sent (retry-after-ms,
 * seconds or an HTTP date; capped at retry_max_wait), else after a capped
 * exponential backoff. Any other failure is stored as a failed result with
 * its `error` set; the run goes on.
 *
 * Responses are cached in the store by (model, hash of the request body as
 * emitted for the provider) unless no_cache: a cache hit does not call the
 * model and keeps the latency recorded when it was cached. Repeats beyond
 * the first are cached under their own key, so --repeat samples the model
 * again instead of reading the first answer back.
 *
 * llm-rubric assertions are graded by the config's eval.judge model, called
 * through the same code on the same loop (and cached the same way).
 *
 * Storage follows docs/eval.md: the run is begun with a config_json that
 * carries the models, prices, gates, recorded volume and case metadata,
 * results are written in batches as they complete (nothing is kept in memory
 * beyond the batch and the calls in flight), and the run is finished with
 * the runner's tally.
 *
 * Threads: co_eval_run_suite runs its loop on the calling thread and returns when
 * every call is done. The store handle is used on that thread only. Library
 * code never prints: progress goes to the callback. */
#ifndef CUTOVER_EVAL_H
#define CUTOVER_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/assert.h"
#include "cutover/config.h"
#include "cutover/error.h"
#include "cutover/store.h"
#include "cutover/suite.h"

enum co_eval_arms {
    CO_EVAL_INCUMBENT = 1u << 0,
    CO_EVAL_CANDIDATE = 1u << 1,
    CO_EVAL_BOTH = CO_EVAL_INCUMBENT | CO_EVAL_CANDIDATE,
};

/* "incumbent" | "candidate" | "both" -> a set of arms. CO_EINVAL otherwise. */
int co_eval_arms_parse(unsigned *out, const char *s);

/* Where a run stands; handed to the progress callback. Index 0 is the
 * incumbent arm, 1 the candidate. */
typedef struct co_eval_progress {
    int64_t run_id;
    size_t total;            /* results the run will store */
    size_t done;             /* results stored or about to be */
    size_t done_arm[2];
    size_t passed_arm[2];
    size_t errors;           /* results with `error` set */
    size_t calls;            /* model and judge requests sent (retries included) */
    size_t cache_hits;
    size_t retries;
    int64_t retry_wait_ms;   /* total time waited before retries */
    int64_t elapsed_ms;
    int final;               /* 1 on the last call, when the run is over */
} co_eval_progress;

typedef void (*co_eval_progress_fn)(void *ud, const co_eval_progress *p);

typedef struct co_eval_opts {
    const char *suite_path;     /* stored with the run ("path/as/given"); required */
    unsigned arms;              /* enum co_eval_arms; 0 = both */
    const char *workload;       /* only the cases of this workload; NULL = all */
    int concurrency;            /* 0 = cfg eval.concurrency */
    int repeat;                 /* 0 = 1 */
    int no_cache;
    int retries;                /* < 0 = cfg eval.retries */
    int64_t retry_max_wait_ms;  /* 0 = cfg eval.retry_max_wait */
    int64_t backoff_ms;         /* first backoff when no Retry-After came; 0 = 500 ms (doubles, capped) */
    size_t batch;               /* results per store transaction; 0 = 64 */
    co_eval_progress_fn progress;
    void *progress_ud;
    int64_t progress_interval_ms; /* least time between two progress calls; 0 = 200 ms */
    /* Polled about every 100 ms: when it becomes non-zero, calls in flight
     * are cancelled and the run is finished as "failed" (CO_ESTATE). May be
     * NULL. */
    const volatile int *cancel;
} co_eval_opts;

typedef struct co_eval_summary {
    int64_t run_id;
    co_eval_progress tally;     /* the final counts */
} co_eval_summary;

/* Checks the suite against the config before anything is called: every
 * case's workload must exist in cutover.yaml (else an error at the case's
 * file:line:col naming the workloads that exist), the candidate arm needs
 * the workload's candidate, `workload` must exist and select some case, and
 * llm-rubric assertions need eval.judge. Adds every problem to diags and
 * returns CO_ECONFIG; 0 when the run can start. */
int co_eval_check(const co_config *cfg, const co_suite *suite, const co_eval_opts *opts, co_diags *diags);

/* Runs the suite. On an input problem returns CO_ECONFIG with diags filled
 * (co_eval_check) and stores nothing. Otherwise the run is stored (its id in
 * out->run_id as soon as it is begun, also on a later failure) and 0 is
 * returned even when calls failed (they are results); a store failure, a
 * missing provider key (CO_ENOENT) or a cancellation ends the run early with
 * that error and the run finished as "failed". */
int co_eval_run_suite(co_eval_summary *out, const co_config *cfg, const co_suite *suite, co_store *st,
                const co_eval_opts *opts, co_diags *diags);

/* The judge to hand co_suite_load (co_assert_opts.judge) so that llm-rubric
 * assertions compile when the config names an eval.judge: the runner grades
 * them itself through its loop, so this one only refuses (CO_ESTATE) if it
 * is ever called outside a run. */
int co_eval_judge_placeholder(void *ud, const char *rubric, const char *output, int *pass, double *score,
                              char **reason);

/* Parses a Retry-After value ("120" seconds, or an HTTP date relative to
 * now_ms) into milliseconds; -1 when it is neither. Exposed for tests. */
int64_t co_eval_retry_after_ms(const char *value, int64_t now_ms);

#endif
