/* Internal to the store: the back-end vtable behind a co_store. store.c parses
 * the URL, validates arguments and dispatches through `ops`; each back end
 * (store_sqlite.c, store_pg.c) fills one co_store_ops and embeds
 * struct co_store as the first member of its own handle. Nothing outside
 * store*.c includes this header (tests excepted). */
#ifndef CUTOVER_STORE_IMPL_H
#define CUTOVER_STORE_IMPL_H

#include "cutover/store.h"

/* The schema version this build writes. Every back end keeps the same
 * numbering so `cutover status` means the same thing on SQLite and Postgres. */
#define CO__STORE_SCHEMA_LATEST 6

/* Migration v4, portable SQL shared by the back ends: exactly-once
 * exchanges. A batch whose commit reached the server but whose
 * acknowledgement did not reach the recorder is sent again; (request_id,
 * role) is unique, so the second copy is skipped instead of counted twice.
 * Copies already stored are removed, the oldest kept. The new index also
 * serves lookups by request id, which the one it replaces did. */
#define CO__STORE_SQL_V4                                                                                   \
    "DELETE FROM exchanges WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER"                      \
    "  (PARTITION BY request_id, role ORDER BY id) AS rn FROM exchanges WHERE request_id IS NOT NULL) d" \
    " WHERE rn > 1);"                                                                                      \
    "DROP INDEX exchanges_request;"                                                                        \
    "CREATE UNIQUE INDEX exchanges_request_role ON exchanges(request_id, role) WHERE request_id IS NOT NULL;"

/* Migration v5, portable SQL shared by the back ends: one index less to
 * maintain per recorded exchange. The gateway gives an exchange's pair the
 * request's id (served and shadow share it), so the unique (request_id,
 * role) index already finds a pair's rows; exchanges_pair is replaced by a
 * partial index of only the rows whose pair id is not their request id
 * (API users' and tests' rows, never the gateway's). Pair lookups ask both
 * with CO__STORE_SQL_PAIR_IS. */
#define CO__STORE_SQL_PAIR_OTHER "(request_id IS NULL OR pair_id <> request_id)"
#define CO__STORE_SQL_V5                                                                           \
    "CREATE INDEX exchanges_pair_other ON exchanges(pair_id, role)"                                \
    " WHERE pair_id IS NOT NULL AND " CO__STORE_SQL_PAIR_OTHER ";"                                 \
    "DROP INDEX exchanges_pair;"

/* The rows of pair `p` (a parameter or a column of an outer query): found
 * through exchanges_request_role when the pair id is the request id, through
 * exchanges_pair_other otherwise; the two halves never both match a row. The
 * second half repeats the partial index's condition word for word, which is
 * what lets either planner use that index. */
#define CO__STORE_SQL_PAIR_IS(p)                                                                   \
    "((request_id = " p " AND pair_id = " p ") OR (pair_id = " p " AND "                          \
    CO__STORE_SQL_PAIR_OTHER "))"

/* Arguments reach the ops already validated by store.c (non-NULL handle,
 * outputs and required strings; outputs zeroed). Ops return 0 or a negative
 * CO_* code with co_error_set detail.
 *
 * Behaviour every back end must keep (tests/unit/core/test_store.c checks it):
 * - record / eval_results_add: one transaction, all rows or none. Bad values
 *   (CHECK, NOT NULL, foreign key) -> CO_EINVAL, duplicates -> CO_EEXIST,
 *   lock timeouts -> CO_EBUSY, anything else -> CO_ESTORE.
 * - windows: NULL/0 fields do not filter; since <= ts < until. Without a
 *   limit rows come oldest first; with one, the newest `limit` rows, newest
 *   first; summary, latencies and feedback over a limited window aggregate
 *   those same newest rows. Empty request/pair ids and error classes are
 *   stored as NULL (read back as ""/NULL); ttft < 0 is NULL, read back as -1.
 *   errors = rows with an error_class.
 * - pair: ENOENT without a served row; pairs: served rows that have a shadow
 *   (the first by id), newest served first; workload NULL = all workloads.
 * - workload_state version: one counter across all workloads (max + 1 on
 *   every set), so "states since version V" catches every change.
 * - rollout_put: expected 0 inserts at version 1; otherwise version+1 only if
 *   the stored version equals expected; CO_ECONFLICT in every other case.
 * - event/incident/evidence add set id (and ts_ms when <= 0); review_add
 *   and feedback_add replace the previous verdict of the same
 *   (pair_id, reviewer) / request_id. NULL workload / pair_id / item in the
 *   list calls means all.
 * - eval_results_each: callback strings are valid during the call only; a
 *   callback return > 0 stops with 0, < 0 stops and is returned. Unknown
 *   run -> CO_ENOENT (also for run_get / run_finish).
 * - gateway_beat upserts by id (started_ms kept from the first beat);
 *   gateways lists those seen at or after seen_since_ms, by id.
 * - lease_take: a lock with one holder at a time, released by the system
 *   when the holder's handle goes away (co_store_close, process death,
 *   PostgreSQL session end) — never by a ttl. Held when free or already
 *   this holder's on this handle (renewal: the ttl only moves the
 *   informational leases row's expires_ms, and a renewal never stacks the
 *   lock); *out_held = 0 when another handle, or another holder on this
 *   handle, has it. Whoever holds the lock writes the leases row.
 *   lease_drop releases only the holder's own; lease_held answers from what
 *   the handle knows, without a round trip (0 once its connection broke).
 * - workload_state_set and rollout_put announce the change to wait_change
 *   on every handle (PostgreSQL: NOTIFY in the same transaction). */
struct co_store_ops {
    const char *name; /* "sqlite" | "postgres" */
    void (*close)(co_store *st);
    int (*schema_version)(co_store *st, int *out_version);

    int (*record)(co_store *st, const co_exchange *xs, size_t n);
    int (*exchanges)(co_store *st, const co_window_query *q, co_exchange_list *out);
    int (*window_summary)(co_store *st, const co_window_query *q, co_window_summary *out);
    int (*window_latencies)(co_store *st, const co_window_query *q, double **out, size_t *n);
    int (*pair)(co_store *st, const char *pair_id, co_pair *out);
    int (*pairs)(co_store *st, const char *workload, size_t limit, size_t offset,
                 co_pair **out, size_t *n);

    int (*eval_run_begin)(co_store *st, co_eval_run *run);
    int (*eval_results_add)(co_store *st, int64_t run_id, const co_eval_result *rs, size_t n);
    int (*eval_run_finish)(co_store *st, int64_t run_id, const char *status,
                           const char *summary_json);
    int (*eval_run_get)(co_store *st, int64_t run_id, co_eval_run *out);
    int (*eval_results_each)(co_store *st, int64_t run_id, co_eval_result_cb cb, void *ud);
    int (*baseline_put)(co_store *st, const char *workload, int64_t run_id, const char *json);
    int (*baseline_get)(co_store *st, const char *workload, char **out_json,
                        int64_t *out_run_id);
    int (*cache_get)(co_store *st, const char *model, const char *key, char **out_json);
    int (*cache_put)(co_store *st, const char *model, const char *key, const char *json);

    int (*workload_state_get)(co_store *st, const char *workload, co_workload_state *out);
    int (*workload_state_set)(co_store *st, const char *workload, const char *mode,
                              double percent, const char *by, int64_t *out_version);
    int (*workload_states)(co_store *st, int64_t since_version, co_workload_state **out,
                           size_t *n);
    int (*rollout_get)(co_store *st, const char *workload, co_rollout_state *out);
    int (*rollout_put)(co_store *st, co_rollout_state *s, int64_t expected_version);
    int (*rollout_event_add)(co_store *st, co_rollout_event *ev);
    int (*rollout_events)(co_store *st, const char *workload, int64_t since_id,
                          co_rollout_event_list *out);
    int (*incident_add)(co_store *st, co_incident *inc);
    int (*incident_get)(co_store *st, int64_t id, const char *workload, co_incident *out);

    int (*review_add)(co_store *st, const co_review *r);
    int (*reviews)(co_store *st, const char *pair_id, co_review **out, size_t *n);
    int (*feedback_add)(co_store *st, const co_feedback *f);
    int (*feedback_summary)(co_store *st, const co_window_query *q, int64_t *out_total,
                            int64_t *out_negative);
    int (*evidence_add)(co_store *st, co_evidence *e);
    int (*evidence)(co_store *st, const char *item, co_evidence **out, size_t *n);

    int (*gateway_beat)(co_store *st, const co_gateway_beat *b);
    int (*gateways)(co_store *st, int64_t seen_since_ms, co_gateway_beat **out, size_t *n);
    int (*lease_take)(co_store *st, const char *name, const char *holder, int64_t ttl_ms,
                      int *out_held);
    int (*lease_drop)(co_store *st, const char *name, const char *holder);
    int (*lease_held)(co_store *st, const char *name, const char *holder);
    int (*wait_change)(co_store *st, int64_t timeout_ms, int *out_changed);
};

struct co_store {
    const struct co_store_ops *ops;
};

/* Back-end constructors, called by co_store_open with the URL already split.
 * `path` is a file path or ":memory:". */
int co__store_sqlite_open(co_store **out, const char *path);

/* For tests: opens (creating if needed) an SQLite store and applies
 * migrations only up to max_version, so a test can build an "older" store. */
int co__store_sqlite_open_at(co_store **out, const char *path, int max_version);

/* `url` is the whole postgres:// or postgresql:// URL (checked by store.c
 * to carry no inline password). */
int co__store_pg_open(co_store **out, const char *url);
int co__store_pg_open_at(co_store **out, const char *url, int max_version);

/* co_store_open for any URL, migrating only up to max_version (tests build
 * "older" stores of either back end with it). */
int co__store_open_at(co_store **out, const char *url, int max_version);

#endif
