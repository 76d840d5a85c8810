/* Routing: which workload a request belongs to, and which arm (incumbent or
 * candidate) serves it, shadows it, or catches it on fallback.
 *
 * Three pieces:
 *
 *  - co_route_table: an immutable snapshot built from a co_config (plus
 *    runtime overrides of mode / percent / version from the store or the
 *    admin API). It owns copies of everything it needs (names, aliases,
 *    gateway API keys), so it outlives the co_config it was built from.
 *    Changing one workload's mode builds a new table (copy-on-write: the
 *    names, aliases and keys are shared by reference count, only the small
 *    per-workload mode array is copied).
 *
 *  - co_router: holds the current table. Workers take a reference at request
 *    start (co_router_acquire) and drop it when the request is done
 *    (co_route_table_release); the control plane swaps in a new table with
 *    co_router_publish. The next acquire on every worker sees the new table;
 *    requests in flight keep the table (and so the arm) they started with.
 *
 *  - co_route_resolve / co_route_decide: the per-request functions. Both only
 *    read the table: no allocation, no locks, no system calls.
 *
 * Reclamation (why it is safe to free old tables while readers run):
 * split reference counting. The router keeps the current table as ONE 64-bit
 * atomic word: (slot index << 54) | outer count, where the slot index names
 * one of CO_ROUTER_MAX_TABLES table slots. co_router_acquire is a single
 * atomic fetch_add(word, 1): in one indivisible step it learns which table
 * is current and registers itself as a holder of it, so there is no window
 * between "read the pointer" and "take the reference" in which a publisher
 * could free the table (the classic use-after-free of naive refcounting).
 * Each table has an inner count that starts at BIAS while published;
 * co_route_table_release does fetch_sub(inner, 1). co_router_publish
 * exchanges the word (collecting the outer count N of every acquire the old
 * table ever had) and adds N - BIAS to the old table's inner count: the
 * result is exactly the number of holders still in flight, and whoever
 * brings it to zero (the publisher, or the last reader to release) frees the
 * table. Costs per request: one atomic RMW on the router word and one on the
 * table (acq_rel), no loop, no lock; the only lock is a mutex serializing
 * publishers (control plane). The outer count has 54 bits: 10^16 acquires
 * of one table before it could overflow (~57 years at 10 M requests/s).
 * A retired table that is still held occupies a slot; publishing fails with
 * CO_EBUSY when all CO_ROUTER_MAX_TABLES slots hold live tables.
 *
 * Ownership: co_route_table_new / _with_mode / _with_states hand the caller
 * one reference; co_router_new and co_router_publish take that reference on
 * success (on error the caller still owns it); co_route_table_release drops
 * one. Strings in a co_route_workload or co_route_decision point into the
 * table and stay valid while the caller holds its reference. Each published
 * table keeps the router's memory alive, so tables may be released after
 * co_router_free. A table can be published once, to one router.
 *
 * Secrets: gateway API keys are read from the environment variables named in
 * match.api_keys_env once, when the table is built from a config; they are
 * compared in constant time, never copied into messages, and zeroed when the
 * last table sharing them is freed. */
#ifndef CUTOVER_ROUTE_H
#define CUTOVER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "cutover/config.h"
#include "cutover/error.h"
#include "cutover/store.h"

struct json_t; /* jansson */

/* Arms and the role an upstream call plays for its client request. */
enum co_arm { CO_ARM_NONE = -1, CO_ARM_INCUMBENT = 0, CO_ARM_CANDIDATE = 1, CO_ARM__COUNT = 2 };
enum co_role { CO_ROLE_SERVED = 0, CO_ROLE_SHADOW = 1, CO_ROLE_FALLBACK = 2, CO_ROLE__COUNT = 3 };
/* "incumbent" / "candidate" ("none" for CO_ARM_NONE); "served" / "shadow" /
 * "fallback". Static strings; "?" when out of range. */
const char *co_arm_name(int arm);
const char *co_role_name(int role);

/* How a request was matched to its workload. */
enum co_route_how {
    CO_ROUTE_BY_HEADER = 1,   /* X-Cutover-Workload: NAME */
    CO_ROUTE_BY_API_KEY,      /* Authorization: Bearer KEY / x-api-key: KEY */
    CO_ROUTE_BY_MATCH_HEADER, /* the workload's match.header */
    CO_ROUTE_BY_MODEL,        /* the request's model: an alias or the workload name */
};

#define CO_ROUTE_WORKLOAD_HEADER "X-Cutover-Workload"
#define CO_ROUTE_USER_HEADER "X-Cutover-User"

/* One workload as a table serves it. Read-only for callers. `index` is the
 * workload's position in the config and is the same in every table derived
 * from that config (metrics series are indexed by it). */
typedef struct co_route_workload {
    const char *name;
    int index;
    const char *incumbent;      /* config model names */
    const char *candidate;      /* NULL when the workload has none */
    int mode;                   /* enum co_mode */
    double percent;             /* canary percent 0..100 */
    double shadow_sample;       /* percent of requests shadowed in shadow mode */
    int fallback;               /* a failed candidate may be retried on the incumbent */
    const char *salt;           /* sticky salt in effect (rollout.salt or the name) */
    int64_t version;            /* 0 = as configured; else the store's version of the mode */
    unsigned canary_threshold;  /* buckets [0, this) go to the candidate: percent * 100 */
    unsigned shadow_threshold;  /* shadow_sample * 100 */
    uint64_t salt_seed;         /* xxHash64(salt): co_bucket(salt, k) == hash(k, salt_seed) % 10000 */
} co_route_workload;

typedef struct co_route_table co_route_table;
typedef struct co_router co_router;

/* Header lookup supplied by the caller: the value of header `name` (matched
 * case-insensitively, like evhttp_find_header) or NULL when absent. */
typedef const char *(*co_route_header_fn)(void *ud, const char *name);

/* ---- tables ------------------------------------------------------------- */

/* Builds a table from a validated config: modes as configured, version 0,
 * API keys read from the environment now. Unset or empty key variables and a
 * key shared by two workloads are reported in warnings (may be NULL; the
 * messages name variables, never values); they are not errors. */
int co_route_table_new(const co_config *cfg, co_route_table **out, co_diags *warnings);

/* Copy-on-write: a new table equal to old except that `workload` runs `mode`
 * at `percent` (0..100; the canary share, kept but unused by other modes).
 * The workload's version is left as it was: versions are the store's
 * (co_route_table_with_states), so a local change never hides a later stored
 * one; the table's generation tells local changes apart. CO_ENOENT for an unknown workload (the
 * message lists the workloads), CO_EINVAL for a bad mode or percent or a
 * mode that needs a candidate the workload lacks. */
int co_route_table_with_mode(const co_route_table *old, const char *workload, int mode, double percent,
                             co_route_table **out);

/* Applies states read from the store (co_store_workload_states): every state
 * whose version is above the workload's version in old. States for
 * workloads this table does not know are ignored (another config
 * generation); malformed ones (unknown mode, percent out of range, a mode the
 * workload cannot run) are skipped and described in problems (may be NULL).
 * *out is a new table when anything changed, else NULL. */
int co_route_table_with_states(const co_route_table *old, const co_workload_state *states, size_t n,
                               co_route_table **out, co_diags *problems);

/* Drops one reference; the last one frees the table. NULL is a no-op. */
void co_route_table_release(const co_route_table *t);

size_t co_route_table_count(const co_route_table *t);
/* The i-th workload (config order), NULL when out of range. */
const co_route_workload *co_route_table_workload(const co_route_table *t, size_t i);
/* A workload by exact name, NULL when unknown. */
const co_route_workload *co_route_table_find(const co_route_table *t, const char *name);
/* Increases by one with every derived table (config tables are 0). */
uint64_t co_route_table_generation(const co_route_table *t);

/* ---- the router ---------------------------------------------------------- */

#define CO_ROUTER_MAX_TABLES 1024u

/* Makes a router serving `initial` (takes the caller's reference on success). */
int co_router_new(co_route_table *initial, co_router **out);
/* Drops the router's reference to its current table and the owner's hold on
 * the router; tables still held by readers stay valid until released. */
void co_router_free(co_router *r);

/* The current table with one reference for the caller: one atomic RMW, never
 * blocks, never fails. Pair with co_route_table_release. */
const co_route_table *co_router_acquire(co_router *r);

/* Makes t current for every later acquire and releases the router's hold on
 * the previous table. Takes the caller's reference on success. CO_EINVAL if t
 * was already published; CO_EBUSY when every slot holds a live table. */
int co_router_publish(co_router *r, co_route_table *t);
/* The same, but only when the current table is `expected` (compare-and-swap
 * for read-modify-publish from several control threads); CO_ECONFLICT when
 * another publish got there first (t is then still the caller's). */
int co_router_publish_if(co_router *r, const co_route_table *expected, co_route_table *t);

/* ---- per request --------------------------------------------------------- */

/* Finds the request's workload, in this order:
 *   1. header X-Cutover-Workload: its value names a workload (an unknown name
 *      is an error, not a fall-through);
 *   2. the gateway API key (Authorization: Bearer KEY, then x-api-key: KEY)
 *      against every workload's keys, in constant time per key;
 *   3. a workload's match.header "Name: value" (value compared exactly after
 *      trimming blanks; first workload in config order wins);
 *   4. `model` (may be NULL): a match.models alias, else a workload name.
 * On success *out points into t and *how (may be NULL) says which rule
 * matched. CO_ENOENT when nothing matches, with a message listing the
 * workloads that exist (never a key). */
int co_route_resolve(const co_route_table *t, co_route_header_fn hdr, void *ud, const char *model,
                     const co_route_workload **out, int *how);

/* What to do with one request. Strings point into the table. */
typedef struct co_route_decision {
    const co_route_workload *workload;
    int mode;                   /* enum co_mode the decision was taken under */
    int served;                 /* enum co_arm: who answers the client */
    const char *served_model;
    int shadow;                 /* CO_ARM_CANDIDATE when a shadow call runs, else CO_ARM_NONE */
    const char *shadow_model;   /* NULL without a shadow */
    int fallback;               /* 1: the candidate serves and a failure may be retried on the incumbent */
    const char *fallback_model; /* the incumbent when fallback is 1, else NULL */
    unsigned bucket;            /* canary bucket 0..9999 (sticky or per request); 0 in other modes */
    int sticky;                 /* 1 when bucket came from a user key */
    int64_t version;            /* the workload's version in the table */
} co_route_decision;

/* Decides the arms for a request of workload w (which must come from t):
 *   incumbent -> incumbent serves; candidate -> candidate serves;
 *   shadow    -> incumbent serves, and the candidate shadows when
 *                xxHash64(request_id) mod 10000 < shadow_sample*100
 *                (deterministic per request id, uniform over ids);
 *   canary P  -> candidate when co_bucket(salt, user_key) < P*100, so a user
 *                stays on the same arm across requests, tables and
 *                replicas, and raising P only adds users; without a user key
 *                (NULL or "") the bucket is drawn from the request id.
 * request_id may be NULL only when it is not needed (CO_EINVAL otherwise). */
int co_route_decide(const co_route_table *t, const co_route_workload *w, const char *user_key,
                    const char *request_id, co_route_decision *d);

/* Where a user key came from (the return value of co_route_user_key). */
enum co_user_key_source {
    CO_USER_KEY_NONE = 0,
    CO_USER_KEY_OPENAI_USER,      /* body "user" */
    CO_USER_KEY_ANTHROPIC_USER,   /* body "metadata": {"user_id"} */
    CO_USER_KEY_HEADER,           /* X-Cutover-User */
    CO_USER_KEY_API_KEY,          /* "key:" + 128-bit hash of the gateway API key */
};
#define CO_USER_KEY_MAX 96

/* The sticky user key of a request, into out (always NUL-terminated; "" for
 * none): OpenAI `user`, Anthropic `metadata.user_id`, header X-Cutover-User,
 * else a hash of the gateway API key (never the key), else none. Values
 * longer than CO_USER_KEY_MAX-1 bytes are replaced by "h:" + their hash.
 * body (a parsed request, may be NULL) and hdr (may be NULL) are only read.
 * Returns the enum co_user_key_source. */
int co_route_user_key(const struct json_t *body, co_route_header_fn hdr, void *ud, char out[CO_USER_KEY_MAX]);

#endif
