/* The SQLite back end of the store: the schema and its versioned migrations,
 * connection setup (WAL, busy timeout, foreign keys), the per-handle cache of
 * prepared statements, and every store operation as SQL. One sq_store per
 * thread; several handles (threads or processes) may share one file, and WAL
 * lets readers proceed while one writer commits.
 *
 * Leases are locks, not timed rows: an open-file-description lock
 * (F_OFD_SETLK, Linux) on a side file "<db>-lease-<name>" (0600) next to the
 * database. The kernel releases it when the handle closes the file or its
 * process dies, however it dies; being per open file description, two
 * handles in one process are two holders (a POSIX record lock would be per
 * process and vanish when any descriptor of the file closes). The `leases`
 * row is information only, written by the lock's holder. ":memory:" stores
 * are private to their handle: the lease is per handle, no file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/store_impl.h"
#include "cutover/buf.h"
#include "cutover/error.h"
#include "cutover/util.h"

/* PRAGMA application_id of a cutover store ("CUTO"): lets open refuse a file
 * that belongs to some other program instead of adding tables to it. */
#define SQ_APP_ID 0x4355544F
#define SQ_BUSY_TIMEOUT_MS 5000

/* ---- schema -------------------------------------------------------------- */

/* v1: what the gateway and the rollout controller need. */
static const char SQL_V1[] =
    "PRAGMA application_id = 1129665615;" /* SQ_APP_ID in decimal */
    "CREATE TABLE exchanges ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT,"
    "  pair_id TEXT,"
    "  ts_ms INTEGER NOT NULL,"
    "  workload TEXT NOT NULL,"
    "  arm TEXT NOT NULL CHECK (arm IN ('incumbent','candidate')),"
    "  role TEXT NOT NULL CHECK (role IN ('served','shadow','fallback')),"
    "  model TEXT,"
    "  api TEXT,"
    "  user_key TEXT,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  error_class TEXT,"
    "  stream INTEGER NOT NULL DEFAULT 0 CHECK (stream IN (0,1)),"
    "  latency_ms REAL NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),"
    "  ttft_ms REAL,"
    "  tokens_in INTEGER NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),"
    "  tokens_out INTEGER NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),"
    "  tokens_cached INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0),"
    "  cost_usd REAL NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),"
    "  finish_reason TEXT,"
    /* Bulky text last: window scans that skip it never read overflow pages. */
    "  request_json TEXT,"
    "  output_text TEXT"
    ");"
    "CREATE INDEX exchanges_workload_arm_ts ON exchanges(workload, arm, ts_ms);"
    "CREATE INDEX exchanges_pair ON exchanges(pair_id, role) WHERE pair_id IS NOT NULL;"
    "CREATE INDEX exchanges_request ON exchanges(request_id) WHERE request_id IS NOT NULL;"

    /* version is one counter across all workloads so a gateway can ask for
     * "everything changed since the version I last saw". */
    "CREATE TABLE workload_state ("
    "  workload TEXT PRIMARY KEY,"
    "  mode TEXT NOT NULL CHECK (mode IN ('incumbent','candidate','shadow','canary')),"
    "  percent REAL NOT NULL DEFAULT 0 CHECK (percent >= 0 AND percent <= 100),"
    "  version INTEGER NOT NULL UNIQUE,"
    "  updated_ms INTEGER NOT NULL,"
    "  updated_by TEXT"
    ");"

    "CREATE TABLE rollout_state ("
    "  workload TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL CHECK (state IN ('pending','shadow','canary','paused',"
    "                                       'promoted','finalized','rolled_back')),"
    "  stage INTEGER NOT NULL DEFAULT 0 CHECK (stage >= 0),"
    "  stage_started_ms INTEGER NOT NULL DEFAULT 0,"
    "  hold_elapsed_ms INTEGER NOT NULL DEFAULT 0 CHECK (hold_elapsed_ms >= 0),"
    "  version INTEGER NOT NULL CHECK (version > 0),"
    "  updated_ms INTEGER NOT NULL,"
    "  data_json TEXT"
    ");"

    /* AUTOINCREMENT: readers page with "id > last seen", so an id must never
     * be handed out twice. */
    "CREATE TABLE rollout_events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  workload TEXT NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  from_state TEXT,"
    "  to_state TEXT,"
    "  reason TEXT,"
    "  metrics_json TEXT"
    ");"
    "CREATE INDEX rollout_events_workload ON rollout_events(workload, id);"

    "CREATE TABLE incidents ("
    "  id INTEGER PRIMARY KEY,"
    "  workload TEXT NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  trigger_name TEXT,"
    "  report_md TEXT,"
    "  data_json TEXT"
    ");"
    "CREATE INDEX incidents_workload_ts ON incidents(workload, ts_ms);"
    "CREATE INDEX incidents_ts ON incidents(ts_ms);"

    /* One vote per request: a user who changes their mind replaces it. */
    "CREATE TABLE feedback ("
    "  request_id TEXT PRIMARY KEY,"
    "  score INTEGER NOT NULL CHECK (score IN (-1, 0, 1)),"
    "  comment TEXT,"
    "  ts_ms INTEGER NOT NULL"
    ");"

    /* One verdict per reviewer per pair; a second one replaces the first. */
    "CREATE TABLE reviews ("
    "  id INTEGER PRIMARY KEY,"
    "  pair_id TEXT NOT NULL,"
    "  reviewer TEXT NOT NULL,"
    "  verdict TEXT NOT NULL CHECK (verdict IN ('candidate_better','same',"
    "                                           'incumbent_better','both_bad')),"
    "  note TEXT,"
    "  ts_ms INTEGER NOT NULL,"
    "  UNIQUE (pair_id, reviewer)"
    ");"
    "CREATE INDEX reviews_ts ON reviews(ts_ms);";

/* v2: the eval engine, the response cache and the migration plan. */
static const char SQL_V2[] =
    "CREATE TABLE eval_runs ("
    "  id INTEGER PRIMARY KEY,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  suite TEXT NOT NULL,"
    "  config_json TEXT,"
    "  summary_json TEXT,"
    "  status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running','done','failed'))"
    ");"
    "CREATE INDEX eval_runs_started ON eval_runs(started_ms);"

    "CREATE TABLE eval_results ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,"
    "  case_id TEXT NOT NULL,"
    "  workload TEXT,"
    "  arm TEXT NOT NULL,"
    "  repeat INTEGER NOT NULL DEFAULT 0 CHECK (repeat >= 0),"
    "  passed INTEGER NOT NULL CHECK (passed IN (0,1)),"
    "  score REAL,"
    "  latency_ms REAL,"
    "  cost_usd REAL,"
    "  tokens_in INTEGER,"
    "  tokens_out INTEGER,"
    "  output_text TEXT,"
    "  detail_json TEXT,"
    "  error TEXT,"
    /* a second result for the same case/arm/repeat is a runner bug: refuse it */
    "  UNIQUE (run_id, case_id, workload, arm, repeat)"
    ");"

    "CREATE TABLE baselines ("
    "  workload TEXT PRIMARY KEY,"
    "  run_id INTEGER REFERENCES eval_runs(id) ON DELETE SET NULL,"
    "  json TEXT NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX baselines_run ON baselines(run_id);"

    "CREATE TABLE response_cache ("
    "  model TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  json TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (model, key)"
    ");"

    "CREATE TABLE plan_evidence ("
    "  id INTEGER PRIMARY KEY,"
    "  item TEXT NOT NULL,"
    "  workload TEXT,"
    "  ts_ms INTEGER NOT NULL,"
    "  data_json TEXT"
    ");"
    "CREATE INDEX plan_evidence_item ON plan_evidence(item, ts_ms);"

    /* Review pages and role-filtered windows ("served traffic of w since t")
     * seek here instead of filtering the (workload, arm, ts) index. */
    "CREATE INDEX exchanges_workload_role_ts ON exchanges(workload, role, ts_ms);"
    /* Windows across all workloads (inventory, cost). */
    "CREATE INDEX exchanges_ts ON exchanges(ts_ms);";

/* v3: the fleet — which gateways are alive and which mode version each
 * serves (rollback drills wait on it), and named leases (one rollout
 * controller at a time). */
static const char SQL_V3[] =
    "CREATE TABLE gateways ("
    "  id TEXT PRIMARY KEY,"
    "  host TEXT,"
    "  pid INTEGER,"
    "  started_ms INTEGER NOT NULL,"
    "  seen_ms INTEGER NOT NULL,"
    "  applied_version INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE leases ("
    "  name TEXT PRIMARY KEY,"
    "  holder TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL"
    ");";

/* v4: the same text on every back end (store_impl.h). */
static const char SQL_V4[] = CO__STORE_SQL_V4;

/* v5: the same text on every back end (store_impl.h). */
static const char SQL_V5[] = CO__STORE_SQL_V5;

struct sq_store;

struct sq_migration {
    int version;
    const char *what;
    const char *sql;                                   /* the step, or NULL: */
    int (*step)(struct sq_store *s, const char *what); /* run inside the step's transaction */
};

static int sq_v6_checks(struct sq_store *s, const char *what);

/* Append only: a released step is never edited, only followed by a new one. */
static const struct sq_migration sq_migrations[] = {
    {1, "exchanges, workload and rollout state, incidents, feedback, reviews", SQL_V1, NULL},
    {2, "eval runs and results, baselines, response cache, plan evidence", SQL_V2, NULL},
    {3, "gateway heartbeats, leases", SQL_V3, NULL},
    {4, "exactly-once exchanges: (request_id, role) unique", SQL_V4, NULL},
    {5, "pair lookups through the request index; exchanges_pair only for other pair ids", SQL_V5, NULL},
    {6, "CHECK constraints on exchanges as ORs", NULL, sq_v6_checks},
};
_Static_assert(sizeof sq_migrations / sizeof sq_migrations[0] == CO__STORE_SCHEMA_LATEST,
               "one migration step per schema version");

/* ---- statements ---------------------------------------------------------- */

#define X_META(a)                                                               \
    a "id, " a "request_id, " a "pair_id, " a "ts_ms, " a "workload, " a "arm, " \
    a "role, " a "model, " a "api, " a "user_key, " a "status, " a "error_class, " \
    a "stream, " a "latency_ms, " a "ttft_ms, " a "tokens_in, " a "tokens_out, "    \
    a "tokens_cached, " a "cost_usd, " a "finish_reason"
#define X_TEXT(a) a "request_json, " a "output_text"
#define X_ALL(a) X_META(a) ", " X_TEXT(a)
enum { X_NCOLS = 22 };

#define SQ_X_INSERT_HEAD                                                                         \
    "INSERT INTO exchanges (request_id, pair_id, ts_ms, workload, arm, role, model, api,"        \
    " user_key, status, error_class, stream, latency_ms, ttft_ms, tokens_in, tokens_out,"        \
    " tokens_cached, cost_usd, finish_reason, request_json, output_text)"
#define SQ_X_ROW_PARAMS "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
enum { SQ_X_PARAMS = 21 };
/* Rows per INSERT when recording, largest first; the last is 1. */
static const int sq_x_rows[] = {64, 8, 1};
enum { SQ_X_SIZES = sizeof sq_x_rows / sizeof sq_x_rows[0] };

enum sq_stmt_id {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_USER_VERSION,
    S_X_INSERT, S_PAIR, S_PAIRS_W, S_PAIRS_ALL,
    S_RUN_INSERT, S_RUN_FINISH, S_RUN_GET, S_RUN_EXISTS, S_RESULT_INSERT, S_RESULTS,
    S_BASELINE_PUT, S_BASELINE_GET, S_CACHE_GET, S_CACHE_PUT,
    S_WS_GET, S_WS_SET, S_WS_LIST,
    S_RO_GET, S_RO_INSERT, S_RO_UPDATE, S_RO_VERSION,
    S_EV_INSERT, S_EV_LIST_W, S_EV_LIST_ALL,
    S_INC_INSERT, S_INC_ID, S_INC_LATEST, S_INC_LATEST_W,
    S_REV_UPSERT, S_REV_LIST_P, S_REV_LIST_ALL,
    S_FB_UPSERT,
    S_EVID_INSERT, S_EVID_LIST_I, S_EVID_LIST_ALL,
    S_GW_BEAT, S_GW_LIST, S_LEASE_ROW, S_LEASE_DROP,
    S_DATA_VERSION, S_STATE_SIG,
    S__COUNT
};

static const char *const sq_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_USER_VERSION] = "PRAGMA user_version",

    /* a batch sent again: (request_id, role) is unique (v4) */
    [S_X_INSERT] = SQ_X_INSERT_HEAD " VALUES (" SQ_X_ROW_PARAMS ") ON CONFLICT DO NOTHING",
    [S_PAIR] = "SELECT " X_ALL("") " FROM exchanges"
               " WHERE role IN ('served', 'shadow') AND " CO__STORE_SQL_PAIR_IS("?1") " ORDER BY id",
    /* The first shadow of each served exchange; LIMIT -1 is "no limit". */
    [S_PAIRS_W] = "SELECT " X_ALL("s.") ", " X_ALL("h.") " FROM exchanges s"
                  " JOIN exchanges h ON h.id = (SELECT min(id) FROM exchanges"
                  "   WHERE role = 'shadow' AND " CO__STORE_SQL_PAIR_IS("s.pair_id") ")"
                  " WHERE s.workload = ?1 AND s.role = 'served' AND s.pair_id IS NOT NULL"
                  " ORDER BY s.ts_ms DESC, s.id DESC LIMIT ?2 OFFSET ?3",
    [S_PAIRS_ALL] = "SELECT " X_ALL("s.") ", " X_ALL("h.") " FROM exchanges s"
                    " JOIN exchanges h ON h.id = (SELECT min(id) FROM exchanges"
                    "   WHERE role = 'shadow' AND " CO__STORE_SQL_PAIR_IS("s.pair_id") ")"
                    " WHERE s.role = 'served' AND s.pair_id IS NOT NULL"
                    " ORDER BY s.ts_ms DESC, s.id DESC LIMIT ?1 OFFSET ?2",

    [S_RUN_INSERT] = "INSERT INTO eval_runs (started_ms, suite, config_json, status)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [S_RUN_FINISH] = "UPDATE eval_runs SET status = ?2, summary_json = ?3, finished_ms = ?4"
                     " WHERE id = ?1",
    [S_RUN_GET] = "SELECT id, started_ms, finished_ms, suite, config_json, summary_json, status"
                  " FROM eval_runs WHERE id = ?1",
    [S_RUN_EXISTS] = "SELECT 1 FROM eval_runs WHERE id = ?1",
    [S_RESULT_INSERT] =
        "INSERT INTO eval_results (run_id, case_id, workload, arm, repeat, passed, score,"
        " latency_ms, cost_usd, tokens_in, tokens_out, output_text, detail_json, error)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [S_RESULTS] = "SELECT case_id, workload, arm, repeat, passed, score, latency_ms, cost_usd,"
                  " tokens_in, tokens_out, output_text, detail_json, error"
                  " FROM eval_results WHERE run_id = ?1 ORDER BY id",

    [S_BASELINE_PUT] = "INSERT INTO baselines (workload, run_id, json, updated_ms)"
                       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workload) DO UPDATE SET"
                       " run_id = excluded.run_id, json = excluded.json,"
                       " updated_ms = excluded.updated_ms",
    [S_BASELINE_GET] = "SELECT json, run_id FROM baselines WHERE workload = ?1",
    [S_CACHE_GET] = "SELECT json FROM response_cache WHERE model = ?1 AND key = ?2",
    [S_CACHE_PUT] = "INSERT INTO response_cache (model, key, json, created_ms)"
                    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (model, key) DO UPDATE SET"
                    " json = excluded.json, created_ms = excluded.created_ms",

    [S_WS_GET] = "SELECT workload, mode, percent, version, updated_ms, updated_by"
                 " FROM workload_state WHERE workload = ?1",
    /* A single statement takes the write lock before it reads max(version),
     * so two gateways setting modes at once still get distinct versions. */
    [S_WS_SET] = "INSERT INTO workload_state (workload, mode, percent, version, updated_ms,"
                 " updated_by) VALUES (?1, ?2, ?3,"
                 " (SELECT coalesce(max(version), 0) + 1 FROM workload_state), ?4, ?5)"
                 " ON CONFLICT (workload) DO UPDATE SET mode = excluded.mode,"
                 " percent = excluded.percent, version = excluded.version,"
                 " updated_ms = excluded.updated_ms, updated_by = excluded.updated_by"
                 " RETURNING version",
    [S_WS_LIST] = "SELECT workload, mode, percent, version, updated_ms, updated_by"
                  " FROM workload_state WHERE version > ?1 ORDER BY version",

    [S_RO_GET] = "SELECT workload, state, stage, stage_started_ms, hold_elapsed_ms, version,"
                 " data_json FROM rollout_state WHERE workload = ?1",
    [S_RO_INSERT] = "INSERT INTO rollout_state (workload, state, stage, stage_started_ms,"
                    " hold_elapsed_ms, data_json, updated_ms, version)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)"
                    " ON CONFLICT (workload) DO NOTHING RETURNING version",
    [S_RO_UPDATE] = "UPDATE rollout_state SET state = ?2, stage = ?3, stage_started_ms = ?4,"
                    " hold_elapsed_ms = ?5, data_json = ?6, updated_ms = ?7,"
                    " version = version + 1 WHERE workload = ?1 AND version = ?8"
                    " RETURNING version",
    [S_RO_VERSION] = "SELECT version FROM rollout_state WHERE workload = ?1",

    [S_EV_INSERT] = "INSERT INTO rollout_events (workload, ts_ms, actor, kind, from_state,"
                    " to_state, reason, metrics_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_EV_LIST_W] = "SELECT id, workload, ts_ms, actor, kind, from_state, to_state, reason,"
                    " metrics_json FROM rollout_events WHERE workload = ?1 AND id > ?2"
                    " ORDER BY id",
    [S_EV_LIST_ALL] = "SELECT id, workload, ts_ms, actor, kind, from_state, to_state, reason,"
                      " metrics_json FROM rollout_events WHERE id > ?1 ORDER BY id",

    [S_INC_INSERT] = "INSERT INTO incidents (workload, ts_ms, trigger_name, report_md, data_json)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_INC_ID] = "SELECT id, workload, ts_ms, trigger_name, report_md, data_json"
                 " FROM incidents WHERE id = ?1",
    [S_INC_LATEST] = "SELECT id, workload, ts_ms, trigger_name, report_md, data_json"
                     " FROM incidents ORDER BY ts_ms DESC, id DESC LIMIT 1",
    [S_INC_LATEST_W] = "SELECT id, workload, ts_ms, trigger_name, report_md, data_json"
                       " FROM incidents WHERE workload = ?1 ORDER BY ts_ms DESC, id DESC LIMIT 1",

    [S_REV_UPSERT] = "INSERT INTO reviews (pair_id, reviewer, verdict, note, ts_ms)"
                     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (pair_id, reviewer) DO UPDATE"
                     " SET verdict = excluded.verdict, note = excluded.note,"
                     " ts_ms = excluded.ts_ms",
    [S_REV_LIST_P] = "SELECT pair_id, reviewer, verdict, note, ts_ms FROM reviews"
                     " WHERE pair_id = ?1 ORDER BY ts_ms, id",
    [S_REV_LIST_ALL] = "SELECT pair_id, reviewer, verdict, note, ts_ms FROM reviews"
                       " ORDER BY ts_ms, id",

    [S_FB_UPSERT] = "INSERT INTO feedback (request_id, score, comment, ts_ms)"
                    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (request_id) DO UPDATE SET"
                    " score = excluded.score, comment = excluded.comment, ts_ms = excluded.ts_ms",

    [S_EVID_INSERT] = "INSERT INTO plan_evidence (item, workload, ts_ms, data_json)"
                      " VALUES (?1, ?2, ?3, ?4)",
    [S_EVID_LIST_I] = "SELECT id, item, workload, ts_ms, data_json FROM plan_evidence"
                      " WHERE item = ?1 ORDER BY ts_ms, id",
    [S_EVID_LIST_ALL] = "SELECT id, item, workload, ts_ms, data_json FROM plan_evidence"
                        " ORDER BY ts_ms, id",

    [S_GW_BEAT] = "INSERT INTO gateways (id, host, pid, started_ms, seen_ms, applied_version)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET"
                  " seen_ms = excluded.seen_ms, applied_version = excluded.applied_version",
    [S_GW_LIST] = "SELECT id, host, pid, started_ms, seen_ms, applied_version FROM gateways"
                  " WHERE seen_ms >= ?1 ORDER BY id",
    /* Written by the lease's holder (the lock decides, see the top). */
    [S_LEASE_ROW] = "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                    " expires_ms = excluded.expires_ms",
    [S_LEASE_DROP] = "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
    /* Moves when another connection commits (any table). */
    [S_DATA_VERSION] = "PRAGMA data_version",
    /* Moves on every workload or rollout state change: one version counter
     * for the former, a per-row one (only ever incremented) for the latter. */
    [S_STATE_SIG] = "SELECT (SELECT coalesce(max(version), 0) FROM workload_state),"
                    " (SELECT count(*) FROM rollout_state),"
                    " (SELECT coalesce(sum(version), 0) FROM rollout_state)",
};

/* Window queries have optional filters. Rather than one statement with
 * "(?1 IS NULL OR workload = ?1)" (which defeats the indexes), each filter
 * combination gets its own statement, built and prepared on first use. */
enum { W_ROWS, W_SUMMARY, W_LATENCIES, W_FEEDBACK, W__KINDS };
enum {
    WM_WORKLOAD = 1, WM_ARM = 2, WM_ROLE = 4, WM_UNTIL = 8, WM_LIMIT = 16, WM_TEXT = 32,
    WM__COUNT = 64
};

typedef struct sq_store {
    co_store base; /* first: a co_store * is a sq_store * */
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[S__COUNT];
    sqlite3_stmt *win[W__KINDS][WM__COUNT];
    sqlite3_stmt *xins[SQ_X_SIZES]; /* multi-row exchange inserts (the last unused) */
    /* wait_change: what was seen last, and whether this handle changed state
     * itself (its own commits do not move data_version). */
    int watching, self_changed;
    int64_t data_version, sig[3];
    /* leases this handle holds: the side file's descriptor carries the lock
     * (-1 for a ":memory:" store) */
    struct sq_lease {
        char *name, *holder;
        int fd;
    } *leases;
    size_t nleases;
} sq_store;

static const struct co_store_ops sq_ops;

/* ---- errors -------------------------------------------------------------- */

static int sq_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CO_EBUSY;
    case SQLITE_NOMEM:
        return CO_ENOMEM;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return CO_EEXIST;
        return CO_EINVAL; /* CHECK, NOT NULL, FOREIGN KEY: the caller's data */
    default:
        return CO_ESTORE;
    }
}

/* Sets the error slot to "<what>: <sqlite's message>" and returns the code. */
static int sq_fail(sq_store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sq_fail(sq_store *s, int rc, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return co_error_set(sq_code(rc), "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static int sq_oom(void) { return co_error_set(CO_ENOMEM, "out of memory reading from the store"); }

/* ---- statement cache ----------------------------------------------------- */

static int sq_prepare(sq_store *s, const char *sql, sqlite3_stmt **slot)
{
    if (!*slot) {
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return sq_fail(s, rc, "store %s: preparing a statement", s->path);
    }
    /* Only reachable from an eval results callback that calls back into the
     * same handle with the statement still being stepped. */
    if (sqlite3_stmt_busy(*slot))
        return co_error_set(CO_EBUSY, "store handle used re-entrantly while a query on it is "
                                      "still running (use another handle)");
    return 0;
}

static int sq_stmt(sq_store *s, enum sq_stmt_id id, sqlite3_stmt **out)
{
    *out = NULL;
    int rc = sq_prepare(s, sq_sql[id], &s->stmt[id]);
    if (rc == 0)
        *out = s->stmt[id];
    return rc;
}

/* Ready for the next use: cached statements are reset, never finalized. */
static void sq_release(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

static int sq_exec_id(sq_store *s, enum sq_stmt_id id, const char *what)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(s, id, &st);
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
        rc = sq_fail(s, src, "%s", what);
    sq_release(st);
    return rc;
}

static int sq_begin(sq_store *s) { return sq_exec_id(s, S_BEGIN, "starting a write transaction"); }
static int sq_commit(sq_store *s) { return sq_exec_id(s, S_COMMIT, "committing"); }

/* Keeps the caller's error: the rollback's own outcome does not matter. */
static void sq_rollback(sq_store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return; /* SQLite already rolled back (or no transaction was open) */
    char saved[1024];
    int status = co_error_last_status();
    snprintf(saved, sizeof saved, "%s", co_error_last());
    sq_exec_id(s, S_ROLLBACK, "rolling back");
    co_error_set(status, "%s", saved);
}

/* Steps a statement that returns no row; NULL text binds as SQL NULL. */
static int sq_step_done(sq_store *s, sqlite3_stmt *st, const char *what)
{
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        return 0;
    return sq_fail(s, src, "%s", what);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* A 32-hex id field (not always NUL-terminated at 32); empty binds NULL. */
static void bind_id(sqlite3_stmt *st, int i, const char *id)
{
    if (id[0])
        sqlite3_bind_text(st, i, id, (int)strnlen(id, 32), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_named_int64(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i)
        sqlite3_bind_int64(st, i, v);
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* "No limit" is LIMIT -1 in SQLite. */
static int64_t sq_limit(size_t limit)
{
    if (limit == 0)
        return -1;
    return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

/* ---- reading columns ----------------------------------------------------- */

static const char *col_text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

/* A heap copy of a text column (NULL stays NULL). On failure sets *rc once. */
static char *col_dup(sqlite3_stmt *st, int col, int *rc)
{
    const char *t = col_text(st, col);
    if (!t)
        return NULL;
    char *d = strdup(t);
    if (!d && *rc == 0)
        *rc = sq_oom();
    return d;
}

/* Room for one more element in a growing array: returns the (possibly
 * moved) array, or NULL with the old one untouched when memory runs out. */
static void *vec_room(void *v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(v, nc * elem);
    if (!p)
        return NULL;
    *cap = nc;
    return p;
}

static void copy_id(char dst[33], const char *src)
{
    size_t n = src ? strnlen(src, 32) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reads the X_ALL columns starting at c0 into row, with every string in one
 * allocation (the row's `strings`). */
static int read_exchange(sqlite3_stmt *st, int c0, co_exchange_row *row)
{
    static const int tcols[] = {4, 5, 6, 7, 8, 9, 11, 19, 20, 21};
    enum { NT = sizeof tcols / sizeof tcols[0] };
    co_exchange *x = &row->x;
    const char **dst[NT] = {&x->workload, &x->arm, &x->role, &x->model, &x->api,
                            &x->user_key, &x->error_class, &x->finish_reason,
                            &x->request_json, &x->output_text};
    memset(row, 0, sizeof *row);

    const char *src[NT];
    size_t len[NT], total = 0;
    for (int k = 0; k < NT; k++) {
        src[k] = col_text(st, c0 + tcols[k]);
        len[k] = src[k] ? (size_t)sqlite3_column_bytes(st, c0 + tcols[k]) : 0;
        if (!src[k] && sqlite3_column_type(st, c0 + tcols[k]) != SQLITE_NULL)
            return sq_oom();
        if (src[k])
            total += len[k] + 1;
    }
    char *p = malloc(total ? total : 1);
    if (!p)
        return sq_oom();
    row->strings = p;
    for (int k = 0; k < NT; k++) {
        if (!src[k])
            continue;
        memcpy(p, src[k], len[k]);
        p[len[k]] = '\0';
        *dst[k] = p;
        p += len[k] + 1;
    }

    row->id = sqlite3_column_int64(st, c0 + 0);
    copy_id(x->request_id, col_text(st, c0 + 1));
    copy_id(x->pair_id, col_text(st, c0 + 2));
    x->ts_ms = sqlite3_column_int64(st, c0 + 3);
    x->status = sqlite3_column_int(st, c0 + 10);
    x->stream = sqlite3_column_int(st, c0 + 12);
    x->latency_ms = sqlite3_column_double(st, c0 + 13);
    x->ttft_ms = sqlite3_column_type(st, c0 + 14) == SQLITE_NULL
                     ? -1.0 : sqlite3_column_double(st, c0 + 14);
    x->tokens_in = sqlite3_column_int64(st, c0 + 15);
    x->tokens_out = sqlite3_column_int64(st, c0 + 16);
    x->tokens_cached = sqlite3_column_int64(st, c0 + 17);
    x->cost_usd = sqlite3_column_double(st, c0 + 18);
    return 0;
}

/* ---- open, migrate, close ------------------------------------------------ */

static int sq_pragma_int(sq_store *s, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, src = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = sq_fail(s, src, "store %s: reading '%s'", s->path, sql);
    sqlite3_finalize(st);
    return rc;
}

static int sq_exec(sq_store *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int src = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (src == SQLITE_OK)
        return 0;
    int rc = co_error_set(sq_code(src), "store %s: %s: %s", s->path, what,
                          msg ? msg : sqlite3_errstr(src));
    sqlite3_free(msg);
    return rc;
}

static int sq_too_new(sq_store *s, int version)
{
    return co_error_set(CO_ESCHEMA,
                        "store %s has schema version %d, but this cutover only knows versions "
                        "up to %d: upgrade cutover to use this store",
                        s->path, version, CO__STORE_SCHEMA_LATEST);
}

/* Refuses a database some other program owns, before adding tables to it.
 * The header and the table count are read in one read transaction: another
 * process may be creating the schema at this moment, and its tables, its
 * application_id and its user_version appear together. */
static int sq_check_owner(sq_store *s)
{
    int app_id = 0, objects = 0, version = 0, rc;
    if ((rc = sq_exec(s, "BEGIN", "reading the store header")))
        return rc;
    rc = sq_pragma_int(s, "PRAGMA application_id", &app_id);
    if (!rc)
        rc = sq_pragma_int(s, "PRAGMA user_version", &version);
    if (!rc && app_id != SQ_APP_ID)
        rc = sq_pragma_int(s, "SELECT count(*) FROM sqlite_schema", &objects);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc || app_id == SQ_APP_ID)
        return rc;
    if (app_id != 0 || version != 0 || objects != 0)
        return co_error_set(CO_ESTORE,
                            "store %s is an SQLite database that does not belong to cutover "
                            "(application_id %d, %d schema objects): refusing to change it",
                            s->path, app_id, objects);
    return 0;
}

/* v6. SQLite evaluates a CHECK of the form `x IN (list of constants)`
 * through a temporary table it builds and clears on every INSERT statement:
 * about a fifth of the recorder's work per exchange. The same checks written
 * with OR accept exactly the same rows without it. Only a constraint's text
 * changes, so this is the edit SQLite documents for changing a CHECK in
 * place (sqlite_schema under writable_schema, then schema_version + 1), not
 * a table rebuild. A connection that may not write the schema (a library
 * built with SQLITE_DBCONFIG_DEFENSIVE on) keeps the IN form: the same rows,
 * slower inserts. */
static int sq_v6_checks(struct sq_store *s, const char *what)
{
    int cookie = 0, rc;
    if ((rc = sq_pragma_int(s, "PRAGMA schema_version", &cookie)))
        return rc;
    if (sqlite3_exec(s->db, "PRAGMA writable_schema = ON", NULL, NULL, NULL) != SQLITE_OK)
        return 0;
    int src = sqlite3_exec(s->db,
                           "UPDATE sqlite_master SET sql = "
                           "replace(replace(replace(sql,"
                           " 'CHECK (arm IN (''incumbent'',''candidate''))',"
                           " 'CHECK (arm = ''incumbent'' OR arm = ''candidate'')'),"
                           " 'CHECK (role IN (''served'',''shadow'',''fallback''))',"
                           " 'CHECK (role = ''served'' OR role = ''shadow'' OR role = ''fallback'')'),"
                           " 'CHECK (stream IN (0,1))', 'CHECK (stream = 0 OR stream = 1)')"
                           " WHERE type = 'table' AND name = 'exchanges'",
                           NULL, NULL, NULL);
    int changed = src == SQLITE_OK ? sqlite3_changes(s->db) : 0;
    if (changed) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA schema_version = %d", cookie + 1);
        rc = sq_exec(s, set, what);
    }
    sqlite3_exec(s->db, "PRAGMA writable_schema = OFF", NULL, NULL, NULL);
    return rc;
}

/* Each step runs in its own IMMEDIATE transaction and re-reads the version
 * inside it, so two processes opening a fresh store at once apply each step
 * exactly once (the second waits, then finds it done). */
static int sq_migrate(sq_store *s, int max_version)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof sq_migrations / sizeof sq_migrations[0]; i++) {
        const struct sq_migration *m = &sq_migrations[i];
        if (m->version > max_version)
            break;
        int version = 0;
        char what[160];
        if ((rc = sq_exec(s, "BEGIN IMMEDIATE", "starting a schema migration")))
            goto done;
        if ((rc = sq_pragma_int(s, "PRAGMA user_version", &version)))
            goto done;
        if (version > CO__STORE_SCHEMA_LATEST) {
            rc = sq_too_new(s, version);
            goto done;
        }
        if (version < m->version) {
            snprintf(what, sizeof what, "migrating the schema to version %d (%s)", m->version,
                     m->what);
            if ((rc = m->sql ? sq_exec(s, m->sql, what) : m->step(s, what)))
                goto done;
            char set[48];
            snprintf(set, sizeof set, "PRAGMA user_version = %d", m->version);
            if ((rc = sq_exec(s, set, what)))
                goto done;
        }
        if ((rc = sq_exec(s, "COMMIT", "committing a schema migration")))
            goto done;
    }
done:
    if (rc && !sqlite3_get_autocommit(s->db)) {
        char saved[1024];
        int status = co_error_last_status();
        snprintf(saved, sizeof saved, "%s", co_error_last());
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        co_error_set(status, "%s", saved);
    }
    return rc;
}

static void sq_close(co_store *st)
{
    sq_store *s = (sq_store *)st;
    if (!s)
        return;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    for (int k = 0; k < W__KINDS; k++)
        for (int m = 0; m < WM__COUNT; m++)
            sqlite3_finalize(s->win[k][m]);
    for (int k = 0; k < SQ_X_SIZES; k++)
        sqlite3_finalize(s->xins[k]);
    /* _v2: even if something were still open, the handle is released once it
     * finishes instead of leaking. */
    sqlite3_close_v2(s->db);
    for (size_t i = 0; i < s->nleases; i++) { /* closing the file releases the lock */
        if (s->leases[i].fd >= 0)
            close(s->leases[i].fd);
        free(s->leases[i].name);
        free(s->leases[i].holder);
    }
    free(s->leases);
    free(s->path);
    free(s);
}

/* A clearer message than SQLite's "unable to open database file". */
static int sq_cantopen(sq_store *s, int src)
{
    char *dir = strdup(s->path);
    struct stat sb;
    int rc;
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        if (stat(dir, &sb) != 0) {
            rc = co_error_set(CO_ESTORE, "cannot open store %s: directory %s does not exist",
                              s->path, dir);
            goto done;
        }
    }
    rc = co_error_set(CO_ESTORE, "cannot open store %s: %s", s->path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
done:
    free(dir);
    return rc;
}

int co__store_sqlite_open_at(co_store **out, const char *path, int max_version)
{
    sq_store *s = NULL;
    int rc = 0, src, version = 0;
    *out = NULL;
    if (max_version < 0 || max_version > CO__STORE_SCHEMA_LATEST)
        return co_error_set(CO_EINVAL, "schema version %d is not between 0 and %d", max_version,
                            CO__STORE_SCHEMA_LATEST);

    s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        rc = co_error_set(CO_ENOMEM, "out of memory opening store %s", path);
        goto done;
    }
    s->base.ops = &sq_ops;
    /* NOMUTEX: a handle is used by one thread at a time (store.h). */
    src = sqlite3_open_v2(path, &s->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = src == SQLITE_CANTOPEN ? sq_cantopen(s, src)
                                    : sq_fail(s, src, "cannot open store %s", path);
        goto done;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, SQ_BUSY_TIMEOUT_MS);

    /* The first read also tells a non-database file apart, before any
     * pragma tries to write to it. */
    if ((rc = sq_pragma_int(s, "PRAGMA user_version", &version))) {
        if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_NOTADB)
            rc = co_error_set(CO_ESTORE, "store %s is not an SQLite database", path);
        goto done;
    }
    if (version > CO__STORE_SCHEMA_LATEST) {
        rc = sq_too_new(s, version);
        goto done;
    }
    if ((rc = sq_check_owner(s)))
        goto done;

    /* A new store gets 16 KiB pages: a recorded exchange is a few KB of
     * text, and the WAL takes two write calls per page, so fewer, larger
     * pages cut the recorder's system calls (an existing store keeps its
     * size: WAL mode fixes it). */
    if (version == 0 && (rc = sq_exec(s, "PRAGMA page_size = 16384", "configuring the page size")))
        goto done;
    if (strcmp(path, ":memory:") != 0) {
        sqlite3_stmt *st = NULL;
        src = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        /* Openers racing on a new file: the switch can say busy without
         * waiting in the busy handler (another one is creating the WAL). */
        for (int waited_ms = 0; src == SQLITE_OK || src == SQLITE_ROW || (src & 0xff) == SQLITE_BUSY;
             waited_ms += 10) {
            src = sqlite3_step(st);
            if ((src & 0xff) != SQLITE_BUSY || waited_ms >= SQ_BUSY_TIMEOUT_MS)
                break;
            sqlite3_reset(st);
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (src != SQLITE_ROW) {
            rc = sq_fail(s, src, "store %s: switching to WAL", path);
        } else if (sqlite3_stricmp(col_text(st, 0) ? col_text(st, 0) : "", "wal") != 0) {
            /* Readers would block the gateway's writer; better to say so. */
            rc = co_error_set(CO_ESTORE, "store %s: the file system does not support WAL mode "
                                         "(journal mode stays '%s'); put the store on a local disk",
                              path, col_text(st, 0) ? col_text(st, 0) : "?");
        }
        sqlite3_finalize(st);
        if (rc)
            goto done;
    }
    /* NORMAL is durable across application crashes in WAL mode; only a power
     * loss can drop the last commits, which the recorder already tolerates. */
    /* wal_autocheckpoint 256 pages (4 MiB at 16 KiB pages) instead of
     * 1000: a commit that crosses the mark copies the WAL into the database
     * file then and there, and 16 MiB of it held a CPU for 5-9 ms, long
     * enough for a gateway worker woken on that CPU to wait the whole time
     * (perf sched). 256 costs no measurable recorder throughput (64 cost
     * 15%: pages every batch touches were copied too often). With the yield
     * between chunks (sq_record), a lone client's p99 through the gateway
     * went from 2.5-2.6 ms to 1.6-1.8 ms. */
    if ((rc = sq_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                      " PRAGMA wal_autocheckpoint = 256;",
                      "configuring the connection")))
        goto done;
    if ((rc = sq_migrate(s, max_version)))
        goto done;

    *out = &s->base;
    s = NULL;
done:
    if (s)
        sq_close(&s->base);
    return rc;
}

int co__store_sqlite_open(co_store **out, const char *path)
{
    return co__store_sqlite_open_at(out, path, CO__STORE_SCHEMA_LATEST);
}

static int sq_schema_version(co_store *st, int *out_version)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *q;
    int rc = sq_stmt(s, S_USER_VERSION, &q);
    if (rc)
        return rc;
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW)
        *out_version = sqlite3_column_int(q, 0);
    else
        rc = sq_fail(s, src, "reading the schema version");
    sq_release(q);
    return rc;
}

/* ---- exchanges ----------------------------------------------------------- */

/* Binds one exchange to the 21 parameters from `base` (1-based) on. */
static void bind_exchange(sqlite3_stmt *ins, int base, const co_exchange *x)
{
    int i = base - 1;
    /* Empty ids and error classes mean "none": store NULL so joins on
     * them and the error count cannot match unrelated rows. */
    bind_id(ins, i + 1, x->request_id);
    bind_id(ins, i + 2, x->pair_id);
    sqlite3_bind_int64(ins, i + 3, x->ts_ms);
    bind_text(ins, i + 4, x->workload);
    bind_text(ins, i + 5, x->arm);
    bind_text(ins, i + 6, x->role);
    bind_text(ins, i + 7, x->model);
    bind_text(ins, i + 8, x->api);
    bind_text(ins, i + 9, x->user_key);
    sqlite3_bind_int(ins, i + 10, x->status);
    bind_text(ins, i + 11, x->error_class && x->error_class[0] ? x->error_class : NULL);
    sqlite3_bind_int(ins, i + 12, x->stream ? 1 : 0);
    sqlite3_bind_double(ins, i + 13, x->latency_ms);
    if (x->ttft_ms >= 0)
        sqlite3_bind_double(ins, i + 14, x->ttft_ms);
    else
        sqlite3_bind_null(ins, i + 14);
    sqlite3_bind_int64(ins, i + 15, x->tokens_in);
    sqlite3_bind_int64(ins, i + 16, x->tokens_out);
    sqlite3_bind_int64(ins, i + 17, x->tokens_cached);
    sqlite3_bind_double(ins, i + 18, x->cost_usd);
    bind_text(ins, i + 19, x->finish_reason);
    bind_text(ins, i + 20, x->request_json);
    bind_text(ins, i + 21, x->output_text);
}

/* The multi-row insert of sq_x_rows[k] rows, prepared on first use (NULL
 * when this SQLite allows too few parameters: the caller takes a smaller
 * size). OR ROLLBACK: a CHECK or NOT NULL the chunk breaks ends the whole
 * transaction instead of the statement alone, so SQLite keeps no statement
 * journal for it (a copy of every page the statement touches, which spills
 * to a temporary file at 64 KiB: half the recorder's write calls).
 * Duplicates are still skipped by ON CONFLICT DO NOTHING. */
static int sq_x_multi(sq_store *s, int k, sqlite3_stmt **out)
{
    *out = NULL;
    int rows = sq_x_rows[k];
    if (rows * SQ_X_PARAMS > sqlite3_limit(s->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
        return 0;
    if (!s->xins[k]) {
        co_buf b;
        co_buf_init(&b, CO_BUF_UNLIMITED);
        int rc = co_buf_puts(&b, "INSERT OR ROLLBACK");
        if (!rc)
            rc = co_buf_puts(&b, SQ_X_INSERT_HEAD + sizeof "INSERT" - 1);
        if (!rc)
            rc = co_buf_puts(&b, " VALUES ");
        for (int r = 0; r < rows && !rc; r++)
            rc = co_buf_puts(&b, r ? ", (" SQ_X_ROW_PARAMS ")" : "(" SQ_X_ROW_PARAMS ")");
        if (!rc)
            rc = co_buf_puts(&b, " ON CONFLICT DO NOTHING");
        if (rc) {
            co_buf_free(&b);
            return co_error_set(CO_ENOMEM, "out of memory preparing the exchange insert");
        }
        rc = sq_prepare(s, b.p, &s->xins[k]);
        co_buf_free(&b);
        if (rc)
            return rc;
    } else {
        int rc = sq_prepare(s, NULL, &s->xins[k]);
        if (rc)
            return rc;
    }
    *out = s->xins[k];
    return 0;
}

/* Inserts xs[from, from+n) one statement per row; on failure the message
 * names the row (its position in the whole batch of `total`). */
static int sq_record_rows(sq_store *s, sqlite3_stmt *ins, const co_exchange *xs, size_t from,
                          size_t n, size_t total)
{
    for (size_t i = from; i < from + n; i++) {
        const co_exchange *x = &xs[i];
        bind_exchange(ins, 1, x);
        int src = sqlite3_step(ins), rc = 0;
        if (src != SQLITE_DONE)
            rc = sq_fail(s, src, "recording exchange %zu of %zu (workload '%s', %s/%s): "
                                 "nothing of the batch was written",
                         i + 1, total, x->workload, x->arm, x->role);
        sqlite3_reset(ins);
        if (rc)
            return rc;
    }
    return 0;
}

/* One transaction; rows go in by multi-row INSERTs of sq_x_rows[] rows:
 * the statement's fixed cost (cursors on the table and its indexes, the
 * CHECK constraints' set-up, the statement's end) is paid once per chunk
 * instead of once per row. A chunk that fails is tried again row by row in
 * the same transaction (its statement alone was undone), so the message
 * still names the row at fault. */
static int sq_record(co_store *st, const co_exchange *xs, size_t n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *ins = NULL;
    int rc = sq_stmt(s, S_X_INSERT, &ins);
    if (rc)
        return rc;
    if ((rc = sq_begin(s)))
        goto done;
    size_t i = 0;
    for (int k = 0; k < SQ_X_SIZES && i < n && !rc; k++) {
        size_t rows = (size_t)sq_x_rows[k];
        if (rows == 1) {
            rc = sq_record_rows(s, ins, xs, i, n - i, n);
            i = n;
            break;
        }
        if (n - i < rows)
            continue;
        sqlite3_stmt *multi = NULL;
        if ((rc = sq_x_multi(s, k, &multi)))
            break;
        if (!multi)
            continue;
        for (; n - i >= rows && !rc; i += rows) {
            for (size_t r = 0; r < rows; r++)
                bind_exchange(multi, (int)(r * SQ_X_PARAMS) + 1, &xs[i + r]);
            int src = sqlite3_step(multi);
            if (src == SQLITE_DONE) {
                sqlite3_reset(multi);
                /* A batch is milliseconds of CPU, and the scheduler lets it
                 * run on until its slice ends while a thread woken on this
                 * CPU waits; in the gateway that thread is a worker with a
                 * client waiting. Between chunks whatever is runnable here
                 * may go first; alone on the CPU this returns at once. */
                sched_yield();
                continue;
            }
            rc = sq_fail(s, src, "recording exchanges %zu to %zu of %zu: nothing of the batch "
                                 "was written",
                         i + 1, i + rows, n);
            sqlite3_reset(multi);
            /* Tried again row by row only to name the row at fault; should
             * that pass, the chunk's error stands. A constraint the chunk
             * broke rolled the whole transaction back (INSERT OR ROLLBACK,
             * see sq_x_multi): the retry starts a new one from the batch's
             * first row. Any other failure left the transaction and undid
             * the chunk alone. Nothing is kept either way. */
            char saved[1024];
            int status = co_error_last_status();
            snprintf(saved, sizeof saved, "%s", co_error_last());
            size_t from = i;
            if (sqlite3_get_autocommit(s->db))
                from = sq_begin(s) == 0 ? 0 : n;
            if (from < n && (rc = sq_record_rows(s, ins, xs, from, i + rows - from, n)) == 0)
                rc = co_error_set(status, "%s", saved);
            else if (from >= n)
                rc = co_error_set(status, "%s", saved);
        }
        sqlite3_clear_bindings(multi);
    }
    if (!rc)
        rc = sq_commit(s);
done:
    sq_release(ins);
    if (rc)
        sq_rollback(s);
    return rc;
}

static int win_mask(const co_window_query *q, int kind)
{
    int m = 0;
    if (q->workload)
        m |= WM_WORKLOAD;
    if (q->arm)
        m |= WM_ARM;
    if (q->role)
        m |= WM_ROLE;
    if (q->until_ms > 0)
        m |= WM_UNTIL;
    if (q->limit > 0)
        m |= WM_LIMIT;
    if (kind == W_ROWS && q->with_text)
        m |= WM_TEXT;
    return m;
}

static int win_where(co_buf *b, int m)
{
    return co_buf_printf(b, "ts_ms >= :since%s%s%s%s",
                         m & WM_WORKLOAD ? " AND workload = :workload" : "",
                         m & WM_ARM ? " AND arm = :arm" : "",
                         m & WM_ROLE ? " AND role = :role" : "",
                         m & WM_UNTIL ? " AND ts_ms < :until" : "");
}

/* "exchanges WHERE ..." for a mask; a limited window is the newest `limit`
 * rows, as a subquery (of just `cols`) the aggregate runs over. */
static int win_source(co_buf *b, int m, const char *cols)
{
    int rc = 0;
    if (m & WM_LIMIT)
        rc = co_buf_printf(b, "(SELECT %s FROM exchanges WHERE ", cols);
    else
        rc = co_buf_puts(b, "exchanges WHERE ");
    if (!rc)
        rc = win_where(b, m);
    if (!rc && (m & WM_LIMIT))
        rc = co_buf_puts(b, " ORDER BY ts_ms DESC, id DESC LIMIT :limit)");
    return rc;
}

static int win_sql(co_buf *b, int kind, int m)
{
    int rc = 0;
    switch (kind) {
    case W_ROWS:
        rc = co_buf_printf(b, "SELECT %s, %s FROM exchanges WHERE ", X_META(""),
                           m & WM_TEXT ? X_TEXT("") : "NULL, NULL");
        if (!rc)
            rc = win_where(b, m);
        /* Unlimited windows read in time order; limited ones keep the newest
         * rows, newest first. */
        if (!rc)
            rc = co_buf_puts(b, m & WM_LIMIT ? " ORDER BY ts_ms DESC, id DESC LIMIT :limit"
                                             : " ORDER BY ts_ms, id");
        break;
    case W_SUMMARY:
        rc = co_buf_puts(b, "SELECT count(*), count(error_class), total(cost_usd),"
                            " coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0),"
                            " coalesce(sum(tokens_cached), 0), total(latency_ms),"
                            " coalesce(max(latency_ms), 0) FROM ");
        if (!rc)
            rc = win_source(b, m, "error_class, cost_usd, tokens_in, tokens_out, tokens_cached,"
                                  " latency_ms");
        break;
    case W_LATENCIES:
        rc = co_buf_puts(b, "SELECT latency_ms FROM ");
        if (!rc)
            rc = win_source(b, m, "latency_ms");
        if (!rc)
            rc = co_buf_puts(b, " ORDER BY latency_ms");
        break;
    case W_FEEDBACK:
        /* IN, not a join: a request's served and shadow rows count once. */
        rc = co_buf_puts(b, "SELECT count(*), coalesce(sum(score < 0), 0) FROM feedback"
                            " WHERE request_id IN (SELECT request_id FROM ");
        if (!rc)
            rc = win_source(b, m, "request_id");
        if (!rc)
            rc = co_buf_puts(b, ")");
        break;
    }
    return rc;
}

static int win_stmt(sq_store *s, int kind, const co_window_query *q, sqlite3_stmt **out)
{
    int m = win_mask(q, kind), rc = 0;
    *out = NULL;
    if (!s->win[kind][m]) {
        co_buf b;
        co_buf_init(&b, CO_BUF_UNLIMITED);
        rc = win_sql(&b, kind, m);
        if (!rc)
            rc = sq_prepare(s, b.p, &s->win[kind][m]);
        co_buf_free(&b);
        if (rc)
            return rc;
    } else if ((rc = sq_prepare(s, NULL, &s->win[kind][m]))) {
        return rc;
    }
    sqlite3_stmt *st = s->win[kind][m];
    bind_named_int64(st, ":since", q->since_ms);
    bind_named_int64(st, ":until", q->until_ms);
    bind_named_text(st, ":workload", q->workload);
    bind_named_text(st, ":arm", q->arm);
    bind_named_text(st, ":role", q->role);
    bind_named_int64(st, ":limit", sq_limit(q->limit));
    *out = st;
    return 0;
}

static int sq_exchanges(co_store *st, const co_window_query *q, co_exchange_list *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_exchange_list l = {0};
    size_t cap = 0;
    int rc = win_stmt(s, W_ROWS, q, &sel), src;
    if (rc)
        return rc;
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_exchange_row *v = vec_room(l.v, &cap, l.n, sizeof *l.v);
        if (!v) {
            rc = sq_oom();
            goto done;
        }
        l.v = v;
        if ((rc = read_exchange(sel, 0, &l.v[l.n])))
            goto done;
        l.n++;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "reading exchanges");
        goto done;
    }
    *out = l;
    l.v = NULL;
    l.n = 0;
done:
    sq_release(sel);
    co_exchange_list_free(&l);
    return rc;
}

static int sq_window_summary(co_store *st, const co_window_query *q, co_window_summary *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = win_stmt(s, W_SUMMARY, q, &sel);
    if (rc)
        return rc;
    int src = sqlite3_step(sel);
    if (src != SQLITE_ROW) {
        rc = sq_fail(s, src, "summarizing a window");
        goto done;
    }
    out->count = sqlite3_column_int64(sel, 0);
    out->errors = sqlite3_column_int64(sel, 1);
    out->cost_usd = sqlite3_column_double(sel, 2);
    out->tokens_in = sqlite3_column_int64(sel, 3);
    out->tokens_out = sqlite3_column_int64(sel, 4);
    out->tokens_cached = sqlite3_column_int64(sel, 5);
    out->latency_ms_sum = sqlite3_column_double(sel, 6);
    out->latency_ms_max = sqlite3_column_double(sel, 7);
done:
    sq_release(sel);
    return rc;
}

static int sq_window_latencies(co_store *st, const co_window_query *q, double **out, size_t *n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    double *v = NULL;
    size_t len = 0, cap = 0;
    int rc = win_stmt(s, W_LATENCIES, q, &sel), src;
    if (rc)
        return rc;
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        double *nv = vec_room(v, &cap, len, sizeof *v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        v = nv;
        v[len++] = sqlite3_column_double(sel, 0);
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "reading window latencies");
        goto done;
    }
    *out = v;
    *n = len;
    v = NULL;
done:
    sq_release(sel);
    free(v);
    return rc;
}

static int sq_pair(co_store *st, const char *pair_id, co_pair *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_pair p = {0};
    int rc = sq_stmt(s, S_PAIR, &sel), src;
    if (rc)
        return rc;
    bind_text(sel, 1, pair_id);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *role = col_text(sel, 6);
        co_exchange_row *slot = NULL;
        /* A retried write could leave two rows of a role: the first wins. */
        if (role && strcmp(role, "served") == 0 && p.served.id == 0)
            slot = &p.served;
        else if (role && strcmp(role, "shadow") == 0 && p.shadow.id == 0)
            slot = &p.shadow;
        if (slot && (rc = read_exchange(sel, 0, slot)))
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "reading pair %s", pair_id);
        goto done;
    }
    if (p.served.id == 0) {
        rc = co_error_set(CO_ENOENT, "no served exchange with pair id %s", pair_id);
        goto done;
    }
    *out = p;
    memset(&p, 0, sizeof p);
done:
    sq_release(sel);
    co_pair_clear(&p);
    return rc;
}

static int sq_pairs(co_store *st, const char *workload, size_t limit, size_t offset,
                    co_pair **out, size_t *n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_pair *v = NULL;
    size_t len = 0, cap = 0;
    int rc = sq_stmt(s, workload ? S_PAIRS_W : S_PAIRS_ALL, &sel), src;
    if (rc)
        return rc;
    int i = 1;
    if (workload)
        bind_text(sel, i++, workload);
    sqlite3_bind_int64(sel, i++, sq_limit(limit));
    sqlite3_bind_int64(sel, i, offset > (size_t)INT64_MAX ? INT64_MAX : (int64_t)offset);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_pair *nv = vec_room(v, &cap, len, sizeof *v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        v = nv;
        memset(&v[len], 0, sizeof v[len]);
        len++; /* counted first so a half-read pair is freed below */
        if ((rc = read_exchange(sel, 0, &v[len - 1].served)) ||
            (rc = read_exchange(sel, X_NCOLS, &v[len - 1].shadow)))
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "reading pairs");
        goto done;
    }
    *out = v;
    *n = len;
    v = NULL;
done:
    sq_release(sel);
    co_pairs_free(v, len);
    return rc;
}

/* ---- eval ---------------------------------------------------------------- */

static int sq_eval_run_begin(co_store *st, co_eval_run *run)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *ins = NULL;
    int rc = sq_stmt(s, S_RUN_INSERT, &ins);
    if (rc)
        return rc;
    if (run->started_ms <= 0)
        run->started_ms = co_now_ms();
    sqlite3_bind_int64(ins, 1, run->started_ms);
    bind_text(ins, 2, run->suite);
    bind_text(ins, 3, run->config_json);
    bind_text(ins, 4, run->status ? run->status : "running");
    if ((rc = sq_step_done(s, ins, "starting an eval run")))
        goto done;
    run->id = sqlite3_last_insert_rowid(s->db);
done:
    sq_release(ins);
    return rc;
}

static int sq_eval_results_add(co_store *st, int64_t run_id, const co_eval_result *rs, size_t n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *ins = NULL, *ex = NULL;
    int rc = sq_stmt(s, S_RESULT_INSERT, &ins), src;
    if (rc)
        return rc;
    if ((rc = sq_begin(s)))
        goto done;
    /* Checked here, not left to the foreign key, to name the missing run. */
    if ((rc = sq_stmt(s, S_RUN_EXISTS, &ex)))
        goto done;
    sqlite3_bind_int64(ex, 1, run_id);
    src = sqlite3_step(ex);
    if (src == SQLITE_DONE)
        rc = co_error_set(CO_ENOENT, "no eval run with id %lld", (long long)run_id);
    else if (src != SQLITE_ROW)
        rc = sq_fail(s, src, "reading eval run %lld", (long long)run_id);
    sq_release(ex);
    if (rc)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const co_eval_result *r = &rs[i];
        sqlite3_bind_int64(ins, 1, run_id);
        bind_text(ins, 2, r->case_id);
        bind_text(ins, 3, r->workload);
        bind_text(ins, 4, r->arm);
        sqlite3_bind_int(ins, 5, r->repeat);
        sqlite3_bind_int(ins, 6, r->passed ? 1 : 0);
        sqlite3_bind_double(ins, 7, r->score);
        sqlite3_bind_double(ins, 8, r->latency_ms);
        sqlite3_bind_double(ins, 9, r->cost_usd);
        sqlite3_bind_int64(ins, 10, r->tokens_in);
        sqlite3_bind_int64(ins, 11, r->tokens_out);
        bind_text(ins, 12, r->output_text);
        bind_text(ins, 13, r->detail_json);
        bind_text(ins, 14, r->error);
        src = sqlite3_step(ins);
        if (src != SQLITE_DONE) {
            rc = sq_fail(s, src, "saving eval result %zu of %zu (run %lld, case '%s', arm %s, "
                                 "repeat %d): nothing of the batch was written",
                         i + 1, n, (long long)run_id, r->case_id, r->arm, r->repeat);
            goto done;
        }
        sqlite3_reset(ins);
    }
    rc = sq_commit(s);
done:
    sq_release(ins);
    if (rc)
        sq_rollback(s);
    return rc;
}

static int sq_eval_run_finish(co_store *st, int64_t run_id, const char *status,
                              const char *summary_json)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_RUN_FINISH, &up);
    if (rc)
        return rc;
    sqlite3_bind_int64(up, 1, run_id);
    bind_text(up, 2, status);
    bind_text(up, 3, summary_json);
    sqlite3_bind_int64(up, 4, co_now_ms());
    if ((rc = sq_step_done(s, up, "finishing an eval run")))
        goto done;
    if (sqlite3_changes(s->db) == 0)
        rc = co_error_set(CO_ENOENT, "no eval run with id %lld", (long long)run_id);
done:
    sq_release(up);
    return rc;
}

static int sq_eval_run_get(co_store *st, int64_t run_id, co_eval_run *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_RUN_GET, &sel);
    if (rc)
        return rc;
    sqlite3_bind_int64(sel, 1, run_id);
    int src = sqlite3_step(sel);
    if (src == SQLITE_DONE) {
        rc = co_error_set(CO_ENOENT, "no eval run with id %lld", (long long)run_id);
        goto done;
    }
    if (src != SQLITE_ROW) {
        rc = sq_fail(s, src, "reading eval run %lld", (long long)run_id);
        goto done;
    }
    out->id = sqlite3_column_int64(sel, 0);
    out->started_ms = sqlite3_column_int64(sel, 1);
    out->finished_ms = sqlite3_column_int64(sel, 2);
    out->suite = col_dup(sel, 3, &rc);
    out->config_json = col_dup(sel, 4, &rc);
    out->summary_json = col_dup(sel, 5, &rc);
    out->status = col_dup(sel, 6, &rc);
    if (rc)
        co_eval_run_clear(out);
done:
    sq_release(sel);
    return rc;
}

static int sq_eval_results_each(co_store *st, int64_t run_id, co_eval_result_cb cb, void *ud)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_RUN_EXISTS, &sel), src;
    if (rc)
        return rc;
    sqlite3_bind_int64(sel, 1, run_id);
    src = sqlite3_step(sel);
    sq_release(sel);
    if (src == SQLITE_DONE)
        return co_error_set(CO_ENOENT, "no eval run with id %lld", (long long)run_id);
    if (src != SQLITE_ROW)
        return sq_fail(s, src, "reading eval run %lld", (long long)run_id);

    if ((rc = sq_stmt(s, S_RESULTS, &sel)))
        return rc;
    sqlite3_bind_int64(sel, 1, run_id);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        /* Strings point into SQLite's row: valid for the callback only. */
        co_eval_result r = {
            .case_id = col_text(sel, 0),
            .workload = col_text(sel, 1),
            .arm = col_text(sel, 2),
            .repeat = sqlite3_column_int(sel, 3),
            .passed = sqlite3_column_int(sel, 4),
            .score = sqlite3_column_double(sel, 5),
            .latency_ms = sqlite3_column_double(sel, 6),
            .cost_usd = sqlite3_column_double(sel, 7),
            .tokens_in = sqlite3_column_int64(sel, 8),
            .tokens_out = sqlite3_column_int64(sel, 9),
            .output_text = col_text(sel, 10),
            .detail_json = col_text(sel, 11),
            .error = col_text(sel, 12),
        };
        int crc = cb(&r, ud);
        if (crc) {
            /* > 0 is "enough, thanks"; < 0 is the callback's error. */
            rc = crc < 0 ? crc : 0;
            goto done;
        }
    }
    if (src != SQLITE_DONE)
        rc = sq_fail(s, src, "reading results of eval run %lld", (long long)run_id);
done:
    sq_release(sel);
    return rc;
}

static int sq_baseline_put(co_store *st, const char *workload, int64_t run_id, const char *json)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_BASELINE_PUT, &up);
    if (rc)
        return rc;
    bind_text(up, 1, workload);
    if (run_id > 0)
        sqlite3_bind_int64(up, 2, run_id);
    else
        sqlite3_bind_null(up, 2);
    bind_text(up, 3, json);
    sqlite3_bind_int64(up, 4, co_now_ms());
    rc = sq_step_done(s, up, "saving the baseline");
    sq_release(up);
    return rc;
}

static int sq_baseline_get(co_store *st, const char *workload, char **out_json, int64_t *out_run_id)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_BASELINE_GET, &sel);
    if (rc)
        return rc;
    bind_text(sel, 1, workload);
    int src = sqlite3_step(sel);
    if (src == SQLITE_DONE) {
        rc = co_error_set(CO_ENOENT, "no baseline saved for workload '%s'", workload);
        goto done;
    }
    if (src != SQLITE_ROW) {
        rc = sq_fail(s, src, "reading the baseline of '%s'", workload);
        goto done;
    }
    *out_json = col_dup(sel, 0, &rc);
    if (out_run_id)
        *out_run_id = sqlite3_column_int64(sel, 1);
done:
    sq_release(sel);
    return rc;
}

static int sq_cache_get(co_store *st, const char *model, const char *key, char **out_json)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_CACHE_GET, &sel);
    if (rc)
        return rc;
    bind_text(sel, 1, model);
    bind_text(sel, 2, key);
    int src = sqlite3_step(sel);
    if (src == SQLITE_DONE)
        rc = co_error_set(CO_ENOENT, "no cached response for model '%s'", model);
    else if (src != SQLITE_ROW)
        rc = sq_fail(s, src, "reading the response cache");
    else
        *out_json = col_dup(sel, 0, &rc);
    sq_release(sel);
    return rc;
}

static int sq_cache_put(co_store *st, const char *model, const char *key, const char *json)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_CACHE_PUT, &up);
    if (rc)
        return rc;
    bind_text(up, 1, model);
    bind_text(up, 2, key);
    bind_text(up, 3, json);
    sqlite3_bind_int64(up, 4, co_now_ms());
    rc = sq_step_done(s, up, "writing the response cache");
    sq_release(up);
    return rc;
}

/* ---- workload mode + rollout --------------------------------------------- */

static int read_workload_state(sqlite3_stmt *sel, co_workload_state *w)
{
    int rc = 0;
    w->workload = col_dup(sel, 0, &rc);
    w->mode = col_dup(sel, 1, &rc);
    w->percent = sqlite3_column_double(sel, 2);
    w->version = sqlite3_column_int64(sel, 3);
    w->updated_ms = sqlite3_column_int64(sel, 4);
    w->updated_by = col_dup(sel, 5, &rc);
    return rc;
}

static int sq_workload_state_get(co_store *st, const char *workload, co_workload_state *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_WS_GET, &sel);
    if (rc)
        return rc;
    bind_text(sel, 1, workload);
    int src = sqlite3_step(sel);
    if (src == SQLITE_DONE)
        rc = co_error_set(CO_ENOENT, "workload '%s' has no stored mode", workload);
    else if (src != SQLITE_ROW)
        rc = sq_fail(s, src, "reading the mode of '%s'", workload);
    else if ((rc = read_workload_state(sel, out)))
        co_workload_state_clear(out);
    sq_release(sel);
    return rc;
}

static int sq_workload_state_set(co_store *st, const char *workload, const char *mode,
                                 double percent, const char *by, int64_t *out_version)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_WS_SET, &up);
    if (rc)
        return rc;
    bind_text(up, 1, workload);
    bind_text(up, 2, mode);
    sqlite3_bind_double(up, 3, percent);
    sqlite3_bind_int64(up, 4, co_now_ms());
    bind_text(up, 5, by);
    int src = sqlite3_step(up);
    if (src != SQLITE_ROW) {
        rc = sq_fail(s, src, "setting workload '%s' to mode '%s' at %g%%", workload, mode, percent);
        goto done;
    }
    if (out_version)
        *out_version = sqlite3_column_int64(up, 0);
    s->self_changed = 1;
done:
    sq_release(up);
    return rc;
}

static int sq_workload_states(co_store *st, int64_t since_version, co_workload_state **out,
                              size_t *n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_workload_state *v = NULL;
    size_t len = 0, cap = 0;
    int rc = sq_stmt(s, S_WS_LIST, &sel), src;
    if (rc)
        return rc;
    sqlite3_bind_int64(sel, 1, since_version);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_workload_state *nv = vec_room(v, &cap, len, sizeof *v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        v = nv;
        memset(&v[len], 0, sizeof v[len]);
        rc = read_workload_state(sel, &v[len++]);
        if (rc)
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "listing workload modes");
        goto done;
    }
    *out = v;
    *n = len;
    v = NULL;
done:
    sq_release(sel);
    co_workload_states_free(v, len);
    return rc;
}

static int sq_rollout_get(co_store *st, const char *workload, co_rollout_state *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_RO_GET, &sel);
    if (rc)
        return rc;
    bind_text(sel, 1, workload);
    int src = sqlite3_step(sel);
    if (src == SQLITE_DONE) {
        rc = co_error_set(CO_ENOENT, "workload '%s' has no rollout", workload);
        goto done;
    }
    if (src != SQLITE_ROW) {
        rc = sq_fail(s, src, "reading the rollout of '%s'", workload);
        goto done;
    }
    out->workload = col_dup(sel, 0, &rc);
    out->state = col_dup(sel, 1, &rc);
    out->stage = sqlite3_column_int(sel, 2);
    out->stage_started_ms = sqlite3_column_int64(sel, 3);
    out->hold_elapsed_ms = sqlite3_column_int64(sel, 4);
    out->version = sqlite3_column_int64(sel, 5);
    out->data_json = col_dup(sel, 6, &rc);
    if (rc)
        co_rollout_state_clear(out);
done:
    sq_release(sel);
    return rc;
}

/* Says what the caller raced with: a newer version, or a rollout that
 * appeared or vanished. */
static int rollout_conflict(sq_store *s, const char *workload, int64_t expected)
{
    sqlite3_stmt *sel = NULL;
    int rc = sq_stmt(s, S_RO_VERSION, &sel);
    if (rc)
        return rc;
    bind_text(sel, 1, workload);
    int src = sqlite3_step(sel);
    if (src == SQLITE_ROW && expected == 0)
        rc = co_error_set(CO_ECONFLICT, "a rollout of '%s' already exists (version %lld)",
                          workload, (long long)sqlite3_column_int64(sel, 0));
    else if (src == SQLITE_ROW)
        rc = co_error_set(CO_ECONFLICT, "the rollout of '%s' is at version %lld, not %lld: "
                                        "someone else changed it; reload and retry",
                          workload, (long long)sqlite3_column_int64(sel, 0), (long long)expected);
    else if (src == SQLITE_DONE)
        rc = co_error_set(CO_ECONFLICT, "the rollout of '%s' does not exist (expected version %lld)",
                          workload, (long long)expected);
    else
        rc = sq_fail(s, src, "reading the rollout version of '%s'", workload);
    sq_release(sel);
    return rc;
}

static int sq_rollout_put(co_store *st, co_rollout_state *r, int64_t expected_version)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, expected_version == 0 ? S_RO_INSERT : S_RO_UPDATE, &up);
    if (rc)
        return rc;
    bind_text(up, 1, r->workload);
    bind_text(up, 2, r->state);
    sqlite3_bind_int(up, 3, r->stage);
    sqlite3_bind_int64(up, 4, r->stage_started_ms);
    sqlite3_bind_int64(up, 5, r->hold_elapsed_ms);
    bind_text(up, 6, r->data_json);
    sqlite3_bind_int64(up, 7, co_now_ms());
    if (expected_version)
        sqlite3_bind_int64(up, 8, expected_version);
    int src = sqlite3_step(up);
    if (src == SQLITE_ROW) {
        r->version = sqlite3_column_int64(up, 0);
        s->self_changed = 1;
    } else if (src == SQLITE_DONE) {
        sq_release(up);
        up = NULL;
        rc = rollout_conflict(s, r->workload, expected_version);
    } else {
        rc = sq_fail(s, src, "saving the rollout of '%s' (state '%s')", r->workload, r->state);
    }
    sq_release(up);
    return rc;
}

static int sq_rollout_event_add(co_store *st, co_rollout_event *ev)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *ins = NULL;
    int rc = sq_stmt(s, S_EV_INSERT, &ins);
    if (rc)
        return rc;
    if (ev->ts_ms <= 0)
        ev->ts_ms = co_now_ms();
    bind_text(ins, 1, ev->workload);
    sqlite3_bind_int64(ins, 2, ev->ts_ms);
    bind_text(ins, 3, ev->actor);
    bind_text(ins, 4, ev->kind);
    bind_text(ins, 5, ev->from_state);
    bind_text(ins, 6, ev->to_state);
    bind_text(ins, 7, ev->reason);
    bind_text(ins, 8, ev->metrics_json);
    if ((rc = sq_step_done(s, ins, "adding a rollout event")) == 0)
        ev->id = sqlite3_last_insert_rowid(s->db);
    sq_release(ins);
    return rc;
}

static int sq_rollout_events(co_store *st, const char *workload, int64_t since_id,
                             co_rollout_event_list *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_rollout_event_list l = {0};
    size_t cap = 0;
    int rc = sq_stmt(s, workload ? S_EV_LIST_W : S_EV_LIST_ALL, &sel), src;
    if (rc)
        return rc;
    int i = 1;
    if (workload)
        bind_text(sel, i++, workload);
    sqlite3_bind_int64(sel, i, since_id);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_rollout_event *nv = vec_room(l.v, &cap, l.n, sizeof *l.v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        l.v = nv;
        co_rollout_event *e = &l.v[l.n++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(sel, 0);
        e->workload = col_dup(sel, 1, &rc);
        e->ts_ms = sqlite3_column_int64(sel, 2);
        e->actor = col_dup(sel, 3, &rc);
        e->kind = col_dup(sel, 4, &rc);
        e->from_state = col_dup(sel, 5, &rc);
        e->to_state = col_dup(sel, 6, &rc);
        e->reason = col_dup(sel, 7, &rc);
        e->metrics_json = col_dup(sel, 8, &rc);
        if (rc)
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "listing rollout events");
        goto done;
    }
    *out = l;
    memset(&l, 0, sizeof l);
done:
    sq_release(sel);
    co_rollout_event_list_free(&l);
    return rc;
}

static int sq_incident_add(co_store *st, co_incident *inc)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *ins = NULL;
    int rc = sq_stmt(s, S_INC_INSERT, &ins);
    if (rc)
        return rc;
    if (inc->ts_ms <= 0)
        inc->ts_ms = co_now_ms();
    bind_text(ins, 1, inc->workload);
    sqlite3_bind_int64(ins, 2, inc->ts_ms);
    bind_text(ins, 3, inc->trigger);
    bind_text(ins, 4, inc->report_md);
    bind_text(ins, 5, inc->data_json);
    if ((rc = sq_step_done(s, ins, "adding an incident")) == 0)
        inc->id = sqlite3_last_insert_rowid(s->db);
    sq_release(ins);
    return rc;
}

static int sq_incident_get(co_store *st, int64_t id, const char *workload, co_incident *out)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    enum sq_stmt_id which = id > 0 ? S_INC_ID : workload ? S_INC_LATEST_W : S_INC_LATEST;
    int rc = sq_stmt(s, which, &sel);
    if (rc)
        return rc;
    if (which == S_INC_ID)
        sqlite3_bind_int64(sel, 1, id);
    else if (which == S_INC_LATEST_W)
        bind_text(sel, 1, workload);
    int src = sqlite3_step(sel);
    if (src == SQLITE_DONE) {
        if (which == S_INC_ID)
            rc = co_error_set(CO_ENOENT, "no incident with id %lld", (long long)id);
        else if (workload)
            rc = co_error_set(CO_ENOENT, "workload '%s' has no incidents", workload);
        else
            rc = co_error_set(CO_ENOENT, "no incidents recorded");
        goto done;
    }
    if (src != SQLITE_ROW) {
        rc = sq_fail(s, src, "reading an incident");
        goto done;
    }
    out->id = sqlite3_column_int64(sel, 0);
    out->workload = col_dup(sel, 1, &rc);
    out->ts_ms = sqlite3_column_int64(sel, 2);
    out->trigger = col_dup(sel, 3, &rc);
    out->report_md = col_dup(sel, 4, &rc);
    out->data_json = col_dup(sel, 5, &rc);
    if (rc)
        co_incident_clear(out);
done:
    sq_release(sel);
    return rc;
}

/* ---- reviews, feedback, evidence ----------------------------------------- */

static int sq_review_add(co_store *st, const co_review *r)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_REV_UPSERT, &up);
    if (rc)
        return rc;
    bind_text(up, 1, r->pair_id);
    bind_text(up, 2, r->reviewer);
    bind_text(up, 3, r->verdict);
    bind_text(up, 4, r->note);
    sqlite3_bind_int64(up, 5, r->ts_ms > 0 ? r->ts_ms : co_now_ms());
    rc = sq_step_done(s, up, "saving a review");
    sq_release(up);
    return rc;
}

static int sq_reviews(co_store *st, const char *pair_id, co_review **out, size_t *n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_review *v = NULL;
    size_t len = 0, cap = 0;
    int rc = sq_stmt(s, pair_id ? S_REV_LIST_P : S_REV_LIST_ALL, &sel), src;
    if (rc)
        return rc;
    if (pair_id)
        bind_text(sel, 1, pair_id);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_review *nv = vec_room(v, &cap, len, sizeof *v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        v = nv;
        co_review *r = &v[len++];
        memset(r, 0, sizeof *r);
        r->pair_id = col_dup(sel, 0, &rc);
        r->reviewer = col_dup(sel, 1, &rc);
        r->verdict = col_dup(sel, 2, &rc);
        r->note = col_dup(sel, 3, &rc);
        r->ts_ms = sqlite3_column_int64(sel, 4);
        if (rc)
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "listing reviews");
        goto done;
    }
    *out = v;
    *n = len;
    v = NULL;
done:
    sq_release(sel);
    co_reviews_free(v, len);
    return rc;
}

static int sq_feedback_add(co_store *st, const co_feedback *f)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_FB_UPSERT, &up);
    if (rc)
        return rc;
    bind_text(up, 1, f->request_id);
    sqlite3_bind_int(up, 2, f->score);
    bind_text(up, 3, f->comment);
    sqlite3_bind_int64(up, 4, f->ts_ms > 0 ? f->ts_ms : co_now_ms());
    rc = sq_step_done(s, up, "saving feedback");
    sq_release(up);
    return rc;
}

static int sq_feedback_summary(co_store *st, const co_window_query *q, int64_t *out_total,
                               int64_t *out_negative)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    int rc = win_stmt(s, W_FEEDBACK, q, &sel);
    if (rc)
        return rc;
    int src = sqlite3_step(sel);
    if (src == SQLITE_ROW) {
        *out_total = sqlite3_column_int64(sel, 0);
        *out_negative = sqlite3_column_int64(sel, 1);
    } else {
        rc = sq_fail(s, src, "summarizing feedback");
    }
    sq_release(sel);
    return rc;
}

static int sq_evidence_add(co_store *st, co_evidence *e)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *ins = NULL;
    int rc = sq_stmt(s, S_EVID_INSERT, &ins);
    if (rc)
        return rc;
    if (e->ts_ms <= 0)
        e->ts_ms = co_now_ms();
    bind_text(ins, 1, e->item);
    bind_text(ins, 2, e->workload);
    sqlite3_bind_int64(ins, 3, e->ts_ms);
    bind_text(ins, 4, e->data_json);
    if ((rc = sq_step_done(s, ins, "adding plan evidence")) == 0)
        e->id = sqlite3_last_insert_rowid(s->db);
    sq_release(ins);
    return rc;
}

static int sq_evidence(co_store *st, const char *item, co_evidence **out, size_t *n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_evidence *v = NULL;
    size_t len = 0, cap = 0;
    int rc = sq_stmt(s, item ? S_EVID_LIST_I : S_EVID_LIST_ALL, &sel), src;
    if (rc)
        return rc;
    if (item)
        bind_text(sel, 1, item);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_evidence *nv = vec_room(v, &cap, len, sizeof *v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        v = nv;
        co_evidence *e = &v[len++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(sel, 0);
        e->item = col_dup(sel, 1, &rc);
        e->workload = col_dup(sel, 2, &rc);
        e->ts_ms = sqlite3_column_int64(sel, 3);
        e->data_json = col_dup(sel, 4, &rc);
        if (rc)
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "listing plan evidence");
        goto done;
    }
    *out = v;
    *n = len;
    v = NULL;
done:
    sq_release(sel);
    co_evidence_free(v, len);
    return rc;
}

static int sq_gateway_beat(co_store *st, const co_gateway_beat *b)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_GW_BEAT, &up);
    if (rc)
        return rc;
    int64_t now = co_now_ms();
    bind_text(up, 1, b->id);
    bind_text(up, 2, b->host);
    sqlite3_bind_int64(up, 3, b->pid);
    sqlite3_bind_int64(up, 4, b->started_ms > 0 ? b->started_ms : now);
    sqlite3_bind_int64(up, 5, b->seen_ms > 0 ? b->seen_ms : now);
    sqlite3_bind_int64(up, 6, b->applied_version);
    rc = sq_step_done(s, up, "saving a gateway heartbeat");
    sq_release(up);
    return rc;
}

static int sq_gateways(co_store *st, int64_t seen_since_ms, co_gateway_beat **out, size_t *n)
{
    sq_store *s = (sq_store *)st;
    sqlite3_stmt *sel = NULL;
    co_gateway_beat *v = NULL;
    size_t len = 0, cap = 0;
    int rc = sq_stmt(s, S_GW_LIST, &sel), src;
    if (rc)
        return rc;
    sqlite3_bind_int64(sel, 1, seen_since_ms);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        co_gateway_beat *nv = vec_room(v, &cap, len, sizeof *v);
        if (!nv) {
            rc = sq_oom();
            goto done;
        }
        v = nv;
        co_gateway_beat *b = &v[len++];
        memset(b, 0, sizeof *b);
        b->id = col_dup(sel, 0, &rc);
        b->host = col_dup(sel, 1, &rc);
        b->pid = sqlite3_column_int64(sel, 2);
        b->started_ms = sqlite3_column_int64(sel, 3);
        b->seen_ms = sqlite3_column_int64(sel, 4);
        b->applied_version = sqlite3_column_int64(sel, 5);
        if (rc)
            goto done;
    }
    if (src != SQLITE_DONE) {
        rc = sq_fail(s, src, "listing gateways");
        goto done;
    }
    *out = v;
    *n = len;
    v = NULL;
done:
    sq_release(sel);
    co_gateway_beats_free(v, len);
    return rc;
}

/* ---- leases ---------------------------------------------------------------- */

static int is_memory(const sq_store *s) { return strcmp(s->path, ":memory:") == 0; }

static long lease_find(const sq_store *s, const char *name)
{
    for (size_t i = 0; i < s->nleases; i++)
        if (strcmp(s->leases[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Forgets lease i and closes its file, which releases the lock. */
static void lease_release(sq_store *s, long i)
{
    if (s->leases[i].fd >= 0)
        close(s->leases[i].fd);
    free(s->leases[i].name);
    free(s->leases[i].holder);
    s->leases[i] = s->leases[--s->nleases];
}

/* "<db>-lease-<name>": characters other than [A-Za-z0-9._-] become '_'
 * and then a hash of the name keeps two names apart. */
static int lease_path(const sq_store *s, const char *name, char *out, size_t n)
{
    char safe[96];
    size_t k = 0;
    int changed = 0;
    for (const char *c = name; *c && k < 64; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '.' || *c == '_' || *c == '-';
        safe[k++] = ok ? *c : '_';
        changed |= !ok;
    }
    changed |= strlen(name) > 64;
    safe[k] = '\0';
    int w = changed ? snprintf(out, n, "%s-lease-%s-%016llx", s->path, safe,
                               (unsigned long long)co_hash64(name, strlen(name), 0))
                    : snprintf(out, n, "%s-lease-%s", s->path, safe);
    if (w < 0 || (size_t)w >= n)
        return co_error_set(CO_EINVAL, "store %s: lease file name too long", s->path);
    return 0;
}

/* Tries the lock: 0 with *out_fd the locked file, or -1 when another open
 * file description holds it; an error when the file cannot be opened. */
static int lease_lock(sq_store *s, const char *name, int *out_fd)
{
    char path[4096];
    int rc = lease_path(s, name, path, sizeof path);
    *out_fd = -1;
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return co_error_set(CO_ESTORE, "store %s: lease file %s: %s", s->path, path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
        *out_fd = fd;
        return 0;
    }
    int e = errno;
    close(fd);
    if (e == EAGAIN || e == EACCES)
        return 0;
    return co_error_set(CO_ESTORE, "store %s: locking lease file %s: %s", s->path, path, strerror(e));
}

static int lease_row(sq_store *s, const char *name, const char *holder, int64_t ttl_ms)
{
    sqlite3_stmt *up = NULL;
    int rc = sq_stmt(s, S_LEASE_ROW, &up);
    if (rc)
        return rc;
    bind_text(up, 1, name);
    bind_text(up, 2, holder);
    sqlite3_bind_int64(up, 3, co_now_ms() + ttl_ms);
    rc = sq_step_done(s, up, "renewing a lease");
    sq_release(up);
    return rc;
}

static int sq_lease_take(co_store *st, const char *name, const char *holder, int64_t ttl_ms, int *out_held)
{
    sq_store *s = (sq_store *)st;
    long i = lease_find(s, name);
    if (i >= 0) {
        /* the lock cannot be lost while its file stays open: renew the row */
        if (strcmp(s->leases[i].holder, holder) != 0)
            return 0;
        int rc = lease_row(s, name, holder, ttl_ms);
        *out_held = rc == 0;
        return rc;
    }
    int fd = -1, rc = 0;
    if (!is_memory(s)) {
        if ((rc = lease_lock(s, name, &fd)))
            return rc;
        if (fd < 0)
            return 0; /* another handle has it */
    }
    struct sq_lease *v = realloc(s->leases, (s->nleases + 1) * sizeof *v);
    char *n = strdup(name), *h = strdup(holder);
    if (v)
        s->leases = v;
    if (!v || !n || !h) {
        free(n);
        free(h);
        if (fd >= 0)
            close(fd);
        return sq_oom();
    }
    s->leases[s->nleases++] = (struct sq_lease){.name = n, .holder = h, .fd = fd};
    if ((rc = lease_row(s, name, holder, ttl_ms))) {
        lease_release(s, lease_find(s, name)); /* not held: never keep the lock */
        return rc;
    }
    *out_held = 1;
    return 0;
}

static int sq_lease_drop(co_store *st, const char *name, const char *holder)
{
    sq_store *s = (sq_store *)st;
    long i = lease_find(s, name);
    int mine = i >= 0 && strcmp(s->leases[i].holder, holder) == 0;
    /* the row first: it never names us while someone else holds the lock */
    sqlite3_stmt *del = NULL;
    int rc = sq_stmt(s, S_LEASE_DROP, &del);
    if (rc == 0) {
        bind_text(del, 1, name);
        bind_text(del, 2, holder);
        rc = sq_step_done(s, del, "releasing a lease");
        sq_release(del);
    }
    if (mine)
        lease_release(s, i);
    return rc;
}

static int sq_lease_held(co_store *st, const char *name, const char *holder)
{
    sq_store *s = (sq_store *)st;
    long i = lease_find(s, name);
    return i >= 0 && strcmp(s->leases[i].holder, holder) == 0;
}

/* ---- change notification -------------------------------------------------- */

static int sq_read_int64s(sq_store *s, enum sq_stmt_id id, int64_t *v, int n, const char *what)
{
    sqlite3_stmt *q;
    int rc = sq_stmt(s, id, &q);
    if (rc)
        return rc;
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW)
        for (int i = 0; i < n; i++)
            v[i] = sqlite3_column_int64(q, i);
    else
        rc = sq_fail(s, src, "%s", what);
    sq_release(q);
    return rc;
}

/* SQLite has no notifications: data_version is a cheap check (no I/O) of
 * whether another connection committed; only then are the state versions
 * compared, so recorder commits do not count as changes. Every 20 ms: a
 * change reaches the gateway well within the rollback budget, and an idle
 * gateway spends ~0.3% of a core on it (1.1% at 5 ms). */
#define SQ_WATCH_POLL_MS 20

static int sq_wait_change(co_store *st, int64_t timeout_ms, int *out_changed)
{
    sq_store *s = (sq_store *)st;
    int64_t deadline = co_mono_us() / 1000 + timeout_ms, dv = 0, sig[3] = {0, 0, 0};
    int rc;
    if (!s->watching) {
        if ((rc = sq_read_int64s(s, S_DATA_VERSION, &s->data_version, 1, "reading data_version")) ||
            (rc = sq_read_int64s(s, S_STATE_SIG, s->sig, 3, "reading state versions")))
            return rc;
        s->watching = 1;
        s->self_changed = 0;
        *out_changed = 1; /* nothing seen before: the caller reads everything */
        return 0;
    }
    for (;;) {
        if ((rc = sq_read_int64s(s, S_DATA_VERSION, &dv, 1, "reading data_version")))
            return rc;
        if (dv != s->data_version || s->self_changed) {
            s->data_version = dv;
            s->self_changed = 0;
            if ((rc = sq_read_int64s(s, S_STATE_SIG, sig, 3, "reading state versions")))
                return rc;
            if (memcmp(sig, s->sig, sizeof sig) != 0) {
                memcpy(s->sig, sig, sizeof sig);
                *out_changed = 1;
                return 0;
            }
        }
        int64_t left = deadline - co_mono_us() / 1000;
        if (left <= 0)
            return 0;
        struct timespec ts = {0, (left < SQ_WATCH_POLL_MS ? left : SQ_WATCH_POLL_MS) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static const struct co_store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .record = sq_record,
    .exchanges = sq_exchanges,
    .window_summary = sq_window_summary,
    .window_latencies = sq_window_latencies,
    .pair = sq_pair,
    .pairs = sq_pairs,
    .eval_run_begin = sq_eval_run_begin,
    .eval_results_add = sq_eval_results_add,
    .eval_run_finish = sq_eval_run_finish,
    .eval_run_get = sq_eval_run_get,
    .eval_results_each = sq_eval_results_each,
    .baseline_put = sq_baseline_put,
    .baseline_get = sq_baseline_get,
    .cache_get = sq_cache_get,
    .cache_put = sq_cache_put,
    .workload_state_get = sq_workload_state_get,
    .workload_state_set = sq_workload_state_set,
    .workload_states = sq_workload_states,
    .rollout_get = sq_rollout_get,
    .rollout_put = sq_rollout_put,
    .rollout_event_add = sq_rollout_event_add,
    .rollout_events = sq_rollout_events,
    .incident_add = sq_incident_add,
    .incident_get = sq_incident_get,
    .review_add = sq_review_add,
    .reviews = sq_reviews,
    .feedback_add = sq_feedback_add,
    .feedback_summary = sq_feedback_summary,
    .evidence_add = sq_evidence_add,
    .evidence = sq_evidence,
    .gateway_beat = sq_gateway_beat,
    .gateways = sq_gateways,
    .lease_take = sq_lease_take,
    .lease_drop = sq_lease_drop,
    .lease_held = sq_lease_held,
    .wait_change = sq_wait_change,
};
