/* Unit tests of the store (store.c and both back ends): every operation
 * round-trips, batches are all-or-nothing, schema migrations keep data and
 * run once when several handles open a fresh store at the same time, newer
 * schemas and foreign databases are refused, two handles share a store, and
 * change notification wakes a waiting handle.
 *
 * The same tests run against SQLite and against PostgreSQL: CO_TEST_STORE=
 * postgres (a second ctest entry) starts a throwaway cluster
 * (tests/support/pg_cluster.h) and gives every test a fresh database. Without
 * PostgreSQL server binaries that run exits 77 (skipped). A few checks only
 * make sense for one back end (SQLite's WAL file, PostgreSQL's password
 * handling and reconnection); they are marked as such. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/store_impl.h"
#include "cutover/error.h"
#include "cutover/store.h"
#include "pg_cluster.h"

/* The back end under test (CO_TEST_STORE), and its cluster when PostgreSQL. */
static int g_pg;
static co_pg_cluster g_cluster;
static int g_db_seq;
#define PG_DB "cutover"

typedef struct fixture {
    int pg;
    char dir[64];    /* SQLite: the test's directory */
    char path[128];  /* SQLite: the store file */
    char db[64];     /* PostgreSQL: the test's schema (in database PG_DB) */
    char url[512];
    co_store *st;
} fixture;

static void pg_check(int rc, const char *why)
{
    if (rc != 0)
        fail_msg("postgres: %s", why);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->pg = g_pg;
    snprintf(f->dir, sizeof f->dir, "/tmp/co_store_test_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    if (f->pg) {
        char why[1024];
        snprintf(f->db, sizeof f->db, "t%d", ++g_db_seq);
        pg_check(co_pg_cluster_createschema(&g_cluster, PG_DB, f->db, why, sizeof why), why);
        co_pg_cluster_url_schema(&g_cluster, PG_DB, f->db, f->url, sizeof f->url);
    } else {
        snprintf(f->path, sizeof f->path, "%s/cutover.db", f->dir);
        snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    }
    assert_int_equal(co_store_open(&f->st, f->url), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    co_store_close(f->st);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A query's number on the test's PostgreSQL schema (or `other`'s). */
static long long pg_scalar(const fixture *f, const char *other, const char *sql)
{
    char q[1024], why[1024];
    snprintf(q, sizeof q, "SET search_path TO %s%s%s; %s", f->db, other ? "_" : "",
             other ? other : "", sql);
    long long v = co_pg_cluster_scalar(&g_cluster, PG_DB, q, why, sizeof why);
    if (v < 0)
        fail_msg("postgres: %s", why);
    return v;
}

/* A second, empty store of the test's back end: a file next to the test's
 * (SQLite) or a fresh schema (PostgreSQL). */
static void other_store_url(const fixture *f, const char *name, char *out, size_t n)
{
    if (f->pg) {
        char schema[96], why[1024];
        snprintf(schema, sizeof schema, "%s_%s", f->db, name);
        pg_check(co_pg_cluster_createschema(&g_cluster, PG_DB, schema, why, sizeof why), why);
        co_pg_cluster_url_schema(&g_cluster, PG_DB, schema, out, n);
    } else {
        snprintf(out, n, "sqlite:%s/%s.db", f->dir, name);
    }
}

/* Runs raw SQL on the test's store behind the store's back. */
static void raw_sql(const fixture *f, const char *sqlite_sql, const char *pg_sql)
{
    if (f->pg) {
        char q[1024], why[1024];
        snprintf(q, sizeof q, "SET search_path TO %s; %s", f->db, pg_sql);
        pg_check(co_pg_cluster_exec(&g_cluster, PG_DB, q, why, sizeof why), why);
    } else {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sqlite_sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
}

static void sub_path(const fixture *f, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", f->dir, name);
}

static co_exchange xch(const char *req, const char *pair, int64_t ts, const char *workload,
                       const char *arm, const char *role, double latency)
{
    co_exchange x;
    memset(&x, 0, sizeof x);
    snprintf(x.request_id, sizeof x.request_id, "%s", req);
    snprintf(x.pair_id, sizeof x.pair_id, "%s", pair);
    x.ts_ms = ts;
    x.workload = workload;
    x.arm = arm;
    x.role = role;
    x.model = strcmp(arm, "incumbent") == 0 ? "old-model" : "new-model";
    x.api = "openai";
    x.status = 200;
    x.latency_ms = latency;
    x.ttft_ms = -1;
    return x;
}

/* The standard traffic of most tests:
 *   1000 chat incumbent served  (r1, p1)   lat 100
 *   1001 chat candidate shadow  (r1, p1)   lat  80
 *   2000 chat incumbent served  (r2, p2)   lat 300, 502 error, no shadow
 *   3000 summarize candidate served (r3)   lat  50
 *   4000 chat candidate served  (r4, p4)   lat 200 (a canary request) */
static co_exchange traffic[5];

static void make_traffic(void)
{
    traffic[0] = xch("r1", "p1", 1000, "chat", "incumbent", "served", 100);
    traffic[0].user_key = "user-1";
    traffic[0].stream = 1;
    traffic[0].ttft_ms = 20;
    traffic[0].tokens_in = 10;
    traffic[0].tokens_out = 20;
    traffic[0].tokens_cached = 5;
    traffic[0].cost_usd = 0.01;
    traffic[0].finish_reason = "stop";
    traffic[0].request_json = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    traffic[0].output_text = "hello there";

    traffic[1] = xch("r1", "p1", 1001, "chat", "candidate", "shadow", 80);
    traffic[1].tokens_in = 10;
    traffic[1].tokens_out = 25;
    traffic[1].cost_usd = 0.002;
    traffic[1].output_text = "hi!";

    traffic[2] = xch("r2", "p2", 2000, "chat", "incumbent", "served", 300);
    traffic[2].status = 502;
    traffic[2].error_class = "5xx";
    traffic[2].tokens_in = 7;

    traffic[3] = xch("r3", "", 3000, "summarize", "candidate", "served", 50);
    traffic[3].api = "anthropic";

    traffic[4] = xch("r4", "p4", 4000, "chat", "candidate", "served", 200);
    traffic[4].tokens_in = 3;
    traffic[4].tokens_out = 40;
    traffic[4].cost_usd = 0.03;
}

static void record_traffic(co_store *st)
{
    make_traffic();
    assert_int_equal(co_store_record(st, traffic, 5), 0);
}

static size_t count_window(co_store *st, co_window_query q)
{
    co_exchange_list l;
    assert_int_equal(co_store_exchanges(st, &q, &l), 0);
    size_t n = l.n;
    co_exchange_list_free(&l);
    return n;
}

static int64_t count_all(co_store *st)
{
    co_window_summary s;
    co_window_query q = {0};
    assert_int_equal(co_store_window_summary(st, &q, &s), 0);
    return s.count;
}

/* ---- opening ------------------------------------------------------------ */

static void test_open_urls(void **state)
{
    fixture *f = *state;
    co_store *st = NULL;
    int v = 0;

    assert_string_equal(co_store_backend(f->st), f->pg ? "postgres" : "sqlite");
    assert_int_equal(co_store_schema_version(f->st, &v), 0);
    assert_int_equal(v, co_store_schema_latest());
    assert_int_equal(co_store_schema_latest(), 6);

    if (f->pg) {
        /* postgresql:// is the same thing; opening again migrates nothing */
        char url[600];
        snprintf(url, sizeof url, "postgresql%s", strchr(f->url, ':'));
        assert_int_equal(co_store_open(&st, url), 0);
        assert_string_equal(co_store_backend(st), "postgres");
        assert_int_equal(co_store_schema_version(st, &v), 0);
        assert_int_equal(v, 6);
        co_store_close(st);
        assert_int_equal(pg_scalar(f, NULL, "SELECT count(*) FROM cutover_schema"), 6);
        return;
    }

    /* SQLite only. WAL: the -wal file exists while a handle is open, and the
     * mode sticks. */
    char wal[256];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    struct stat sb;
    assert_int_equal(stat(wal, &sb), 0);
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    /* a new store has 16 KiB pages (fewer WAL writes per recorded exchange) */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 16384);
    sqlite3_finalize(q);
    /* v6: the exchanges CHECKs are ORs (no IN list: no temporary table per
     * insert), and still refuse what they refused */
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'exchanges'", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    const char *ddl = (const char *)sqlite3_column_text(q, 0);
    assert_non_null(strstr(ddl, "role = 'served' OR role = 'shadow' OR role = 'fallback'"));
    assert_non_null(strstr(ddl, "arm = 'incumbent' OR arm = 'candidate'"));
    assert_non_null(strstr(ddl, "stream = 0 OR stream = 1"));
    assert_null(strstr(ddl, " IN ("));
    sqlite3_finalize(q);
    static const char *const bad[] = {
        "INSERT INTO exchanges (ts_ms, workload, arm, role, model) VALUES (1, 'w', 'incumbent', 'bogus', 'm')",
        "INSERT INTO exchanges (ts_ms, workload, arm, role, model) VALUES (1, 'w', 'other', 'served', 'm')",
        "INSERT INTO exchanges (ts_ms, workload, arm, role, model, stream) VALUES (1, 'w', 'incumbent', 'served', 'm', 2)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sqlite3_exec(db, bad[i], NULL, NULL, NULL) & 0xff, SQLITE_CONSTRAINT);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO exchanges (ts_ms, workload, arm, role, model) "
                                  "VALUES (1, 'w', 'candidate', 'shadow', 'm')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    /* a bare path and sqlite:///abs/path name files too */
    char bare[256], url[300];
    sub_path(f, "bare.db", bare, sizeof bare);
    assert_int_equal(co_store_open(&st, bare), 0);
    co_store_close(st);
    assert_int_equal(stat(bare, &sb), 0);
    sub_path(f, "slashes.db", bare, sizeof bare);
    snprintf(url, sizeof url, "sqlite://%s", bare);
    assert_int_equal(co_store_open(&st, url), 0);
    co_store_close(st);
    assert_int_equal(stat(bare, &sb), 0);

    assert_int_equal(co_store_open(&st, "sqlite::memory:"), 0);
    assert_non_null(st);
    assert_string_equal(co_store_backend(st), "sqlite");
    assert_int_equal(co_store_schema_version(st, &v), 0);
    assert_int_equal(v, co_store_schema_latest());
    assert_int_equal(co_store_workload_state_set(st, "w", "shadow", 0, "t", NULL), 0);
    co_store_close(st);
}

static void test_open_bad_urls(void **state)
{
    fixture *f = *state;
    co_store *st = (co_store *)0x1;

    /* PostgreSQL URLs: an inline password is refused without being echoed,
     * in either spelling; an unreachable server is a store error. Port 1 on
     * loopback refuses at once: no server is needed for these. */
    assert_int_equal(co_store_open(&st, "postgres://u:s3cr3t-pw@127.0.0.1:1/cutover"), CO_EINVAL);
    assert_null(st);
    assert_null(strstr(co_error_last(), "s3cr3t"));
    assert_non_null(strstr(co_error_last(), "PGPASSWORD"));
    assert_int_equal(co_store_open(&st, "postgresql://u:s3cr3t-pw@127.0.0.1:1"), CO_EINVAL);
    assert_null(strstr(co_error_last(), "s3cr3t"));
    assert_int_equal(co_store_open(&st, "postgres://u@127.0.0.1:1/cutover?password=s3cr3t-pw"),
                     CO_EINVAL);
    assert_null(strstr(co_error_last(), "s3cr3t"));
    assert_int_equal(co_store_open(&st, "postgres://u@127.0.0.1:1/cutover?no_such_option=1"),
                     CO_EINVAL);
    assert_int_equal(co_store_open(&st, "postgresql://u@127.0.0.1:1/cutover?connect_timeout=5"),
                     CO_ESTORE);
    assert_null(st);
    assert_non_null(strstr(co_error_last(), "cannot connect to store postgresql://u@127.0.0.1:1/cutover"));
    assert_null(strstr(co_error_last(), "connect_timeout")); /* the query part is not shown */
    assert_null(strchr(co_error_last(), '\n'));              /* one line, for the log */

    assert_int_equal(co_store_open(&st, "mysql://db/cutover"), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "mysql"));
    assert_int_equal(co_store_open(&st, ""), CO_EINVAL);
    assert_int_equal(co_store_open(&st, "sqlite:"), CO_EINVAL);
    assert_int_equal(co_store_open(&st, NULL), CO_EINVAL);
    assert_int_equal(co_store_open(NULL, f->url), CO_EINVAL);
    co_store_close(NULL); /* harmless */
    assert_string_equal(co_store_backend(NULL), "none");

    if (f->pg) {
        /* A database with tables of the same names that are not ours is
         * left alone. */
        char url[600];
        other_store_url(f, "foreign", url, sizeof url);
        assert_int_equal(pg_scalar(f, "foreign", "CREATE TABLE exchanges (x int); SELECT 0"), 0);
        assert_int_equal(co_store_open(&st, url), CO_ESTORE);
        assert_null(st);
        assert_non_null(strstr(co_error_last(), "belongs to something else"));
        assert_int_equal(pg_scalar(f, "foreign", "SELECT count(*) FROM information_schema.tables"
                                                 " WHERE table_schema = current_schema()"),
                         1); /* no table of ours was added */
        return;
    }

    char p[256];
    sub_path(f, "no/such/dir/x.db", p, sizeof p);
    assert_int_equal(co_store_open(&st, p), CO_ESTORE);
    assert_null(st);
    assert_non_null(strstr(co_error_last(), "does not exist"));

    /* a file that is not a database at all */
    sub_path(f, "junk.db", p, sizeof p);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    for (int i = 0; i < 50; i++)
        fputs("this is not an sqlite database\n", fp);
    fclose(fp);
    assert_int_equal(co_store_open(&st, p), CO_ESTORE);
    assert_null(st);
    assert_non_null(strstr(co_error_last(), "junk.db is not an SQLite database"));

    /* an SQLite database of some other program is left alone */
    sub_path(f, "other.db", p, sizeof p);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(co_store_open(&st, p), CO_ESTORE);
    assert_non_null(strstr(co_error_last(), "does not belong to cutover"));
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1); /* no table of ours was added */
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void test_null_arguments(void **state)
{
    fixture *f = *state;
    co_window_query q = {0};
    co_exchange_list l;
    co_window_summary s;
    co_pair p;
    char *json;
    int v;

    make_traffic();
    assert_int_equal(co_store_record(NULL, traffic, 1), CO_EINVAL);
    assert_int_equal(co_store_record(f->st, NULL, 1), CO_EINVAL);
    assert_int_equal(co_store_record(f->st, NULL, 0), 0);
    assert_int_equal(co_store_exchanges(f->st, NULL, &l), CO_EINVAL);
    assert_null(l.v);
    assert_int_equal(co_store_exchanges(f->st, &q, NULL), CO_EINVAL);
    assert_int_equal(co_store_window_summary(NULL, &q, &s), CO_EINVAL);
    assert_int_equal(co_store_pair(f->st, NULL, &p), CO_EINVAL);
    assert_int_equal(co_store_pair(f->st, "", &p), CO_EINVAL);
    assert_int_equal(co_store_baseline_get(f->st, NULL, &json, NULL), CO_EINVAL);
    assert_null(json);
    assert_int_equal(co_store_cache_put(f->st, "m", "k", NULL), CO_EINVAL);
    assert_int_equal(co_store_schema_version(NULL, &v), CO_EINVAL);
    assert_int_equal(co_store_workload_state_set(f->st, "w", NULL, 0, NULL, NULL), CO_EINVAL);
    assert_int_equal(co_store_eval_results_each(f->st, 1, NULL, NULL), CO_EINVAL);
    co_rollout_state r = {.workload = "w", .state = "canary"};
    assert_int_equal(co_store_rollout_put(f->st, &r, -1), CO_EINVAL);
    co_rollout_event ev = {.workload = "w", .kind = "start"};
    assert_int_equal(co_store_rollout_event_add(f->st, &ev), CO_EINVAL); /* no actor */
    co_feedback fb = {.request_id = "r1", .score = 2};
    assert_int_equal(co_store_feedback_add(f->st, &fb), CO_EINVAL);
}

/* ---- exchanges ---------------------------------------------------------- */

static void test_record_round_trip(void **state)
{
    fixture *f = *state;
    record_traffic(f->st);

    co_exchange_list l;
    co_window_query q = {.with_text = 1};
    assert_int_equal(co_store_exchanges(f->st, &q, &l), 0);
    assert_int_equal(l.n, 5);
    /* unlimited windows come back in time order */
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(l.v[i].x.ts_ms, traffic[i].ts_ms);
    for (size_t i = 1; i < 5; i++)
        assert_true(l.v[i].id > l.v[i - 1].id);

    const co_exchange *x = &l.v[0].x, *want = &traffic[0];
    assert_true(l.v[0].id > 0);
    assert_string_equal(x->request_id, "r1");
    assert_string_equal(x->pair_id, "p1");
    assert_string_equal(x->workload, "chat");
    assert_string_equal(x->arm, "incumbent");
    assert_string_equal(x->role, "served");
    assert_string_equal(x->model, "old-model");
    assert_string_equal(x->api, "openai");
    assert_string_equal(x->user_key, "user-1");
    assert_int_equal(x->status, 200);
    assert_null(x->error_class);
    assert_int_equal(x->stream, 1);
    assert_true(x->latency_ms == 100);
    assert_true(x->ttft_ms == 20);
    assert_int_equal(x->tokens_in, 10);
    assert_int_equal(x->tokens_out, 20);
    assert_int_equal(x->tokens_cached, 5);
    assert_true(fabs(x->cost_usd - 0.01) < 1e-12);
    assert_string_equal(x->finish_reason, "stop");
    assert_string_equal(x->request_json, want->request_json);
    assert_string_equal(x->output_text, "hello there");

    /* absent values stay absent */
    assert_true(l.v[1].x.ttft_ms < 0);
    assert_null(l.v[1].x.user_key);
    assert_null(l.v[1].x.request_json);
    assert_string_equal(l.v[1].x.output_text, "hi!");
    assert_string_equal(l.v[2].x.error_class, "5xx");
    assert_int_equal(l.v[2].x.status, 502);
    assert_string_equal(l.v[3].x.pair_id, "");
    assert_string_equal(l.v[3].x.api, "anthropic");
    co_exchange_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);

    /* with_text = 0 leaves the bulky text out */
    q.with_text = 0;
    assert_int_equal(co_store_exchanges(f->st, &q, &l), 0);
    assert_int_equal(l.n, 5);
    for (size_t i = 0; i < l.n; i++) {
        assert_null(l.v[i].x.request_json);
        assert_null(l.v[i].x.output_text);
    }
    assert_string_equal(l.v[0].x.finish_reason, "stop");
    co_exchange_list_free(&l);
}

static void test_window_filters(void **state)
{
    fixture *f = *state;
    record_traffic(f->st);

    assert_int_equal(count_window(f->st, (co_window_query){0}), 5);
    assert_int_equal(count_window(f->st, (co_window_query){.workload = "chat"}), 4);
    assert_int_equal(count_window(f->st, (co_window_query){.workload = "nope"}), 0);
    assert_int_equal(count_window(f->st, (co_window_query){.arm = "candidate"}), 3);
    assert_int_equal(count_window(f->st, (co_window_query){.role = "served"}), 4);
    assert_int_equal(count_window(f->st, (co_window_query){.role = "shadow"}), 1);
    assert_int_equal(count_window(f->st, (co_window_query){.workload = "chat", .arm = "incumbent"}), 2);
    assert_int_equal(count_window(f->st, (co_window_query){.workload = "chat", .arm = "candidate",
                                                           .role = "served"}), 1);
    assert_int_equal(count_window(f->st, (co_window_query){.since_ms = 2000}), 3);
    assert_int_equal(count_window(f->st, (co_window_query){.until_ms = 2000}), 2);
    assert_int_equal(count_window(f->st, (co_window_query){.since_ms = 1001, .until_ms = 4000}), 3);

    /* limited windows keep the newest rows, newest first */
    co_exchange_list l;
    co_window_query q = {.limit = 2};
    assert_int_equal(co_store_exchanges(f->st, &q, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.v[0].x.ts_ms, 4000);
    assert_int_equal(l.v[1].x.ts_ms, 3000);
    co_exchange_list_free(&l);

    q = (co_window_query){.workload = "chat", .limit = 3, .with_text = 1};
    assert_int_equal(co_store_exchanges(f->st, &q, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0].x.ts_ms, 4000);
    assert_int_equal(l.v[1].x.ts_ms, 2000);
    assert_int_equal(l.v[2].x.ts_ms, 1001);
    assert_string_equal(l.v[2].x.output_text, "hi!");
    co_exchange_list_free(&l);

    /* the same filter shape again reuses its statement with new bindings */
    q = (co_window_query){.workload = "summarize", .limit = 3, .with_text = 1};
    assert_int_equal(co_store_exchanges(f->st, &q, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].x.request_id, "r3");
    co_exchange_list_free(&l);
}

static void test_window_summary_and_latencies(void **state)
{
    fixture *f = *state;
    record_traffic(f->st);

    co_window_summary s;
    co_window_query q = {.workload = "chat"};
    assert_int_equal(co_store_window_summary(f->st, &q, &s), 0);
    assert_int_equal(s.count, 4);
    assert_int_equal(s.errors, 1);
    assert_true(fabs(s.cost_usd - 0.042) < 1e-9);
    assert_int_equal(s.tokens_in, 30);
    assert_int_equal(s.tokens_out, 85);
    assert_int_equal(s.tokens_cached, 5);
    assert_true(s.latency_ms_sum == 680);
    assert_true(s.latency_ms_max == 300);

    q.limit = 2; /* the newest two: 4000 (200 ms) and 2000 (300 ms, error) */
    assert_int_equal(co_store_window_summary(f->st, &q, &s), 0);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.errors, 1);
    assert_true(s.latency_ms_sum == 500);

    q = (co_window_query){.workload = "nope"};
    assert_int_equal(co_store_window_summary(f->st, &q, &s), 0);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.errors, 0);
    assert_true(s.cost_usd == 0 && s.latency_ms_sum == 0 && s.latency_ms_max == 0);

    double *lat;
    size_t n;
    q = (co_window_query){0};
    assert_int_equal(co_store_window_latencies(f->st, &q, &lat, &n), 0);
    assert_int_equal(n, 5);
    const double all[] = {50, 80, 100, 200, 300};
    for (size_t i = 0; i < n; i++)
        assert_true(lat[i] == all[i]);
    free(lat);

    q = (co_window_query){.workload = "chat", .arm = "incumbent"};
    assert_int_equal(co_store_window_latencies(f->st, &q, &lat, &n), 0);
    assert_int_equal(n, 2);
    assert_true(lat[0] == 100 && lat[1] == 300);
    free(lat);

    q = (co_window_query){.limit = 3}; /* newest three: 200, 50, 300 -> sorted */
    assert_int_equal(co_store_window_latencies(f->st, &q, &lat, &n), 0);
    assert_int_equal(n, 3);
    assert_true(lat[0] == 50 && lat[1] == 200 && lat[2] == 300);
    free(lat);

    q = (co_window_query){.role = "fallback"};
    assert_int_equal(co_store_window_latencies(f->st, &q, &lat, &n), 0);
    assert_int_equal(n, 0);
    assert_null(lat);
}

static void test_pairs(void **state)
{
    fixture *f = *state;
    record_traffic(f->st);
    co_exchange more[2] = {
        xch("r6", "p6", 5000, "chat", "incumbent", "served", 90),
        xch("r6", "p6", 5001, "chat", "candidate", "shadow", 70),
    };
    more[1].output_text = "shadow answer";
    assert_int_equal(co_store_record(f->st, more, 2), 0);

    co_pair p;
    assert_int_equal(co_store_pair(f->st, "p1", &p), 0);
    assert_string_equal(p.served.x.role, "served");
    assert_string_equal(p.served.x.arm, "incumbent");
    assert_string_equal(p.served.x.output_text, "hello there");
    assert_true(p.shadow.id > 0);
    assert_string_equal(p.shadow.x.role, "shadow");
    assert_string_equal(p.shadow.x.arm, "candidate");
    assert_string_equal(p.shadow.x.pair_id, "p1");
    assert_string_equal(p.shadow.x.output_text, "hi!");
    co_pair_clear(&p);
    assert_int_equal(p.served.id, 0);

    assert_int_equal(co_store_pair(f->st, "p2", &p), 0);
    assert_string_equal(p.served.x.request_id, "r2");
    assert_int_equal(p.shadow.id, 0);
    co_pair_clear(&p);

    assert_int_equal(co_store_pair(f->st, "nope", &p), CO_ENOENT);
    assert_int_equal(p.served.id, 0);

    co_pair *v;
    size_t n;
    assert_int_equal(co_store_pairs(f->st, "chat", 0, 0, &v, &n), 0);
    assert_int_equal(n, 2); /* p2 and p4 have no shadow */
    assert_string_equal(v[0].served.x.pair_id, "p6");
    assert_string_equal(v[0].shadow.x.output_text, "shadow answer");
    assert_string_equal(v[1].served.x.pair_id, "p1");
    assert_string_equal(v[1].shadow.x.request_id, "r1");
    co_pairs_free(v, n);

    assert_int_equal(co_store_pairs(f->st, "chat", 1, 1, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].served.x.pair_id, "p1");
    co_pairs_free(v, n);

    assert_int_equal(co_store_pairs(f->st, NULL, 10, 0, &v, &n), 0);
    assert_int_equal(n, 2);
    co_pairs_free(v, n);

    assert_int_equal(co_store_pairs(f->st, "summarize", 10, 0, &v, &n), 0);
    assert_int_equal(n, 0);
    co_pairs_free(v, n);
}

/* Pair ids that are not the request id (API users and tests may give any):
 * since v5 those rows are found through exchanges_pair_other, the gateway's
 * (pair id = request id) through the (request_id, role) index; a pair may
 * mix both, and a row's request id equal to another pair's id must not
 * pull it into that pair. */
static void test_pairs_other_ids(void **state)
{
    fixture *f = *state;
    co_exchange xs[9] = {
        xch("a1", "pa", 100, "w", "incumbent", "served", 10),  /* pair pa: other ids */
        xch("pa", "pa", 101, "w", "candidate", "shadow", 11),  /* pa's first shadow: request id = pair id */
        xch("a2", "pa", 102, "w", "candidate", "shadow", 12),  /* a later shadow of pa */
        xch("", "pn", 200, "w", "incumbent", "served", 20),    /* no request ids */
        xch("", "pn", 201, "w", "candidate", "shadow", 21),
        xch("r9", "r9", 300, "w", "incumbent", "served", 30),  /* gateway-style served ... */
        xch("s9", "r9", 301, "w", "candidate", "shadow", 31),  /* ... and another id's shadow */
        xch("pa", "zz", 400, "w", "incumbent", "served", 40),  /* request id pa, pair zz */
        xch("zz", "q", 401, "w", "candidate", "shadow", 41),   /* request id zz, pair q */
    };
    xs[1].output_text = "pa shadow";
    assert_int_equal(co_store_record(f->st, xs, 9), 0);

    co_pair p;
    assert_int_equal(co_store_pair(f->st, "pa", &p), 0);
    assert_string_equal(p.served.x.request_id, "a1");
    assert_string_equal(p.shadow.x.request_id, "pa"); /* the first shadow by id */
    assert_string_equal(p.shadow.x.output_text, "pa shadow");
    co_pair_clear(&p);

    assert_int_equal(co_store_pair(f->st, "pn", &p), 0);
    assert_string_equal(p.served.x.request_id, "");
    assert_true(p.served.x.latency_ms == 20);
    assert_true(p.shadow.x.latency_ms == 21);
    co_pair_clear(&p);

    assert_int_equal(co_store_pair(f->st, "r9", &p), 0);
    assert_string_equal(p.served.x.request_id, "r9");
    assert_string_equal(p.shadow.x.request_id, "s9");
    co_pair_clear(&p);

    /* request id pa belongs to pair zz: zz has a served row and no shadow */
    assert_int_equal(co_store_pair(f->st, "zz", &p), 0);
    assert_string_equal(p.served.x.request_id, "pa");
    assert_int_equal(p.shadow.id, 0);
    co_pair_clear(&p);
    assert_int_equal(co_store_pair(f->st, "q", &p), CO_ENOENT); /* a shadow alone */
    assert_int_equal(co_store_pair(f->st, "a1", &p), CO_ENOENT); /* a request id, not a pair */

    co_pair *v;
    size_t n;
    for (int all = 0; all < 2; all++) {
        assert_int_equal(co_store_pairs(f->st, all ? NULL : "w", 0, 0, &v, &n), 0);
        assert_int_equal(n, 3); /* zz has no shadow */
        assert_string_equal(v[0].served.x.pair_id, "r9");
        assert_string_equal(v[0].shadow.x.request_id, "s9");
        assert_string_equal(v[1].served.x.pair_id, "pn");
        assert_true(v[1].shadow.x.latency_ms == 21);
        assert_string_equal(v[2].served.x.pair_id, "pa");
        assert_string_equal(v[2].shadow.x.request_id, "pa");
        co_pairs_free(v, n);
    }
}

static void test_record_all_or_nothing(void **state)
{
    fixture *f = *state;
    record_traffic(f->st);
    assert_int_equal(count_all(f->st), 5);

    co_exchange batch[3] = {
        xch("a1", "", 6000, "chat", "incumbent", "served", 10),
        xch("a2", "", 6001, "chat", "incumbent", "served", 10),
        xch("a3", "", 6002, "chat", "incumbent", "bogus", 10), /* CHECK fails */
    };
    assert_int_equal(co_store_record(f->st, batch, 3), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "exchange 3 of 3"));
    assert_int_equal(count_all(f->st), 5);

    batch[2].role = "served";
    batch[1].latency_ms = -5; /* CHECK fails in the middle */
    assert_int_equal(co_store_record(f->st, batch, 3), CO_EINVAL);
    assert_int_equal(count_all(f->st), 5);

    batch[1].latency_ms = 10;
    batch[0].workload = NULL; /* refused before anything is written */
    assert_int_equal(co_store_record(f->st, batch, 3), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "no workload"));
    assert_int_equal(count_all(f->st), 5);

    /* the handle is usable again: no transaction was left open */
    batch[0].workload = "chat";
    assert_int_equal(co_store_record(f->st, batch, 3), 0);
    assert_int_equal(count_all(f->st), 8);
}

/* Batches longer than one multi-row insert (SQLite writes 64 rows per
 * statement): a bad row deep inside is still named, nothing is written, and
 * copies inside one chunk and across chunks land once. */
static void test_record_long_batch_faults(void **state)
{
    fixture *f = *state;
    enum { N = 150 };
    static co_exchange b[N];
    static char ids[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "L%d", i);
        b[i] = xch(ids[i], ids[i], 9000 + i, "chat", "incumbent", "served", i);
    }
    b[69].role = "bogus";
    assert_int_equal(co_store_record(f->st, b, N), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "exchange 70 of 150"));
    assert_int_equal(count_all(f->st), 0);
    b[69].role = "served";
    b[140].latency_ms = -1; /* in the tail after the full chunks */
    assert_int_equal(co_store_record(f->st, b, N), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "exchange 141 of 150"));
    assert_int_equal(count_all(f->st), 0);
    b[140].latency_ms = 1;
    b[10] = b[5];   /* a copy in the same chunk */
    b[100] = b[7];  /* and one in a later chunk */
    assert_int_equal(co_store_record(f->st, b, N), 0);
    assert_int_equal(count_all(f->st), N - 2);
    assert_int_equal(co_store_record(f->st, b, N), 0); /* sent again: nothing new */
    assert_int_equal(count_all(f->st), N - 2);
}

/* A batch sent again (its commit reached the store, the acknowledgement did
 * not reach the recorder) lands once: (request_id, role) is unique. Another
 * role of the same request, and rows without a request id, are new rows. */
static void test_record_exactly_once(void **state)
{
    fixture *f = *state;
    co_exchange batch[3] = {
        xch("e1", "e1", 7000, "chat", "incumbent", "served", 10),
        xch("e2", "e2", 7001, "chat", "incumbent", "served", 11),
        xch("e2", "e2", 7002, "chat", "candidate", "shadow", 12),
    };
    assert_int_equal(co_store_record(f->st, batch, 3), 0);
    assert_int_equal(count_all(f->st), 3);
    assert_int_equal(co_store_record(f->st, batch, 3), 0);
    assert_int_equal(count_all(f->st), 3);
    /* a new row beside copies in one batch: only it lands */
    co_exchange mixed[3] = {
        batch[0],
        xch("e3", "e3", 7003, "chat", "incumbent", "served", 13),
        xch("e3", "e3", 7003, "chat", "incumbent", "served", 13), /* twice within the batch */
    };
    assert_int_equal(co_store_record(f->st, mixed, 3), 0);
    assert_int_equal(count_all(f->st), 4);
    co_exchange fallback = xch("e1", "e1", 7004, "chat", "incumbent", "fallback", 14);
    assert_int_equal(co_store_record(f->st, &fallback, 1), 0);
    assert_int_equal(count_all(f->st), 5);
    co_exchange anon[2] = {
        xch("", "", 7005, "chat", "incumbent", "served", 15),
        xch("", "", 7006, "chat", "incumbent", "served", 16),
    };
    assert_int_equal(co_store_record(f->st, anon, 2), 0);
    assert_int_equal(count_all(f->st), 7);
    /* the first copy is the one kept */
    co_pair pr;
    assert_int_equal(co_store_pair(f->st, "e2", &pr), 0);
    assert_true(pr.served.x.latency_ms == 11);
    assert_true(pr.shadow.x.latency_ms == 12);
    co_pair_clear(&pr);
}

/* ---- eval ----------------------------------------------------------------- */

typedef struct collect {
    int n;
    int stop_after;   /* > 0: return 1 after this many */
    int fail_with;    /* != 0: return it at the first result */
    co_store *st;     /* re-entrancy probes */
    int64_t run_id;
    int inner_rc, nested_rc;
    char cases[8][16];
    int passed[8];
    double scores[8];
} collect;

static int collect_cb(const co_eval_result *r, void *ud)
{
    collect *c = ud;
    if (c->fail_with)
        return c->fail_with;
    if (c->n < 8) {
        snprintf(c->cases[c->n], sizeof c->cases[c->n], "%s/%s", r->case_id, r->arm);
        c->passed[c->n] = r->passed;
        c->scores[c->n] = r->score;
    }
    c->n++;
    if (c->st) {
        co_eval_run run;
        c->inner_rc = co_store_eval_run_get(c->st, c->run_id, &run);
        co_eval_run_clear(&run);
        c->nested_rc = co_store_eval_results_each(c->st, c->run_id, collect_cb, &(collect){0});
    }
    return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static void test_eval_runs(void **state)
{
    fixture *f = *state;
    co_eval_run run = {.suite = "evals/golden.yaml", .config_json = "{\"arms\":2}"};
    assert_int_equal(co_store_eval_run_begin(f->st, &run), 0);
    assert_true(run.id > 0);
    assert_true(run.started_ms > 0);

    co_eval_run got;
    assert_int_equal(co_store_eval_run_get(f->st, run.id, &got), 0);
    assert_string_equal(got.status, "running");
    assert_string_equal(got.suite, "evals/golden.yaml");
    assert_string_equal(got.config_json, "{\"arms\":2}");
    assert_null(got.summary_json);
    assert_int_equal(got.finished_ms, 0);
    co_eval_run_clear(&got);

    co_eval_result rs[3] = {
        {.case_id = "a", .workload = "chat", .arm = "incumbent", .passed = 1, .score = 1.0,
         .latency_ms = 120, .cost_usd = 0.001, .tokens_in = 11, .tokens_out = 22,
         .output_text = "ok", .detail_json = "[{\"pass\":true}]"},
        {.case_id = "a", .workload = "chat", .arm = "candidate", .passed = 0, .score = 0.25,
         .error = "timeout"},
        {.case_id = "b", .workload = "chat", .arm = "incumbent", .repeat = 1, .passed = 1,
         .score = 0.75},
    };
    assert_int_equal(co_store_eval_results_add(f->st, run.id, rs, 3), 0);
    assert_int_equal(co_store_eval_run_finish(f->st, run.id, "done", "{\"pass_rate\":0.66}"), 0);

    assert_int_equal(co_store_eval_run_get(f->st, run.id, &got), 0);
    assert_int_equal(got.id, run.id);
    assert_string_equal(got.status, "done");
    assert_string_equal(got.summary_json, "{\"pass_rate\":0.66}");
    assert_true(got.finished_ms >= got.started_ms);
    co_eval_run_clear(&got);

    collect c = {0};
    assert_int_equal(co_store_eval_results_each(f->st, run.id, collect_cb, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.cases[0], "a/incumbent");
    assert_string_equal(c.cases[1], "a/candidate");
    assert_string_equal(c.cases[2], "b/incumbent");
    assert_int_equal(c.passed[1], 0);
    assert_true(c.scores[2] == 0.75);

    c = (collect){.stop_after = 1};
    assert_int_equal(co_store_eval_results_each(f->st, run.id, collect_cb, &c), 0);
    assert_int_equal(c.n, 1);
    c = (collect){.fail_with = CO_EIO};
    assert_int_equal(co_store_eval_results_each(f->st, run.id, collect_cb, &c), CO_EIO);

    /* from inside the callback: other operations work, the same one is refused */
    c = (collect){.st = f->st, .run_id = run.id, .stop_after = 1};
    assert_int_equal(co_store_eval_results_each(f->st, run.id, collect_cb, &c), 0);
    assert_int_equal(c.inner_rc, 0);
    assert_int_equal(c.nested_rc, CO_EBUSY);

    /* a duplicate (same case/arm/repeat) fails the whole batch */
    co_eval_result dup[2] = {
        {.case_id = "c", .workload = "chat", .arm = "incumbent", .passed = 1},
        {.case_id = "a", .workload = "chat", .arm = "incumbent", .passed = 1},
    };
    assert_int_equal(co_store_eval_results_add(f->st, run.id, dup, 2), CO_EEXIST);
    c = (collect){0};
    assert_int_equal(co_store_eval_results_each(f->st, run.id, collect_cb, &c), 0);
    assert_int_equal(c.n, 3);

    /* unknown runs */
    assert_int_equal(co_store_eval_run_get(f->st, run.id + 100, &got), CO_ENOENT);
    assert_int_equal(co_store_eval_run_finish(f->st, run.id + 100, "failed", NULL), CO_ENOENT);
    assert_int_equal(co_store_eval_results_each(f->st, run.id + 100, collect_cb, &c), CO_ENOENT);
    assert_int_equal(co_store_eval_results_add(f->st, run.id + 100, rs, 1), CO_ENOENT);
    assert_int_equal(co_store_eval_run_finish(f->st, run.id, "bogus", NULL), CO_EINVAL);

    co_eval_run second = {.suite = "s2"};
    assert_int_equal(co_store_eval_run_begin(f->st, &second), 0);
    assert_true(second.id > run.id);
}

static void test_baseline(void **state)
{
    fixture *f = *state;
    char *json = (char *)"x";
    int64_t run_id = -1;
    assert_int_equal(co_store_baseline_get(f->st, "chat", &json, &run_id), CO_ENOENT);
    assert_null(json);
    assert_int_equal(run_id, 0);

    co_eval_run run = {.suite = "s"};
    assert_int_equal(co_store_eval_run_begin(f->st, &run), 0);
    assert_int_equal(co_store_baseline_put(f->st, "chat", run.id, "{\"pass_rate\":0.9}"), 0);
    assert_int_equal(co_store_baseline_get(f->st, "chat", &json, &run_id), 0);
    assert_string_equal(json, "{\"pass_rate\":0.9}");
    assert_int_equal(run_id, run.id);
    free(json);

    assert_int_equal(co_store_baseline_put(f->st, "chat", 0, "{\"pass_rate\":0.95}"), 0);
    assert_int_equal(co_store_baseline_get(f->st, "chat", &json, &run_id), 0);
    assert_string_equal(json, "{\"pass_rate\":0.95}");
    assert_int_equal(run_id, 0);
    free(json);
    assert_int_equal(co_store_baseline_get(f->st, "chat", &json, NULL), 0);
    free(json);

    assert_int_equal(co_store_baseline_get(f->st, "summarize", &json, NULL), CO_ENOENT);
    /* a baseline must come from a run the store knows */
    assert_int_equal(co_store_baseline_put(f->st, "summarize", run.id + 50, "{}"), CO_EINVAL);
}

static void test_cache(void **state)
{
    fixture *f = *state;
    char *json = NULL;
    assert_int_equal(co_store_cache_get(f->st, "gpt-x", "k1", &json), CO_ENOENT);
    assert_null(json);
    assert_int_equal(co_store_cache_put(f->st, "gpt-x", "k1", "{\"a\":1}"), 0);
    assert_int_equal(co_store_cache_get(f->st, "gpt-x", "k1", &json), 0);
    assert_string_equal(json, "{\"a\":1}");
    free(json);
    assert_int_equal(co_store_cache_put(f->st, "gpt-x", "k1", "{\"a\":2}"), 0);
    assert_int_equal(co_store_cache_get(f->st, "gpt-x", "k1", &json), 0);
    assert_string_equal(json, "{\"a\":2}");
    free(json);
    /* keyed by model too */
    assert_int_equal(co_store_cache_get(f->st, "claude-y", "k1", &json), CO_ENOENT);
    assert_int_equal(co_store_cache_get(f->st, "gpt-x", "k2", &json), CO_ENOENT);
}

/* ---- workload mode + rollout -------------------------------------------- */

static void test_workload_state(void **state)
{
    fixture *f = *state;
    co_workload_state s;
    int64_t v1 = 0, v2 = 0, v3 = 0;

    assert_int_equal(co_store_workload_state_get(f->st, "chat", &s), CO_ENOENT);
    assert_null(s.workload);

    assert_int_equal(co_store_workload_state_set(f->st, "chat", "shadow", 0, "user:ana", &v1), 0);
    assert_int_equal(co_store_workload_state_set(f->st, "summarize", "canary", 1, "controller", &v2), 0);
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "canary", 10, "controller", &v3), 0);
    assert_true(v1 > 0);
    assert_true(v2 > v1);
    assert_true(v3 > v2);

    assert_int_equal(co_store_workload_state_get(f->st, "chat", &s), 0);
    assert_string_equal(s.workload, "chat");
    assert_string_equal(s.mode, "canary");
    assert_true(s.percent == 10);
    assert_int_equal(s.version, v3);
    assert_string_equal(s.updated_by, "controller");
    assert_true(s.updated_ms > 0);
    co_workload_state_clear(&s);
    assert_null(s.mode);

    co_workload_state *v;
    size_t n;
    assert_int_equal(co_store_workload_states(f->st, 0, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].workload, "summarize");
    assert_string_equal(v[1].workload, "chat");
    co_workload_states_free(v, n);

    assert_int_equal(co_store_workload_states(f->st, v2, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].workload, "chat");
    assert_int_equal(v[0].version, v3);
    co_workload_states_free(v, n);

    assert_int_equal(co_store_workload_states(f->st, v3, &v, &n), 0);
    assert_int_equal(n, 0);
    co_workload_states_free(v, n);

    /* bad values are refused and change nothing */
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "sideways", 0, NULL, NULL), CO_EINVAL);
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "canary", 150, NULL, NULL), CO_EINVAL);
    assert_int_equal(co_store_workload_state_get(f->st, "chat", &s), 0);
    assert_int_equal(s.version, v3);
    assert_true(s.percent == 10);
    co_workload_state_clear(&s);
}

static void test_rollout_cas(void **state)
{
    fixture *f = *state;
    co_rollout_state got;
    assert_int_equal(co_store_rollout_get(f->st, "chat", &got), CO_ENOENT);

    co_rollout_state r = {.workload = "chat", .state = "shadow", .stage = 0,
                          .stage_started_ms = 1000, .data_json = "{\"salt\":\"abc\"}"};
    assert_int_equal(co_store_rollout_put(f->st, &r, 0), 0);
    assert_int_equal(r.version, 1);

    /* expected 0 means "must not exist yet" */
    co_rollout_state other = {.workload = "chat", .state = "canary"};
    assert_int_equal(co_store_rollout_put(f->st, &other, 0), CO_ECONFLICT);
    assert_non_null(strstr(co_error_last(), "already exists"));

    r.state = "canary";
    r.stage = 1;
    r.hold_elapsed_ms = 250;
    assert_int_equal(co_store_rollout_put(f->st, &r, 1), 0);
    assert_int_equal(r.version, 2);

    /* a writer still holding version 1 loses */
    other.stage = 3;
    assert_int_equal(co_store_rollout_put(f->st, &other, 1), CO_ECONFLICT);
    assert_non_null(strstr(co_error_last(), "version 2"));
    /* and a rollout that does not exist cannot be updated */
    co_rollout_state ghost = {.workload = "ghost", .state = "canary"};
    assert_int_equal(co_store_rollout_put(f->st, &ghost, 4), CO_ECONFLICT);

    assert_int_equal(co_store_rollout_get(f->st, "chat", &got), 0);
    assert_string_equal(got.workload, "chat");
    assert_string_equal(got.state, "canary");
    assert_int_equal(got.stage, 1);
    assert_int_equal(got.stage_started_ms, 1000);
    assert_int_equal(got.hold_elapsed_ms, 250);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.data_json, "{\"salt\":\"abc\"}");
    co_rollout_state_clear(&got);

    r.state = "sideways";
    assert_int_equal(co_store_rollout_put(f->st, &r, 2), CO_EINVAL);
    assert_int_equal(co_store_rollout_get(f->st, "chat", &got), 0);
    assert_int_equal(got.version, 2);
    co_rollout_state_clear(&got);
}

static void test_rollout_events(void **state)
{
    fixture *f = *state;
    co_rollout_event e1 = {.workload = "chat", .ts_ms = 100, .actor = "user:ana", .kind = "start",
                           .from_state = "pending", .to_state = "shadow", .reason = "go"};
    co_rollout_event e2 = {.workload = "summarize", .actor = "controller", .kind = "promote",
                           .metrics_json = "{\"err\":0}"};
    co_rollout_event e3 = {.workload = "chat", .ts_ms = 300, .actor = "controller",
                           .kind = "rollback", .from_state = "canary", .to_state = "rolled_back",
                           .reason = "error rate 7% > 5%"};
    assert_int_equal(co_store_rollout_event_add(f->st, &e1), 0);
    assert_int_equal(co_store_rollout_event_add(f->st, &e2), 0);
    assert_int_equal(co_store_rollout_event_add(f->st, &e3), 0);
    assert_true(e1.id > 0 && e2.id > e1.id && e3.id > e2.id);
    assert_true(e2.ts_ms > 0); /* stamped when not given */

    co_rollout_event_list l;
    assert_int_equal(co_store_rollout_events(f->st, "chat", 0, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.v[0].id, e1.id);
    assert_string_equal(l.v[0].kind, "start");
    assert_string_equal(l.v[0].actor, "user:ana");
    assert_string_equal(l.v[0].from_state, "pending");
    assert_string_equal(l.v[0].to_state, "shadow");
    assert_string_equal(l.v[0].reason, "go");
    assert_null(l.v[0].metrics_json);
    assert_int_equal(l.v[0].ts_ms, 100);
    assert_string_equal(l.v[1].kind, "rollback");
    co_rollout_event_list_free(&l);
    assert_null(l.v);

    assert_int_equal(co_store_rollout_events(f->st, "chat", e1.id, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].id, e3.id);
    co_rollout_event_list_free(&l);

    assert_int_equal(co_store_rollout_events(f->st, NULL, 0, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[1].metrics_json, "{\"err\":0}");
    co_rollout_event_list_free(&l);

    assert_int_equal(co_store_rollout_events(f->st, NULL, e3.id, &l), 0);
    assert_int_equal(l.n, 0);
    co_rollout_event_list_free(&l);
}

static void test_incidents(void **state)
{
    fixture *f = *state;
    co_incident got;
    assert_int_equal(co_store_incident_get(f->st, 0, NULL, &got), CO_ENOENT);

    co_incident a = {.workload = "chat", .ts_ms = 1000, .trigger = "error_rate",
                     .report_md = "# Incident A", .data_json = "{\"x\":1}"};
    co_incident b = {.workload = "summarize", .ts_ms = 3000, .trigger = "p95_latency"};
    co_incident c = {.workload = "chat", .ts_ms = 2000, .trigger = "manual"};
    assert_int_equal(co_store_incident_add(f->st, &a), 0);
    assert_int_equal(co_store_incident_add(f->st, &b), 0);
    assert_int_equal(co_store_incident_add(f->st, &c), 0);
    assert_true(a.id > 0 && b.id > a.id && c.id > b.id);

    assert_int_equal(co_store_incident_get(f->st, 0, NULL, &got), 0);
    assert_int_equal(got.id, b.id); /* latest by time, not by id */
    assert_string_equal(got.trigger, "p95_latency");
    assert_null(got.report_md);
    co_incident_clear(&got);

    assert_int_equal(co_store_incident_get(f->st, -1, "chat", &got), 0);
    assert_int_equal(got.id, c.id);
    assert_string_equal(got.trigger, "manual");
    co_incident_clear(&got);

    assert_int_equal(co_store_incident_get(f->st, a.id, NULL, &got), 0);
    assert_string_equal(got.workload, "chat");
    assert_int_equal(got.ts_ms, 1000);
    assert_string_equal(got.report_md, "# Incident A");
    assert_string_equal(got.data_json, "{\"x\":1}");
    co_incident_clear(&got);
    assert_null(got.workload);

    assert_int_equal(co_store_incident_get(f->st, c.id + 10, NULL, &got), CO_ENOENT);
    assert_int_equal(co_store_incident_get(f->st, 0, "other", &got), CO_ENOENT);

    co_incident now = {.workload = "chat"};
    assert_int_equal(co_store_incident_add(f->st, &now), 0);
    assert_true(now.ts_ms > 1000000000000LL);
}

/* ---- reviews, feedback, evidence ---------------------------------------- */

static void test_reviews(void **state)
{
    fixture *f = *state;
    co_review r1 = {.pair_id = "p1", .reviewer = "ana", .verdict = "candidate_better",
                    .note = "shorter", .ts_ms = 10};
    co_review r2 = {.pair_id = "p1", .reviewer = "bo", .verdict = "same", .ts_ms = 20};
    co_review r3 = {.pair_id = "p2", .reviewer = "ana", .verdict = "both_bad", .ts_ms = 30};
    assert_int_equal(co_store_review_add(f->st, &r1), 0);
    assert_int_equal(co_store_review_add(f->st, &r2), 0);
    assert_int_equal(co_store_review_add(f->st, &r3), 0);

    co_review *v;
    size_t n;
    assert_int_equal(co_store_reviews(f->st, "p1", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].reviewer, "ana");
    assert_string_equal(v[0].verdict, "candidate_better");
    assert_string_equal(v[0].note, "shorter");
    assert_int_equal(v[0].ts_ms, 10);
    assert_string_equal(v[1].reviewer, "bo");
    assert_null(v[1].note);
    co_reviews_free(v, n);

    /* a reviewer changing their mind replaces their verdict */
    r1.verdict = "incumbent_better";
    r1.ts_ms = 40;
    assert_int_equal(co_store_review_add(f->st, &r1), 0);
    assert_int_equal(co_store_reviews(f->st, "p1", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].reviewer, "ana");
    assert_string_equal(v[1].verdict, "incumbent_better");
    co_reviews_free(v, n);

    assert_int_equal(co_store_reviews(f->st, NULL, &v, &n), 0);
    assert_int_equal(n, 3);
    co_reviews_free(v, n);

    co_review bad = {.pair_id = "p1", .reviewer = "cy", .verdict = "meh"};
    assert_int_equal(co_store_review_add(f->st, &bad), CO_EINVAL);
    assert_int_equal(co_store_reviews(f->st, "p9", &v, &n), 0);
    assert_int_equal(n, 0);
}

static void test_feedback_summary(void **state)
{
    fixture *f = *state;
    record_traffic(f->st);
    co_feedback fb[] = {
        {.request_id = "r1", .score = -1, .comment = "wrong"},
        {.request_id = "r2", .score = 1},
        {.request_id = "r4", .score = 1},
        {.request_id = "unknown", .score = -1},
    };
    for (size_t i = 0; i < sizeof fb / sizeof fb[0]; i++)
        assert_int_equal(co_store_feedback_add(f->st, &fb[i]), 0);

    int64_t total = -1, neg = -1;
    co_window_query q = {.workload = "chat"};
    /* r1 has a served and a shadow row: it still counts once */
    assert_int_equal(co_store_feedback_summary(f->st, &q, &total, &neg), 0);
    assert_int_equal(total, 3);
    assert_int_equal(neg, 1);

    q = (co_window_query){.arm = "candidate"}; /* r1 (shadow), r3, r4 */
    assert_int_equal(co_store_feedback_summary(f->st, &q, &total, &neg), 0);
    assert_int_equal(total, 2);
    assert_int_equal(neg, 1);

    q = (co_window_query){.workload = "chat", .since_ms = 1500}; /* r2, r4 */
    assert_int_equal(co_store_feedback_summary(f->st, &q, &total, &neg), 0);
    assert_int_equal(total, 2);
    assert_int_equal(neg, 0);

    q = (co_window_query){.limit = 1}; /* only r4 */
    assert_int_equal(co_store_feedback_summary(f->st, &q, &total, &neg), 0);
    assert_int_equal(total, 1);

    /* a second vote replaces the first */
    co_feedback again = {.request_id = "r2", .score = -1};
    assert_int_equal(co_store_feedback_add(f->st, &again), 0);
    q = (co_window_query){.workload = "chat"};
    assert_int_equal(co_store_feedback_summary(f->st, &q, &total, &neg), 0);
    assert_int_equal(total, 3);
    assert_int_equal(neg, 2);

    q = (co_window_query){.workload = "summarize"};
    assert_int_equal(co_store_feedback_summary(f->st, &q, &total, &neg), 0);
    assert_int_equal(total, 0);
    assert_int_equal(neg, 0);
}

static void test_evidence(void **state)
{
    fixture *f = *state;
    co_evidence e1 = {.item = "baseline.saved", .workload = "chat", .ts_ms = 10,
                      .data_json = "{\"run\":1}"};
    co_evidence e2 = {.item = "shadow.started", .workload = "chat", .ts_ms = 20};
    co_evidence e3 = {.item = "baseline.saved", .workload = NULL};
    assert_int_equal(co_store_evidence_add(f->st, &e1), 0);
    assert_int_equal(co_store_evidence_add(f->st, &e2), 0);
    assert_int_equal(co_store_evidence_add(f->st, &e3), 0);
    assert_true(e1.id > 0 && e2.id > e1.id && e3.id > e2.id);
    assert_true(e3.ts_ms > 20);

    co_evidence *v;
    size_t n;
    assert_int_equal(co_store_evidence(f->st, "baseline.saved", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, e1.id);
    assert_string_equal(v[0].workload, "chat");
    assert_string_equal(v[0].data_json, "{\"run\":1}");
    assert_int_equal(v[1].id, e3.id);
    assert_null(v[1].workload);
    co_evidence_free(v, n);

    assert_int_equal(co_store_evidence(f->st, NULL, &v, &n), 0);
    assert_int_equal(n, 3);
    co_evidence_free(v, n);

    assert_int_equal(co_store_evidence(f->st, "rollout.finalized", &v, &n), 0);
    assert_int_equal(n, 0);
    assert_null(v);
}

/* ---- schema --------------------------------------------------------------- */

static void test_migration_from_v1(void **state)
{
    fixture *f = *state;
    char p[600];
    other_store_url(f, "old", p, sizeof p);

    co_store *old = NULL;
    int v = 0;
    assert_int_equal(co__store_open_at(&old, p, 1), 0);
    assert_int_equal(co_store_schema_version(old, &v), 0);
    assert_int_equal(v, 1);
    record_traffic(old);
    record_traffic(old); /* before v4 a batch sent again landed twice */
    assert_int_equal(count_all(old), 10);
    int64_t ver = 0;
    assert_int_equal(co_store_workload_state_set(old, "chat", "shadow", 0, "ana", &ver), 0);
    co_rollout_event ev = {.workload = "chat", .actor = "ana", .kind = "start"};
    assert_int_equal(co_store_rollout_event_add(old, &ev), 0);
    /* v2 tables do not exist yet */
    assert_int_equal(co_store_baseline_put(old, "chat", 0, "{}"), CO_ESTORE);
    assert_non_null(strstr(co_error_last(), "baselines"));
    co_store_close(old);

    co_store *st = NULL;
    assert_int_equal(co_store_open(&st, p), 0);
    assert_int_equal(co_store_schema_version(st, &v), 0);
    assert_int_equal(v, 6);
    assert_int_equal(count_all(st), 5); /* v4 kept the first of each copy */
    co_pair pr;
    assert_int_equal(co_store_pair(st, "p1", &pr), 0);
    assert_string_equal(pr.shadow.x.output_text, "hi!");
    co_pair_clear(&pr);
    co_workload_state ws;
    assert_int_equal(co_store_workload_state_get(st, "chat", &ws), 0);
    assert_int_equal(ws.version, ver);
    co_workload_state_clear(&ws);
    co_rollout_event_list l;
    assert_int_equal(co_store_rollout_events(st, NULL, 0, &l), 0);
    assert_int_equal(l.n, 1);
    co_rollout_event_list_free(&l);
    /* and the v2 tables work now */
    assert_int_equal(co_store_baseline_put(st, "chat", 0, "{}"), 0);
    co_evidence e = {.item = "baseline.saved"};
    assert_int_equal(co_store_evidence_add(st, &e), 0);
    co_store_close(st);

    /* opening again is a no-op migration */
    assert_int_equal(co_store_open(&st, p), 0);
    assert_int_equal(count_all(st), 5);
    co_store_close(st);

    assert_int_equal(co__store_open_at(&st, p, 7), CO_EINVAL);
    assert_null(st);
}

/* 1 when the index exists in the store at url (the test's back end). */
static int index_exists(const fixture *f, const char *other, const char *url, const char *name)
{
    char q[256];
    if (f->pg) {
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()"
                 " AND indexname = '%s'", name);
        return pg_scalar(f, other, q) > 0;
    }
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(q, sizeof q, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = '%s'",
             name);
    assert_int_equal(sqlite3_open(url + strlen("sqlite:"), &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n > 0;
}

/* v4 -> v5: exchanges_pair gives way to exchanges_pair_other; pairs recorded
 * before, gateway-style or with other pair ids, are found as before. */
static void test_migration_from_v4(void **state)
{
    fixture *f = *state;
    char p[600];
    other_store_url(f, "v4", p, sizeof p);

    co_store *old = NULL;
    int v = 0;
    assert_int_equal(co__store_open_at(&old, p, 4), 0);
    assert_int_equal(co_store_schema_version(old, &v), 0);
    assert_int_equal(v, 4);
    record_traffic(old); /* pair ids p1.. beside request ids r1.. */
    co_exchange gw[3] = {
        xch("g1", "g1", 5000, "chat", "incumbent", "served", 50),
        xch("g1", "g1", 5001, "chat", "candidate", "shadow", 51),
        xch("g2", "g1", 5002, "chat", "candidate", "shadow", 52),
    };
    assert_int_equal(co_store_record(old, gw, 3), 0);
    co_store_close(old);
    assert_true(index_exists(f, "v4", p, "exchanges_pair"));
    assert_false(index_exists(f, "v4", p, "exchanges_pair_other"));

    co_store *st = NULL;
    assert_int_equal(co_store_open(&st, p), 0);
    assert_int_equal(co_store_schema_version(st, &v), 0);
    assert_int_equal(v, 6);
    assert_false(index_exists(f, "v4", p, "exchanges_pair"));
    assert_true(index_exists(f, "v4", p, "exchanges_pair_other"));
    assert_true(index_exists(f, "v4", p, "exchanges_request_role"));
    assert_int_equal(count_all(st), 8);

    co_pair pr;
    assert_int_equal(co_store_pair(st, "p1", &pr), 0);
    assert_string_equal(pr.served.x.request_id, "r1");
    assert_string_equal(pr.shadow.x.output_text, "hi!");
    co_pair_clear(&pr);
    assert_int_equal(co_store_pair(st, "g1", &pr), 0);
    assert_true(pr.served.x.latency_ms == 50);
    assert_true(pr.shadow.x.latency_ms == 51);
    co_pair_clear(&pr);
    co_pair *v5;
    size_t n;
    assert_int_equal(co_store_pairs(st, "chat", 0, 0, &v5, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v5[0].served.x.pair_id, "g1");
    assert_string_equal(v5[1].served.x.pair_id, "p1");
    co_pairs_free(v5, n);

    /* rows recorded after the migration land in the right index too */
    co_exchange more[2] = {
        xch("h1", "hp", 6000, "chat", "incumbent", "served", 60),
        xch("h2", "hp", 6001, "chat", "candidate", "shadow", 61),
    };
    assert_int_equal(co_store_record(st, more, 2), 0);
    assert_int_equal(co_store_pair(st, "hp", &pr), 0);
    assert_string_equal(pr.shadow.x.request_id, "h2");
    co_pair_clear(&pr);
    co_store_close(st);
}

static void test_newer_schema_refused(void **state)
{
    fixture *f = *state;
    co_store_close(f->st);
    f->st = NULL;

    raw_sql(f, "PRAGMA user_version = 99",
            "INSERT INTO cutover_schema (version, applied_ms, what) VALUES (99, 0, 'future')");

    co_store *st = (co_store *)0x1;
    assert_int_equal(co_store_open(&st, f->url), CO_ESCHEMA);
    assert_null(st);
    assert_non_null(strstr(co_error_last(), "99"));
    assert_non_null(strstr(co_error_last(), "up to 6"));
    assert_int_equal(co__store_open_at(&st, f->url, 1), CO_ESCHEMA);
}

static void test_gateways_and_leases(void **state)
{
    fixture *f = *state;
    co_gateway_beat a = {.id = "h:1:100", .host = "h", .pid = 1, .started_ms = 100, .seen_ms = 1000,
                         .applied_version = 3};
    co_gateway_beat b = {.id = "h:2:200", .host = "h", .pid = 2, .started_ms = 200, .seen_ms = 5000,
                         .applied_version = 4};
    assert_int_equal(co_store_gateway_beat(f->st, &a), 0);
    assert_int_equal(co_store_gateway_beat(f->st, &b), 0);
    /* a second beat moves seen and version, keeps started */
    a.started_ms = 999;
    a.seen_ms = 6000;
    a.applied_version = 5;
    assert_int_equal(co_store_gateway_beat(f->st, &a), 0);
    co_gateway_beat *v = NULL;
    size_t n = 0;
    assert_int_equal(co_store_gateways(f->st, 5500, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "h:1:100");
    assert_int_equal(v[0].started_ms, 100);
    assert_int_equal(v[0].applied_version, 5);
    co_gateway_beats_free(v, n);
    assert_int_equal(co_store_gateways(f->st, 0, &v, &n), 0);
    assert_int_equal(n, 2);
    co_gateway_beats_free(v, n);
    co_gateway_beat bad = {.id = ""};
    assert_int_equal(co_store_gateway_beat(f->st, &bad), CO_EINVAL);

    /* one holder at a time (here: two holders on one handle); renewal by
     * the holder; free after its drop; a ttl never frees it */
    int held = -1;
    assert_int_equal(co_store_lease_take(f->st, "controller", "A", 1, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(co_store_lease_take(f->st, "controller", "B", 60000, &held), 0);
    assert_int_equal(held, 0);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL); /* A's 1 ms ttl is long over: it only dates the row */
    assert_int_equal(co_store_lease_take(f->st, "controller", "B", 60000, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(co_store_lease_take(f->st, "controller", "A", 60000, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(co_store_lease_drop(f->st, "controller", "B"), 0); /* not B's: no effect */
    assert_int_equal(co_store_lease_take(f->st, "controller", "B", 60000, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(co_store_lease_drop(f->st, "controller", "A"), 0);
    assert_int_equal(co_store_lease_take(f->st, "controller", "B", 60000, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(co_store_lease_take(f->st, "controller", "", 1, &held), CO_EINVAL);
    assert_int_equal(co_store_lease_take(f->st, "controller", "A", 0, &held), CO_EINVAL);
}

/* The leases row: who it names ("" when none) and its expiry (-1: none). */
static void lease_row(const fixture *f, const char *name, char *holder, size_t n, long long *expires)
{
    holder[0] = '\0';
    *expires = -1;
    if (f->pg) {
        char q[512], why[1024] = "";
        snprintf(q, sizeof q,
                 "SET search_path TO %s; SELECT coalesce((SELECT expires_ms FROM leases WHERE name = '%s'), -1)",
                 f->db, name);
        *expires = co_pg_cluster_scalar(&g_cluster, PG_DB, q, why, sizeof why);
        if (*expires == -1 && why[0])
            fail_msg("postgres: %s", why);
        snprintf(q, sizeof q, "SET search_path TO %s; SELECT holder FROM leases WHERE name = '%s'", f->db, name);
        if (co_pg_cluster_text(&g_cluster, PG_DB, q, holder, n, why, sizeof why) < 0)
            fail_msg("postgres: %s", why);
        return;
    }
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT holder, expires_ms FROM leases WHERE name = ?1", -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        snprintf(holder, n, "%s", (const char *)sqlite3_column_text(q, 0));
        *expires = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* Takes the lease on st as holder, retrying for at most 5 s (a PostgreSQL
 * backend that was told to end frees its locks a moment later): the number
 * of tries it took, or 0 if it never got it. */
static int take_soon(co_store *st, const char *name, const char *holder)
{
    for (int i = 1; i <= 500; i++) {
        int held = 0;
        int rc = co_store_lease_take(st, name, holder, 60000, &held);
        assert_true(rc == 0 || rc == CO_ESTORE);
        if (rc == 0 && held)
            return i;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The lease is a lock held by a handle: a second handle cannot take it;
 * renewals do not stack (one drop frees it); closing the holder's handle
 * frees it at once, with a ttl far from over. */
static void test_lease_is_a_lock(void **state)
{
    fixture *f = *state;
    co_store *b = NULL, *c = NULL;
    assert_int_equal(co_store_open(&b, f->url), 0);
    int held = -1;
    char who[16];
    long long exp;

    assert_int_equal(co_store_lease_take(f->st, "ctl", "A", 60000, &held), 0);
    assert_int_equal(held, 1);
    assert_true(co_store_lease_held(f->st, "ctl", "A"));
    assert_false(co_store_lease_held(f->st, "ctl", "B"));
    assert_false(co_store_lease_held(b, "ctl", "A"));
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "A");
    long long exp1 = exp;
    assert_true(exp1 > 0);
    /* another handle: not even with the same holder name */
    assert_int_equal(co_store_lease_take(b, "ctl", "B", 60000, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(co_store_lease_take(b, "ctl", "A", 60000, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(co_store_lease_drop(b, "ctl", "B"), 0); /* not b's: no effect */
    assert_true(co_store_lease_held(f->st, "ctl", "A"));
    assert_int_equal(co_store_lease_take(b, "ctl", "B", 60000, &held), 0);
    assert_int_equal(held, 0);
    /* another name is another lock */
    assert_int_equal(co_store_lease_take(b, "other", "B", 60000, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(co_store_lease_take(f->st, "other", "A", 60000, &held), 0);
    assert_int_equal(held, 0);

    /* renewals keep it, move the row's expiry, and do not stack */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(co_store_lease_take(f->st, "ctl", "A", 60000, &held), 0);
        assert_int_equal(held, 1);
    }
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "A");
    assert_true(exp > exp1);
    assert_int_equal(co_store_lease_drop(f->st, "ctl", "A"), 0);
    assert_false(co_store_lease_held(f->st, "ctl", "A"));
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_int_equal(exp, -1); /* the drop deleted the row */
    assert_int_equal(co_store_lease_take(b, "ctl", "B", 60000, &held), 0);
    assert_int_equal(held, 1); /* one drop was enough */
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "B");

    /* closing the holder's handle (no drop) frees it at once: the ttl of
     * 60 s is far from over, and the row still names B */
    assert_int_equal(co_store_lease_take(f->st, "ctl", "A", 60000, &held), 0);
    assert_int_equal(held, 0);
    co_store_close(b);
    b = NULL;
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "B");
    assert_int_equal(co_store_lease_take(f->st, "ctl", "A", 60000, &held), 0);
    assert_int_equal(held, 1); /* first try */
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "A"); /* whoever gets the lock overwrites the row */
    assert_int_equal(co_store_lease_take(f->st, "other", "A", 60000, &held), 0);
    assert_int_equal(held, 1); /* b's other lease went with it */

    /* a third handle finds it taken, and takes it after the drop */
    assert_int_equal(co_store_open(&c, f->url), 0);
    assert_int_equal(co_store_lease_take(c, "ctl", "C", 60000, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(co_store_lease_drop(f->st, "ctl", "A"), 0);
    assert_int_equal(take_soon(c, "ctl", "C"), 1);
    co_store_close(c);
}

/* A process that dies holding the lease (SIGKILL: none of its code runs)
 * frees it: the kernel closes its files / its socket. */
static void test_lease_holder_process_dies(void **state)
{
    fixture *f = *state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        alarm(60); /* never outlives a failed test */
        co_store *st = NULL;
        int held = 0;
        char ok = 'n';
        if (co_store_open(&st, f->url) == 0 && co_store_lease_take(st, "ctl", "child", 60000, &held) == 0 &&
            held)
            ok = 'y';
        if (write(pfd[1], &ok, 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(pfd[1]);
    char ok = 0;
    ssize_t got = read(pfd[0], &ok, 1);
    close(pfd[0]);
    int held = -1, rc = co_store_lease_take(f->st, "ctl", "A", 60000, &held);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(got, 1);
    assert_int_equal(ok, 'y');
    assert_int_equal(rc, 0);
    assert_int_equal(held, 0); /* the child had it */
    int tries = take_soon(f->st, "ctl", "A");
    assert_true(tries >= 1);
    if (!f->pg)
        assert_int_equal(tries, 1); /* the kernel released it with the process */
    char who[16];
    long long exp;
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "A");
}

/* PostgreSQL only: the holder's session is ended from outside (as the
 * server ends one whose client host vanished). The holder never again
 * reports "held" on its new session without taking it; the other handle
 * gets it. */
static void test_pg_lease_backend_terminated(void **state)
{
    fixture *f = *state;
    if (!f->pg)
        skip();
    co_store *b = NULL;
    assert_int_equal(co_store_open(&b, f->url), 0);
    int held = -1, rc;
    char why[1024];
    assert_int_equal(co_store_lease_take(f->st, "ctl", "A", 60000, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(co_store_lease_take(b, "ctl", "B", 60000, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(co_pg_cluster_scalar(&g_cluster, PG_DB,
                                          "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                                          " WHERE locktype = 'advisory' AND classid = 1129663557 AND granted",
                                          why, sizeof why),
                     1);
    /* the holder's next take: an error (its renewal found the session gone)
     * or not held, never held */
    /* the holder's next write finds the session gone; the one after it is
     * refused outright rather than carried on a new session that holds no
     * lock (a controller half way through a step must not act on) */
    co_gateway_beat gb = {.id = "fenced", .host = "h", .pid = 1, .applied_version = 1};
    assert_int_equal(co_store_gateway_beat(f->st, &gb), CO_ESTORE);
    assert_false(co_store_lease_held(f->st, "ctl", "A"));
    assert_int_equal(co_store_gateway_beat(f->st, &gb), CO_ESTORE);
    assert_non_null(strstr(co_error_last(), "takes the lease again"));
    assert_true(take_soon(b, "ctl", "B") > 0);
    /* taking the lease again reconnects the handle (B has it now) and lifts
     * the fence */
    held = -1;
    rc = co_store_lease_take(f->st, "ctl", "A", 60000, &held);
    assert_int_equal(rc, 0);
    assert_int_equal(held, 0);
    assert_false(co_store_lease_held(f->st, "ctl", "A"));
    assert_int_equal(co_store_gateway_beat(f->st, &gb), 0);
    /* from now on the old holder is refused on its new session */
    for (int i = 0; i < 3; i++) {
        held = -1;
        rc = co_store_lease_take(f->st, "ctl", "A", 60000, &held);
        assert_true(rc == 0 || rc == CO_ESTORE);
        if (rc == 0)
            assert_int_equal(held, 0);
    }
    assert_false(co_store_lease_held(f->st, "ctl", "A"));
    char who[16];
    long long exp;
    lease_row(f, "ctl", who, sizeof who, &exp);
    assert_string_equal(who, "B");
    /* b's renewals do not stack the advisory lock: one lock in pg_locks,
     * and one drop leaves none */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(co_store_lease_take(b, "ctl", "B", 60000, &held), 0);
        assert_int_equal(held, 1);
    }
    assert_int_equal(co_pg_cluster_scalar(&g_cluster, PG_DB,
                                          "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                          " AND classid = 1129663557 AND granted",
                                          why, sizeof why),
                     1);
    assert_int_equal(co_store_lease_drop(b, "ctl", "B"), 0);
    assert_int_equal(co_pg_cluster_scalar(&g_cluster, PG_DB,
                                          "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                          " AND classid = 1129663557",
                                          why, sizeof why),
                     0);
    assert_int_equal(take_soon(f->st, "ctl", "A"), 1);
    co_store_close(b);
}

static void test_two_handles(void **state)
{
    fixture *f = *state;
    co_store *b = NULL;
    assert_int_equal(co_store_open(&b, f->url), 0);

    assert_int_equal(count_all(b), 0);
    record_traffic(f->st);
    assert_int_equal(count_all(b), 5); /* committed writes are visible at once */

    int64_t va = 0, vb = 0;
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "canary", 5, "a", &va), 0);
    assert_int_equal(co_store_workload_state_set(b, "summarize", "shadow", 0, "b", &vb), 0);
    assert_true(vb > va); /* one version sequence across handles */
    co_workload_state *v;
    size_t n;
    assert_int_equal(co_store_workload_states(b, 0, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].mode, "canary");
    co_workload_states_free(v, n);

    /* compare-and-set across handles: the second writer of version 1 loses */
    co_rollout_state ra = {.workload = "chat", .state = "shadow"};
    assert_int_equal(co_store_rollout_put(f->st, &ra, 0), 0);
    co_rollout_state got;
    assert_int_equal(co_store_rollout_get(b, "chat", &got), 0);
    assert_int_equal(got.version, 1);
    co_rollout_state rb = {.workload = "chat", .state = "canary", .stage = 1};
    assert_int_equal(co_store_rollout_put(b, &rb, got.version), 0);
    co_rollout_state_clear(&got);
    ra.state = "paused";
    assert_int_equal(co_store_rollout_put(f->st, &ra, 1), CO_ECONFLICT);

    co_store_close(b);
}

static void test_many_batches_reuse_statements(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 200; i++) {
        co_exchange x = xch("", "", 10000 + i, i % 2 ? "chat" : "summarize", "incumbent", "served",
                            (double)i);
        assert_int_equal(co_store_record(f->st, &x, 1), 0);
        co_window_summary s;
        co_window_query q = {.workload = "chat"};
        assert_int_equal(co_store_window_summary(f->st, &q, &s), 0);
        assert_int_equal(s.count, (i + 1) / 2);
    }
    assert_int_equal(count_all(f->st), 200);
}

/* ---- concurrency, notification, text ------------------------------------- */

typedef struct opener {
    const char *url;
    pthread_barrier_t *bar;
    int rc, version;
    char err[512];
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    co_store *st = NULL;
    pthread_barrier_wait(o->bar);
    o->rc = co_store_open(&st, o->url);
    if (o->rc)
        snprintf(o->err, sizeof o->err, "%s", co_error_last());
    else if (co_store_schema_version(st, &o->version) != 0)
        o->version = -1;
    co_store_close(st);
    return NULL;
}

/* Several handles opening a fresh store at once: each step is applied once
 * (a second CREATE TABLE of the same name would fail the open). */
static void test_concurrent_open_migrates_once(void **state)
{
    fixture *f = *state;
    char url[600];
    other_store_url(f, "fresh", url, sizeof url);
    enum { N = 4 };
    pthread_t t[N];
    opener o[N];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, N);
    for (int i = 0; i < N; i++) {
        o[i] = (opener){.url = url, .bar = &bar};
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < N; i++) {
        if (o[i].rc)
            fail_msg("opener %d: %s", i, o[i].err);
        assert_int_equal(o[i].version, 6);
    }
    if (f->pg)
        assert_int_equal(pg_scalar(f, "fresh", "SELECT count(*) FROM cutover_schema"), 6);
    co_store *st = NULL;
    assert_int_equal(co_store_open(&st, url), 0);
    record_traffic(st);
    assert_int_equal(count_all(st), 5);
    co_store_close(st);
}

typedef struct waiter {
    co_store *st;
    int rc, changed;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->rc = co_store_wait_change(w->st, 30000, &w->changed);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A long timeout that comes back with changed = 1 was woken by the change
 * (it would have said 0 after the timeout): no wall-clock assertion. */
static void test_wait_change(void **state)
{
    fixture *f = *state;
    co_store *b = NULL;
    int ch = -1;
    assert_int_equal(co_store_open(&b, f->url), 0);

    assert_int_equal(co_store_wait_change(NULL, 0, &ch), CO_EINVAL);
    assert_int_equal(co_store_wait_change(b, -1, &ch), CO_EINVAL);
    assert_int_equal(co_store_wait_change(b, 0, NULL), CO_EINVAL);

    /* the first call says "read everything"; then nothing is pending */
    assert_int_equal(co_store_wait_change(b, 0, &ch), 0);
    assert_int_equal(ch, 1);
    assert_int_equal(co_store_wait_change(b, 20, &ch), 0);
    assert_int_equal(ch, 0);

    /* recorded traffic is not a state change */
    record_traffic(f->st);
    assert_int_equal(co_store_wait_change(b, 50, &ch), 0);
    assert_int_equal(ch, 0);

    /* a mode change through another handle */
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "canary", 5, "t", NULL), 0);
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);
    assert_int_equal(co_store_wait_change(b, 20, &ch), 0);
    assert_int_equal(ch, 0);

    /* a rollout change; a refused compare-and-set announces nothing */
    co_rollout_state r = {.workload = "chat", .state = "shadow"};
    assert_int_equal(co_store_rollout_put(f->st, &r, 0), 0);
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);
    assert_int_equal(co_store_rollout_put(f->st, &r, 0), CO_ECONFLICT);
    assert_int_equal(co_store_wait_change(b, 50, &ch), 0);
    assert_int_equal(ch, 0);

    /* a change made through the waiting handle itself */
    assert_int_equal(co_store_workload_state_set(b, "chat", "shadow", 0, "t", NULL), 0);
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);

    /* a waiter blocked in another thread is woken by the change */
    waiter w = {.st = b, .rc = -1, .changed = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    sleep_ms(50);
    assert_int_equal(co_store_workload_state_set(f->st, "summarize", "shadow", 0, "t", NULL), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.changed, 1);
    co_store_close(b);
}

/* Text of any shape goes in and comes back: COPY's escapes (tab, newline,
 * backslash, a literal \N) round-trip exactly; bytes that are not UTF-8
 * are kept by SQLite and replaced by U+FFFD in PostgreSQL, which refuses
 * them (the record is not lost either way). */
static void test_record_any_text(void **state)
{
    fixture *f = *state;
    co_exchange x = xch("rt", "pt", 100, "chat", "incumbent", "served", 1);
    x.request_json = "{\"a\":\"tab\\there\"}\tnew\nline\r\\N back\\slash";
    x.output_text = "ok \xff\xfe end";
    x.user_key = "\\N";
    x.model = "caf\xc3\xa9\tbar\\ \xe2\x82\xac\n"; /* escapes after non-ASCII text */
    x.finish_reason = "";
    x.latency_ms = 1.0 / 3.0;
    x.cost_usd = 1e-9;
    assert_int_equal(co_store_record(f->st, &x, 1), 0);
    co_exchange_list l;
    co_window_query q = {.with_text = 1};
    assert_int_equal(co_store_exchanges(f->st, &q, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].x.request_json, x.request_json);
    assert_string_equal(l.v[0].x.user_key, "\\N");
    assert_string_equal(l.v[0].x.model, x.model);
    assert_string_equal(l.v[0].x.finish_reason, "");
    assert_true(l.v[0].x.latency_ms == 1.0 / 3.0); /* doubles round-trip exactly */
    assert_true(l.v[0].x.cost_usd == 1e-9);
    assert_string_equal(l.v[0].x.output_text, f->pg ? "ok \xEF\xBF\xBD\xEF\xBF\xBD end" : x.output_text);
    co_exchange_list_free(&l);

    /* a NaN latency is no value at all: refused like a NULL */
    x.latency_ms = NAN;
    assert_int_equal(co_store_record(f->st, &x, 1), CO_EINVAL);
    assert_int_equal(count_all(f->st), 1);
}

/* A batch far bigger than one network write (PostgreSQL sends COPY data in
 * chunks): all rows land; one bad row deep inside fails all of them and is
 * named. */
static void test_record_large_batch(void **state)
{
    fixture *f = *state;
    enum { N = 3000 };
    co_exchange *xs = calloc(N, sizeof *xs);
    assert_non_null(xs);
    static char text[400];
    memset(text, 'x', sizeof text - 1);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "big%d", i);
        xs[i] = xch(id, id, 10000 + i, "chat", "incumbent", "served", i);
        xs[i].output_text = text;
    }
    xs[2500].role = "nonsense";
    assert_int_equal(co_store_record(f->st, xs, N), CO_EINVAL);
    assert_non_null(strstr(co_error_last(), "exchange 2501 of 3000"));
    assert_int_equal(count_all(f->st), 0);
    xs[2500].role = "shadow";
    assert_int_equal(co_store_record(f->st, xs, N), 0);
    assert_int_equal(count_all(f->st), N);
    co_window_summary sum;
    co_window_query q = {.role = "shadow"};
    assert_int_equal(co_store_window_summary(f->st, &q, &sum), 0);
    assert_int_equal(sum.count, 1);
    assert_true(sum.latency_ms_sum == 2500);
    free(xs);
}

/* PostgreSQL only: the handle survives its sessions being killed and the
 * server restarting; the listener reconnects and says "changed". */
static void test_pg_reconnect(void **state)
{
    fixture *f = *state;
    if (!f->pg)
        skip();
    co_store *b = NULL;
    int ch = -1, rc;
    char why[1024], sql[256];
    assert_int_equal(co_store_open(&b, f->url), 0);
    assert_int_equal(co_store_wait_change(b, 0, &ch), 0);
    assert_int_equal(co_store_wait_change(b, 0, &ch), 0);
    assert_int_equal(ch, 0);
    record_traffic(f->st);

    /* every session of the store is killed (the test's are the only ones) */
    snprintf(sql, sizeof sql, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                              " WHERE datname = '%s' AND application_name LIKE 'cutover%%'", PG_DB);
    assert_true(co_pg_cluster_scalar(&g_cluster, "postgres", sql, why, sizeof why) >= 3);
    /* the call that finds out may fail; the next one is on a new session */
    rc = co_store_workload_state_set(f->st, "chat", "shadow", 0, "t", NULL);
    assert_true(rc == 0 || rc == CO_ESTORE);
    assert_int_equal(count_all(f->st), 5);
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "canary", 1, "t", NULL), 0);
    /* the listener lost its session: changed (and it listens again) */
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "canary", 2, "t", NULL), 0);
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);

    /* the server goes away: calls fail with a store error, the waiter
     * waits out its timeout and says "changed" (the caller polls) */
    assert_int_equal(co_pg_cluster_stop(&g_cluster), 0);
    assert_int_equal(co_store_window_summary(f->st, &(co_window_query){0}, &(co_window_summary){0}),
                     CO_ESTORE);
    assert_int_equal(co_store_wait_change(b, 20, &ch), CO_ESTORE);
    assert_int_equal(ch, 1);
    assert_int_equal(co_store_open(&(co_store *){NULL}, f->url), CO_ESTORE);
    assert_null(strstr(co_error_last(), g_cluster.password));
    assert_int_equal(co_pg_cluster_restart(&g_cluster), 0);
    rc = co_store_window_summary(f->st, &(co_window_query){0}, &(co_window_summary){0});
    assert_true(rc == 0 || rc == CO_ESTORE);
    assert_int_equal(count_all(f->st), 5);
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);
    assert_int_equal(co_store_workload_state_set(f->st, "chat", "shadow", 0, "t", NULL), 0);
    assert_int_equal(co_store_wait_change(b, 30000, &ch), 0);
    assert_int_equal(ch, 1);
    co_store_close(b);
}

/* PostgreSQL only: where the password comes from, and that it never shows. */
static void test_pg_passwords(void **state)
{
    fixture *f = *state;
    if (!f->pg)
        skip();
    char url[300];
    snprintf(url, sizeof url, "postgres://cutover@127.0.0.1:%d/%s?options=-csearch_path%%3D%s",
             g_cluster.port, PG_DB, f->db);
    co_store *st = NULL;
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);

    setenv("PGPASSWORD", "wrong-pw-4711", 1);
    assert_int_equal(co_store_open(&st, url), CO_ESTORE);
    assert_null(st);
    assert_non_null(strstr(co_error_last(), "password authentication failed"));
    assert_null(strstr(co_error_last(), "wrong-pw-4711"));

    setenv("PGPASSWORD", g_cluster.password, 1);
    assert_int_equal(co_store_open(&st, url), 0);
    co_store_close(st);
    unsetenv("PGPASSWORD");

    assert_int_equal(co_store_open(&st, url), CO_ESTORE); /* no password at all */
    setenv("PGPASSFILE", g_cluster.passfile, 1);
    assert_int_equal(co_store_open(&st, url), 0);
    co_store_close(st);
    unsetenv("PGPASSFILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_summary_and_latencies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pairs_other_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_long_batch_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baseline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workload_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollout_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollout_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incidents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reviews, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feedback_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gateways_and_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_is_a_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_holder_process_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_lease_backend_terminated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_batches_reuse_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_open_migrates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_any_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_large_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_passwords, setup, teardown),
    };
    const char *which = getenv("CO_TEST_STORE");
    if (which && strcmp(which, "postgres") == 0) {
        char why[2048];
        int rc = co_pg_cluster_start(&g_cluster, why, sizeof why);
        if (rc == CO_PG_SKIP) {
            printf("SKIPPED: the PostgreSQL store tests need a PostgreSQL server: %s\n", why);
            return 77;
        }
        if (rc != 0) {
            fprintf(stderr, "cannot start a throwaway PostgreSQL cluster: %s\n", why);
            return 1;
        }
        g_pg = 1;
        if (co_pg_cluster_createdb(&g_cluster, PG_DB, why, sizeof why) != 0) {
            fprintf(stderr, "cannot create the test database: %s\n", why);
            co_pg_cluster_destroy(&g_cluster);
            return 1;
        }
    } else if (which && strcmp(which, "sqlite") != 0) {
        fprintf(stderr, "CO_TEST_STORE must be sqlite or postgres, not '%s'\n", which);
        return 1;
    }
    int failed = cmocka_run_group_tests_name(g_pg ? "store on postgres" : "store on sqlite", tests,
                                             NULL, NULL);
    if (g_pg)
        co_pg_cluster_destroy(&g_cluster);
    return failed;
}
