/* Gateway metrics for /metrics, in the Prometheus text exposition format
 * 0.0.4.
 *
 * Series: per workload x arm (incumbent, candidate) x role (served, shadow,
 * fallback), every one created when the registry is made from the list of
 * workload names (a route table's workloads, by co_route_workload.index), so
 * the hot path never allocates or looks anything up by name:
 *
 *   cutover_requests_total                 counter
 *   cutover_errors_total{class=...}        counter: connect, timeout, 5xx,
 *                                          429, 4xx, reset, truncated, parse
 *   cutover_request_duration_seconds       histogram (CO_METRICS_BUCKETS)
 *   cutover_time_to_first_token_seconds    histogram (same buckets)
 *   cutover_tokens_total{kind=input|output|cached}  counter
 *   cutover_cost_usd_total                 counter
 *
 * Requests whose workload is unknown (or whose index/arm/role is out of
 * range) are counted under workload="(unknown)" (CO_METRICS_UNKNOWN_LABEL).
 * The served/fallback series of the incumbent and the served/shadow series of
 * the candidate of every known workload are always rendered (zeros included,
 * so rate() works from the first scrape); other combinations only once they
 * have counted something.
 *
 * Threads and memory ordering: each worker thread owns one
 * co_metrics_worker block (its own cache lines) and is its only writer. An
 * observation is plain arithmetic on that block: every field is an
 * _Atomic uint64_t updated with a relaxed load and a relaxed store (not a
 * read-modify-write, so no lock prefix, no fence: on x86-64 and arm64 it
 * compiles to the same load/add/store as a plain increment). The scraper
 * (co_metrics_render, any thread) reads the blocks with relaxed atomic loads
 * and sums them. Relaxed is enough because every field is an independent
 * monotonic counter with one writer: a reader sees, for each field, some
 * value the writer stored (never a torn one, which the atomic type
 * guarantees and which a plain racing uint64_t would not, formally), and
 * later scrapes never see smaller values. No cross-field snapshot is
 * promised: a scrape may see a request counted before its latency lands in
 * the histogram; Prometheus tolerates that. Histogram _count is derived from
 * the bucket counts read in the same pass, so _count always equals the +Inf
 * bucket and buckets are cumulative in every scrape. Sums are kept as
 * integers (microseconds, nano-USD) so they too are plain 64-bit counters.
 *
 * Scrape-time values from other modules (recorder queue depth, high-water,
 * drops; upstream pool stats) come from callbacks registered with
 * co_metrics_add_gauge_cb, called under the registry's mutex during render
 * (a callback must not call back into the registry).
 *
 * Ownership: co_metrics_new / co_metrics_free; worker blocks belong to the
 * registry. Free the registry only after every worker stopped observing. */
#ifndef CUTOVER_METRICS_H
#define CUTOVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/route.h"

/* Error classes of an upstream call (the co_exchange.error_class strings). */
enum co_errclass {
    CO_ERRCLASS_NONE = 0,
    CO_ERRCLASS_CONNECT,
    CO_ERRCLASS_TIMEOUT,
    CO_ERRCLASS_5XX,
    CO_ERRCLASS_429,
    CO_ERRCLASS_4XX,
    CO_ERRCLASS_RESET,
    CO_ERRCLASS_TRUNCATED,
    CO_ERRCLASS_PARSE,
    CO_ERRCLASS__COUNT
};
/* "connect", "timeout", ... ("none" for CO_ERRCLASS_NONE, "?" out of range). */
const char *co_errclass_name(int c);
/* The class of a name; NULL or "" is CO_ERRCLASS_NONE; CO_EINVAL when unknown. */
int co_errclass_from_name(const char *name);

/* Histogram bucket upper bounds in seconds (the +Inf bucket is implicit). */
#define CO_METRICS_NBUCKETS 19
extern const double co_metrics_buckets[CO_METRICS_NBUCKETS];

#define CO_METRICS_UNKNOWN_WORKLOAD (-1)
#define CO_METRICS_UNKNOWN_LABEL "(unknown)"

typedef struct co_metrics co_metrics;
typedef struct co_metrics_worker co_metrics_worker;

/* One finished upstream call. */
typedef struct co_metrics_obs {
    int workload;           /* co_route_workload.index, or CO_METRICS_UNKNOWN_WORKLOAD */
    int arm;                /* enum co_arm (incumbent or candidate) */
    int role;               /* enum co_role */
    int errclass;           /* enum co_errclass; CO_ERRCLASS_NONE when it succeeded */
    double latency_s;       /* whole call; < 0 or NaN: not observed */
    double ttft_s;          /* time to first token; < 0 or NaN: none */
    int64_t tokens_in, tokens_out, tokens_cached; /* negatives count as 0 */
    double cost_usd;        /* < 0 or NaN counts as 0 */
} co_metrics_obs;

/* A registry for n workloads (names copied; index i is workload i) and
 * `workers` worker blocks (>= 1). */
int co_metrics_new(const char *const *workloads, size_t n, unsigned workers, co_metrics **out);
void co_metrics_free(co_metrics *m);
unsigned co_metrics_worker_count(const co_metrics *m);
/* Worker i's block (NULL when out of range). Only that worker may observe on it. */
co_metrics_worker *co_metrics_worker_get(co_metrics *m, unsigned i);

/* Counts one call on the worker's block: no lock, no allocation, no atomic
 * read-modify-write. */
void co_metrics_observe(co_metrics_worker *w, const co_metrics_obs *o);

/* Appends the whole exposition (every worker summed, then the callback
 * families in registration order) to out. CO_ETOOBIG / CO_ENOMEM from out. */
int co_metrics_render(co_metrics *m, co_buf *out);

/* ---- scrape-time callbacks --------------------------------------------- */

enum co_metric_type { CO_METRIC_COUNTER = 0, CO_METRIC_GAUGE = 1 };

typedef struct co_metrics_sink co_metrics_sink;
/* Called at every scrape; emits zero or more samples of its family. */
typedef void (*co_metrics_cb)(void *ud, co_metrics_sink *sink);

/* One sample of the callback's family. labels: NULL, or a NULL-terminated
 * list of name, value pairs ({"provider", "openai", NULL}); values are
 * escaped here. A sample with an invalid label name is replaced by a
 * comment line saying so. */
void co_metrics_emit(co_metrics_sink *sink, const char *const *labels, double value);

/* Registers a family rendered by cb. name must match [a-zA-Z_:][a-zA-Z0-9_:]*
 * (CO_EINVAL) and be new (CO_EEXIST, built-in names included); help may be
 * NULL; type is enum co_metric_type. Call before or between scrapes (the
 * list is guarded by the registry's mutex). */
int co_metrics_add_gauge_cb(co_metrics *m, const char *name, const char *help, int type, co_metrics_cb cb,
                            void *ud);

#endif
