/* The rollout: a workload's staged move from its incumbent to its candidate
 * (shadow → canary stages → promoted → finalized, any → rolled_back), the
 * online analysis that judges each stage (triggers on recorded exchanges,
 * candidate vs incumbent), and the controller that acts on it.
 *
 * State lives in the store (co_rollout_state, compare-and-set) with every
 * transition appended to the rollout event log; every mode change goes
 * through co_control_set_mode, so gateways pick stages up the way they pick
 * up any mode change. Nothing here is kept only in memory that a restart
 * would need: a restarted controller resumes a stage with the hold time that
 * was left.
 *
 * Time: stored timestamps are real wall-clock milliseconds (exchanges are
 * stamped by the gateways). Durations from the config (holds, interval,
 * retain_incumbent) are "rollout time": a clock's `scale` says how much
 * rollout time passes per real millisecond, so `--time-scale 3600` makes an
 * hour of hold pass in a second through the same code. Tests inject now_ms.
 *
 * Ownership: inputs are borrowed for the call. Outputs documented per
 * function; *_clear / *_free release them. Library code never prints. */
#ifndef CUTOVER_ROLLOUT_H
#define CUTOVER_ROLLOUT_H

#include <stdint.h>

#include "cutover/buf.h"
#include "cutover/config.h"
#include "cutover/stats.h"
#include "cutover/store.h"

/* ---- clock ---------------------------------------------------------------- */

typedef int64_t (*co_clock_fn)(void *ud);

typedef struct co_rollout_clock {
    co_clock_fn now_ms;   /* wall clock in ms since the epoch; NULL: co_now_ms */
    void *ud;
    double scale;         /* rollout ms per real ms; <= 0 means 1 */
} co_rollout_clock;

/* A NULL clock is the real one at scale 1. */
int64_t co_rollout_now(const co_rollout_clock *c);
double co_rollout_scale(const co_rollout_clock *c);
/* Rollout time that passes in real_ms, and the real time a rollout duration
 * takes (at least 1 ms for a positive duration). */
int64_t co_rollout_to_rollout_ms(const co_rollout_clock *c, int64_t real_ms);
int64_t co_rollout_to_real_ms(const co_rollout_clock *c, int64_t rollout_ms);

/* ---- stages ----------------------------------------------------------------- */

/* What stage i of a plan serves: its rollout state ("shadow", "canary",
 * "promoted" for a 100% stage), the gateway mode (enum co_mode) and percent,
 * and a label ("shadow", "canary 10%", "100%"). CO_EINVAL past the end. */
int co_rollout_stage_info(const co_rollout_conf *r, int stage, const char **state, int *mode, double *percent,
                          char *label, size_t label_n);
/* The label of a stored state: "canary 10%", "paused at canary 10%", "promoted", "rolled back". */
void co_rollout_state_label(const co_rollout_conf *r, const co_rollout_state *s, char *out, size_t n);
/* 1 for pending, shadow, canary, paused and promoted (the controller watches them). */
int co_rollout_state_active(const char *state);

/* ---- output contract ------------------------------------------------------ */

/* A workload's `contract` compiled once: format (json: the whole output is
 * one JSON value, a ```json fence is drift; text: the output is not a JSON
 * object or array), regex (POSIX extended, must match somewhere), json_schema
 * (the output parsed as JSON satisfies it), max_chars (Unicode code points)
 * and assertions from the eval vocabulary (latency and cost assertions see
 * the exchange's own figures). */
typedef struct co_contract co_contract;

/* *out is NULL (and 0 returned) when the contract checks nothing. CO_EINVAL
 * when a part does not compile (the message starts with `where`). */
int co_contract_new(co_contract **out, const co_contract_conf *c, const char *where);
void co_contract_free(co_contract *c);
/* Checks one recorded output. *pass is 1 or 0; when why is not NULL the
 * first failing part is appended ("not JSON: ...", "regex '...' does not
 * match"). */
int co_contract_check(const co_contract *c, const char *output, double latency_ms, double cost_usd, int *pass,
                      co_buf *why);

/* ---- analysis --------------------------------------------------------------- */

enum co_rollout_trigger {
    CO_TRIG_ERROR_RATE,   /* candidate error rate − incumbent's, in points */
    CO_TRIG_LATENCY_P95,  /* candidate p95 / incumbent p95 (bootstrap) */
    CO_TRIG_COST,         /* candidate cost per request / forecast */
    CO_TRIG_QUALITY,      /* contract failures, candidate − incumbent, in points */
    CO_TRIG_FEEDBACK,     /* negative feedback share, candidate / incumbent */
    CO_TRIG__N
};
/* "error_rate", "latency_p95", "cost", "quality", "feedback" (the incident
 * trigger names), NULL-terminated. */
extern const char *const co_rollout_trigger_names[];

typedef struct co_trigger_eval {
    int applies;                /* 0: nothing to judge (no contract, no prices, no feedback): `note` says why */
    co_trigger_verdict verdict; /* INCONCLUSIVE when it does not apply */
    double value;               /* the statistic in display units (points or a ratio); NAN when unknown */
    double lo, hi;              /* its one-sided bounds at the configured confidence */
    double threshold;           /* in the same units */
    double confidence;          /* how sure the data are of the side they lean to (stats.h) */
    uint64_t n_cand, n_inc;     /* samples the test used */
    uint64_t need_cand, need_inc; /* more samples per arm likely to settle it (0: settled; CO_STATS_NEVER) */
    char note[160];
} co_trigger_eval;

typedef struct co_arm_figures {
    uint64_t requests, errors;      /* in the window */
    double error_rate;              /* NAN when no request */
    double p95_ms;                  /* NAN when no request */
    uint64_t cost_n;                /* successful requests behind cost_mean */
    double cost_mean;               /* USD per successful request; NAN when none */
    uint64_t checked, contract_fail;/* recorded outputs checked against the contract */
    int64_t feedback, feedback_negative;
} co_arm_figures;

typedef struct co_rollout_analysis {
    int64_t since_ms, until_ms;
    int candidate_served;           /* 0 in a shadow stage (no candidate feedback exists) */
    co_arm_figures inc, cand;
    double forecast_cost;           /* USD per request expected on the candidate; NAN when unknown */
    char forecast_source[24];       /* "baseline" | "prices" | "" */
    co_trigger_eval t[CO_TRIG__N];
    co_trigger_verdict verdict;     /* breach if any breaches, ok if every applicable one is ok */
    int breach;                     /* index of the first breached trigger, -1 when none */
    char contract_example[240];     /* one failing candidate output's reason, "" when none */
} co_rollout_analysis;

/* Judges the window [since_ms, until_ms) of workload w (candidate vs
 * incumbent, the whole fleet's records). until_ms <= 0: no upper bound.
 * Reads served incumbent exchanges and the candidate's served ones (its
 * shadow ones when candidate_served is 0). */
int co_rollout_analyze(co_rollout_analysis *out, co_store *st, const co_config *cfg, const co_workload_conf *w,
                       int64_t since_ms, int64_t until_ms, int candidate_served);
/* The snapshot stored with events and incidents (a JSON object). */
int co_rollout_analysis_json(co_buf *out, const co_rollout_analysis *a);
/* One line for a breach: "error_rate: candidate 12.0% vs incumbent 1.0% errors, +11.0 points > 5 (confidence 99.9%)". */
void co_rollout_breach_reason(const co_rollout_analysis *a, int trig, char *out, size_t n);

/* ---- commands (CLI, admin API, tests) ------------------------------------------ */

typedef struct co_rollout_cmd {
    const char *workload;
    const char *actor;        /* "user:NAME"; NULL: "user" */
    const char *reason;       /* may be NULL */
    int force;                /* promote past an unfinished hold, finalize inside the retention window */
    const co_rollout_clock *clock; /* NULL: real time */
} co_rollout_cmd;

/* Starts (or restarts after a rollback / finalize) a rollout: pending, then
 * at once the first stage (its mode applied). CO_ESTATE when one is active. */
int co_rollout_start(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd);
/* Freezes the hold (triggers are still judged: a breach still rolls back). */
int co_rollout_pause(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd);
int co_rollout_resume(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd);
/* Next stage now. Refused (CO_ESTATE, the message says why) while paused,
 * and, unless force, while the hold is not over or a trigger is not ok. */
int co_rollout_promote(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd);
/* Back to the incumbent: state rolled_back, an "abort" event, an incident. */
int co_rollout_abort(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd);
/* promoted → finalized. CO_ESTATE inside retain_incumbent unless force; the
 * message says how long is left. */
int co_rollout_finalize(co_store *st, const co_config *cfg, const co_rollout_cmd *cmd);

/* ---- status ------------------------------------------------------------------------ */

typedef struct co_rollout_status {
    co_rollout_state s;             /* the stored state (owned: co_rollout_status_clear) */
    int exists;                     /* 0: no rollout was ever started */
    char label[64];                 /* co_rollout_state_label */
    int n_stages;
    double percent;                 /* candidate share served now (shadow: 0) */
    int64_t hold_ms;                /* this stage's hold (promoted: retain_incumbent), rollout time */
    int64_t hold_left_ms;           /* rollout time left; 0 when over */
    double time_scale;              /* the controller's, from the stored state (1 when unknown) */
    int awaiting_promotion;         /* hold over and healthy, auto_promote off */
    int extensions;                 /* hold extensions in this stage */
    int64_t last_tick_ms;           /* when a controller last judged it (0: never) */
    char *controller;               /* who did (owned), may be NULL */
    int probe_failures;             /* promoted: consecutive failed incumbent probes */
    char *probe_error;              /* the last probe error (owned), may be NULL */
    int64_t probe_ms;               /* when the incumbent was last probed */
    int analyzed;                   /* 1 when `a` holds a fresh analysis of the stage window */
    co_rollout_analysis a;
} co_rollout_status;

int co_rollout_status_get(co_rollout_status *out, co_store *st, const co_config *cfg, const char *workload,
                          const co_rollout_clock *clock);
int co_rollout_status_json(co_buf *out, const co_config *cfg, const co_rollout_status *s);
void co_rollout_status_clear(co_rollout_status *s);

/* ---- controller -------------------------------------------------------------------- */

typedef struct co_controller co_controller;

typedef void (*co_controller_log_fn)(void *ud, int level, const char *msg); /* level: index into co_log_levels */
/* Probes the retained incumbent after promotion: 0 when it answered, else a
 * negative status with co_error_set detail. */
typedef int (*co_probe_fn)(void *ud, const co_config *cfg, const co_workload_conf *w);

typedef struct co_controller_opts {
    co_rollout_clock clock;    /* zeroed: real time */
    const char *holder;        /* lease holder id; NULL: "host:pid:started" */
    const char *lease;         /* lease name; NULL: "rollout-controller" */
    const char *config_path;   /* re-read when the file changes (serve reloads it too); may be NULL */
    co_controller_log_fn log;  /* NULL: silent */
    void *log_ud;
    co_probe_fn probe;         /* NULL: a real one-token request through the provider code */
    void *probe_ud;
} co_controller_opts;

/* Opens its own store handle (cfg->store) and copies what it needs from
 * opts. cfg is borrowed until co_controller_free unless config_path is set
 * (then the controller loads and owns its own copies). */
int co_controller_new(co_controller **out, const co_config *cfg, const co_controller_opts *opts);
void co_controller_free(co_controller *c);
/* One pass: takes or renews the lease and, while held, steps every workload
 * whose rollout is active and due (every `interval`). *held (may be NULL)
 * says whether this controller holds the lease. The lease is a lock of the
 * store (co_store_lease_take): it is released when the holder's store
 * handle, process or PostgreSQL session ends, so a standby takes over at
 * its next tick — within one period, and the period is at most one
 * interval. A tick whose store connection broke stops acting at once. */
int co_controller_tick(co_controller *c, int *held);
/* Ticks until co_controller_stop (from any thread), then drops the lease.
 * The pause between ticks is the shortest real interval of the workloads,
 * within [100 ms, 1 s]. */
int co_controller_run(co_controller *c);
void co_controller_stop(co_controller *c);
/* Runs co_controller_run on a thread of its own (cutover serve). */
int co_controller_start_thread(co_controller *c);
/* Stops and joins that thread. */
void co_controller_join(co_controller *c);
/* The expiry written into the informational leases row at each renewal
 * (three periods: a row older than that is stale; the lock itself never
 * times out) and the pause between ticks, real ms. */
int64_t co_controller_lease_ttl_ms(const co_controller *c);
int64_t co_controller_period_ms(const co_controller *c);
/* Tests: ends the controller the way a killed process would — its store
 * handle closed without dropping the lease — and frees it. */
void co__controller_abandon(co_controller *c);

/* The default incumbent probe: a one-token chat request to w->incumbent
 * through its provider (endpoint.h), answered 2xx with a parseable body. */
int co_rollout_probe_incumbent(void *ud, const co_config *cfg, const co_workload_conf *w);

#endif
