/* The store: everything cutover remembers — recorded exchanges (served and
 * shadow, linked by pair_id), eval runs and results, baselines, the response
 * cache, workload mode state, rollout state and its append-only event log,
 * incidents, human reviews, user feedback and plan evidence.
 *
 * One interface, several back ends (SQLite now, PostgreSQL for fleets): callers
 * never know which is behind it. A co_store is used by one thread at a time;
 * each thread that needs the store opens its own handle on the same URL.
 *
 * Ownership: input structs are borrowed for the duration of the call (the
 * store copies what it keeps). Output structs and lists are filled with heap
 * strings the caller releases with the matching *_free / *_clear function. */
#ifndef CUTOVER_STORE_H
#define CUTOVER_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct co_store co_store;

/* ---- exchanges ---------------------------------------------------------- */

/* One model call as the gateway (or replay) saw it. Text fields may be NULL. */
typedef struct co_exchange {
    char request_id[33];    /* X-Cutover-Request-Id of the client request */
    char pair_id[33];       /* same for the served exchange and its shadow */
    int64_t ts_ms;          /* start, ms since epoch */
    const char *workload;
    const char *arm;        /* "incumbent" | "candidate" */
    const char *role;       /* "served" | "shadow" | "fallback" */
    const char *model;      /* config model name */
    const char *api;        /* inbound API: "openai" | "anthropic" | "gemini" */
    const char *user_key;   /* sticky key (hashed by the caller if sensitive) */
    int status;             /* HTTP status returned by (or synthesized for) upstream */
    const char *error_class;/* NULL when ok: "connect", "timeout", "5xx", "429", "4xx", "reset", "truncated", "parse" */
    int stream;             /* 1 when SSE */
    double latency_ms;      /* total */
    double ttft_ms;         /* time to first token; <0 when none */
    int64_t tokens_in, tokens_out, tokens_cached;
    double cost_usd;
    const char *finish_reason;
    const char *request_json;  /* request messages after redaction; the gateway
                                  stores them once per shadow pair, on the
                                  served row (a shadow row has NULL) */
    const char *output_text;   /* assistant output after redaction */
} co_exchange;

/* A stored exchange read back: same fields, strings owned by the row. */
typedef struct co_exchange_row {
    int64_t id;
    co_exchange x;          /* x's string pointers point into `strings` */
    char *strings;          /* one allocation holding every string of the row */
} co_exchange_row;

typedef struct co_exchange_list {
    co_exchange_row *v;
    size_t n;
} co_exchange_list;

/* Which exchanges to read. NULL / 0 fields do not filter. */
typedef struct co_window_query {
    const char *workload;
    const char *arm;
    const char *role;
    int64_t since_ms;       /* ts_ms >= since_ms */
    int64_t until_ms;       /* ts_ms < until_ms when > 0 */
    size_t limit;           /* 0 = no limit; newest first when limited */
    int with_text;          /* 0 = leave request_json/output_text NULL (cheaper) */
} co_window_query;

/* Aggregates over a window, computed by the back end. */
typedef struct co_window_summary {
    int64_t count;
    int64_t errors;
    double cost_usd;
    int64_t tokens_in, tokens_out, tokens_cached;
    double latency_ms_sum;
    double latency_ms_max;
} co_window_summary;

/* A served exchange and its shadow, read back as one pair. */
typedef struct co_pair {
    co_exchange_row served;
    co_exchange_row shadow;  /* shadow.id == 0 when the pair has no shadow */
} co_pair;

/* ---- eval runs ---------------------------------------------------------- */

typedef struct co_eval_run {
    int64_t id;              /* set by eval_run_begin */
    int64_t started_ms, finished_ms;
    const char *suite;       /* suite path or name */
    const char *config_json; /* arms, models, options as JSON */
    const char *summary_json;/* filled by eval_run_finish; NULL before */
    const char *status;      /* "running" | "done" | "failed" */
} co_eval_run;

typedef struct co_eval_result {
    const char *case_id;
    const char *workload;
    const char *arm;
    int repeat;              /* 0..K-1 */
    int passed;              /* 1 / 0 */
    double score;            /* weighted score 0..1 */
    double latency_ms;
    double cost_usd;
    int64_t tokens_in, tokens_out;
    const char *output_text;
    const char *detail_json; /* per-assertion outcomes */
    const char *error;       /* NULL when the call succeeded */
} co_eval_result;

/* ---- rollout ------------------------------------------------------------ */

/* Current mode of a workload as every gateway must serve it. `version`
 * increases on every change; gateways compare it to pick changes up. */
typedef struct co_workload_state {
    char *workload;
    char *mode;              /* "incumbent" | "candidate" | "shadow" | "canary" */
    double percent;          /* canary percent (0..100) */
    int64_t version;
    int64_t updated_ms;
    char *updated_by;
} co_workload_state;

typedef struct co_rollout_state {
    char *workload;
    char *state;             /* pending|shadow|canary|paused|promoted|finalized|rolled_back */
    int stage;               /* index into the configured stages */
    int64_t stage_started_ms;
    int64_t hold_elapsed_ms; /* hold time consumed before the last pause/restart */
    int64_t version;         /* compare-and-set guard */
    char *data_json;         /* controller's extra state */
} co_rollout_state;

typedef struct co_rollout_event {
    int64_t id;
    char *workload;
    int64_t ts_ms;
    char *actor;             /* "user:NAME" | "controller" | "drill" */
    char *kind;              /* "start", "promote", "pause", "resume", "rollback", "abort", "finalize", "hold-extended", "drill" ... */
    char *from_state, *to_state;
    char *reason;
    char *metrics_json;      /* snapshot behind the decision */
} co_rollout_event;

typedef struct co_rollout_event_list {
    co_rollout_event *v;
    size_t n;
} co_rollout_event_list;

typedef struct co_incident {
    int64_t id;
    char *workload;
    int64_t ts_ms;
    char *trigger;
    char *report_md;
    char *data_json;
} co_incident;

/* ---- reviews, feedback, evidence ---------------------------------------- */

typedef struct co_review {
    char *pair_id;
    char *reviewer;
    char *verdict;           /* "candidate_better" | "same" | "incumbent_better" | "both_bad" */
    char *note;
    int64_t ts_ms;
} co_review;

typedef struct co_feedback {
    char *request_id;
    int score;               /* -1, 0, 1 */
    char *comment;
    int64_t ts_ms;
} co_feedback;

typedef struct co_evidence {
    int64_t id;
    char *item;              /* plan checklist item id, e.g. "baseline.saved" */
    char *workload;          /* may be NULL for global items */
    int64_t ts_ms;
    char *data_json;
} co_evidence;

/* ---- fleet ---------------------------------------------------------------- */

/* A gateway process's heartbeat: which mode version it serves now. */
typedef struct co_gateway_beat {
    char *id;                /* unique per process, e.g. "host:pid:started_ms" */
    char *host;
    int64_t pid;
    int64_t started_ms;      /* <= 0: now (first beat) */
    int64_t seen_ms;         /* <= 0: now */
    int64_t applied_version; /* highest workload-state version it has applied */
} co_gateway_beat;

/* ---- opening ------------------------------------------------------------ */

/* Opens a store from a URL: "sqlite:PATH" (or a bare path), "sqlite::memory:",
 * or "postgres://user@host:port/db" (also "postgresql://", any libpq URI
 * parameter after "?"). A PostgreSQL password is never part of the URL
 * (refused with CO_EINVAL): libpq takes it from PGPASSWORD, PGPASSFILE,
 * ~/.pgpass or a passfile=PATH parameter. Applies pending schema migrations
 * (once, under a lock, whichever process opens first). On error returns a
 * negative status and sets co_error_last (never containing a password).
 * *out is owned by the caller and released with co_store_close.
 *
 * A PostgreSQL handle whose connection was lost fails the call that found
 * out (CO_ESTORE) and reconnects at the next call. */
int co_store_open(co_store **out, const char *url);
void co_store_close(co_store *st);
/* The schema version the store is at, and the one this build writes. */
int co_store_schema_version(co_store *st, int *out_version);
int co_store_schema_latest(void);
/* "sqlite" | "postgres" — for status output only. */
const char *co_store_backend(const co_store *st);

/* Waits up to timeout_ms (0: just checks) for a change of any workload
 * state or rollout state made through any handle on the same store, by any
 * process. *out_changed is 1 when the caller should re-read them: a change
 * was announced, or it cannot be ruled out (the first call on a handle, a
 * notification connection re-established). PostgreSQL: LISTEN/NOTIFY on a
 * second connection of the handle (opened by the first call); the
 * notification is sent in the same transaction as the change. SQLite: polls
 * PRAGMA data_version every few ms and compares the state versions when it
 * moves. On error (PostgreSQL unreachable) the call has waited out the
 * timeout and sets *out_changed = 1, so a loop around it degrades to polling
 * at that pace; the next call tries to reconnect. */
int co_store_wait_change(co_store *st, int64_t timeout_ms, int *out_changed);

/* ---- exchanges ---------------------------------------------------------- */

/* Writes n exchanges in one transaction: all or none. */
int co_store_record(co_store *st, const co_exchange *xs, size_t n);
int co_store_exchanges(co_store *st, const co_window_query *q, co_exchange_list *out);
int co_store_window_summary(co_store *st, const co_window_query *q, co_window_summary *out);
/* Latencies of the window in ascending order (for percentiles). */
int co_store_window_latencies(co_store *st, const co_window_query *q, double **out, size_t *n);
/* A pair by id. A shadow row stored without request_json shows the served
 * row's (the same pointer: valid while the pair is). */
int co_store_pair(co_store *st, const char *pair_id, co_pair *out);
/* Pairs with both a served and a shadow exchange, newest first; request_json
 * shared as in co_store_pair. */
int co_store_pairs(co_store *st, const char *workload, size_t limit, size_t offset,
                   co_pair **out, size_t *n);
void co_exchange_list_free(co_exchange_list *l);
void co_pair_clear(co_pair *p);
void co_pairs_free(co_pair *v, size_t n);

/* ---- eval ---------------------------------------------------------------- */
int co_store_eval_run_begin(co_store *st, co_eval_run *run);   /* sets run->id */
int co_store_eval_results_add(co_store *st, int64_t run_id, const co_eval_result *rs, size_t n);
int co_store_eval_run_finish(co_store *st, int64_t run_id, const char *status, const char *summary_json);
/* Reads a run; strings in *out are heap copies released by co_eval_run_clear. */
int co_store_eval_run_get(co_store *st, int64_t run_id, co_eval_run *out);
typedef int (*co_eval_result_cb)(const co_eval_result *r, void *ud); /* non-zero stops */
int co_store_eval_results_each(co_store *st, int64_t run_id, co_eval_result_cb cb, void *ud);
void co_eval_run_clear(co_eval_run *r);
/* Baseline per workload (JSON document), replacing the previous one. */
int co_store_baseline_put(co_store *st, const char *workload, int64_t run_id, const char *json);
/* *out_json is malloc'd; CO_ENOENT when none. */
int co_store_baseline_get(co_store *st, const char *workload, char **out_json, int64_t *out_run_id);
/* Response cache keyed by (model, canonical request hash). */
int co_store_cache_get(co_store *st, const char *model, const char *key, char **out_json);
int co_store_cache_put(co_store *st, const char *model, const char *key, const char *json);

/* ---- workload mode + rollout -------------------------------------------- */
/* CO_ENOENT when the workload has no stored state (config decides). */
int co_store_workload_state_get(co_store *st, const char *workload, co_workload_state *out);
/* Sets mode/percent, bumps version; out_version may be NULL. */
int co_store_workload_state_set(co_store *st, const char *workload, const char *mode,
                                double percent, const char *by, int64_t *out_version);
/* All stored workload states whose version is above since_version. */
int co_store_workload_states(co_store *st, int64_t since_version,
                             co_workload_state **out, size_t *n);
void co_workload_state_clear(co_workload_state *s);
void co_workload_states_free(co_workload_state *v, size_t n);

int co_store_rollout_get(co_store *st, const char *workload, co_rollout_state *out);
/* Compare-and-set: succeeds only when the stored version equals
 * expected_version (0 = must not exist yet); bumps version into s->version.
 * CO_ECONFLICT otherwise. */
int co_store_rollout_put(co_store *st, co_rollout_state *s, int64_t expected_version);
void co_rollout_state_clear(co_rollout_state *s);
int co_store_rollout_event_add(co_store *st, co_rollout_event *ev);  /* sets ev->id */
int co_store_rollout_events(co_store *st, const char *workload, int64_t since_id,
                            co_rollout_event_list *out);
void co_rollout_event_list_free(co_rollout_event_list *l);
int co_store_incident_add(co_store *st, co_incident *inc);           /* sets inc->id */
/* id <= 0: the latest (optionally of `workload`). */
int co_store_incident_get(co_store *st, int64_t id, const char *workload, co_incident *out);
void co_incident_clear(co_incident *inc);

/* ---- reviews, feedback, evidence ---------------------------------------- */
int co_store_review_add(co_store *st, const co_review *r);
int co_store_reviews(co_store *st, const char *pair_id, co_review **out, size_t *n);
void co_reviews_free(co_review *v, size_t n);
int co_store_feedback_add(co_store *st, const co_feedback *f);
/* Feedback counts joined to exchanges of a window (by request_id). */
int co_store_feedback_summary(co_store *st, const co_window_query *q,
                              int64_t *out_total, int64_t *out_negative);
int co_store_evidence_add(co_store *st, co_evidence *e);              /* sets e->id */
int co_store_evidence(co_store *st, const char *item, co_evidence **out, size_t *n);
void co_evidence_free(co_evidence *v, size_t n);

/* ---- fleet ---------------------------------------------------------------- */
/* Upserts a gateway's heartbeat (input borrowed). */
int co_store_gateway_beat(co_store *st, const co_gateway_beat *b);
/* Gateways whose last beat is at or after seen_since_ms; free with co_gateway_beats_free. */
int co_store_gateways(co_store *st, int64_t seen_since_ms, co_gateway_beat **out, size_t *n);
void co_gateway_beats_free(co_gateway_beat *v, size_t n);
/* Named lease with one holder at a time (the rollout controller): a lock
 * held by this handle, not a timed claim. Sets *out_held to 1 when `holder`
 * has it now through this handle (taken, or still held: renewed), else 0
 * (another handle, or another holder on this handle, has it). The system
 * releases it when the handle goes away — co_store_close, the process's
 * death, or (PostgreSQL) the end of the handle's database session — so
 * another handle can take it at its next call, without waiting out any
 * ttl. ttl_ms only sets the informational expiry in the store's `leases`
 * row (holder, expires_ms = now + ttl_ms), written by whoever holds the
 * lock so others can see who it is.
 *
 * PostgreSQL: a session advisory lock, pg_try_advisory_lock("CULE", hash of
 * the schema and name). A renewal proves with one round trip that the
 * session still holds it; after a reconnect (store.h: a lost connection is
 * replaced at the next call) the handle has forgotten every lease of the
 * old session and this call takes it anew or reports 0 — never "held" on
 * a session that did not lock it. The server ends the session of a holder
 * whose host vanished within about 25 s (TCP keepalives on its side).
 * SQLite: an open-file-description lock (F_OFD_SETLK) on "<db>-lease-<name>"
 * next to the database (one host); "sqlite::memory:" stores: per handle. */
int co_store_lease_take(co_store *st, const char *name, const char *holder, int64_t ttl_ms, int *out_held);
/* Releases the lease if `holder` has it through this handle (not an error
 * otherwise) and deletes its row. */
int co_store_lease_drop(co_store *st, const char *name, const char *holder);
/* 1 when this handle still holds the lease for `holder` as far as it knows
 * without asking the server (0 once its connection broke or was replaced):
 * a holder checks it before each action between two takes. */
int co_store_lease_held(co_store *st, const char *name, const char *holder);

#endif
