/* The recorder against a real PostgreSQL that goes away: a throwaway cluster
 * (tests/support/pg_cluster.h) is stopped with `pg_ctl stop -m fast` while
 * producers keep pushing, then started again. Every record the recorder
 * accepted is either in the table or counted as dropped, exactly:
 *
 * - a big queue: nothing is dropped, and the table holds exactly the
 *   accepted request ids;
 * - a small queue while the database is down: the producers' rejections are
 *   dropped_queue_full to the record, what the writer had to let go is
 *   dropped_write_failed, and what landed is the newest of what was accepted
 *   (the writer drops the oldest it holds).
 *
 * Waits are on counters with generous deadlines (a missed deadline fails
 * with what was seen); nothing asserts on time. Exits 77 (skipped) without
 * PostgreSQL server binaries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cutover/error.h"
#include "cutover/recorder.h"
#include "cutover/store.h"
#include "cutover/util.h"
#include "pg_cluster.h"

static co_pg_cluster g_cluster;
static int g_db_seq;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fresh_db(char *url, size_t n)
{
    char db[32], why[1024];
    snprintf(db, sizeof db, "rec%d", ++g_db_seq);
    if (co_pg_cluster_createdb(&g_cluster, db, why, sizeof why) != 0)
        fail_msg("createdb: %s", why);
    co_pg_cluster_url(&g_cluster, db, url, n);
}

/* ---- producers ------------------------------------------------------------ */

enum { MAX_SEQ = 400000 };

typedef struct producer {
    co_recorder_ring *ring;
    int worker;
    long pause_us;         /* between pushes */
    long limit;            /* stop after this many attempts (0: until told) */
    atomic_int *stop;
    unsigned char *accepted; /* [seq] = 1 when the push was accepted */
    long attempts, ok, busy, other;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (long seq = 0; seq < MAX_SEQ; seq++) {
        if (p->limit ? seq >= p->limit : atomic_load(p->stop))
            break;
        co_exchange x;
        memset(&x, 0, sizeof x);
        snprintf(x.request_id, sizeof x.request_id, "w%d-%ld", p->worker, seq);
        x.ts_ms = co_now_ms();
        x.workload = "chat";
        x.arm = seq % 2 ? "candidate" : "incumbent";
        x.role = "served";
        x.model = "m";
        x.api = "openai";
        x.status = 200;
        x.latency_ms = 12.5;
        x.ttft_ms = -1;
        x.tokens_in = 10;
        x.tokens_out = 20;
        x.request_json = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\tthere\"}]}";
        x.output_text = "a reply\nwith two lines";
        p->attempts++;
        int rc = co_recorder_push(p->ring, &x);
        if (rc == 0) {
            p->ok++;
            p->accepted[seq] = 1;
        } else if (rc == CO_EBUSY) {
            p->busy++;
        } else {
            p->other++;
        }
        if (p->pause_us)
            nanosleep(&(struct timespec){0, p->pause_us * 1000L}, NULL);
    }
    return NULL;
}

/* ---- reading the table back ------------------------------------------------ */

typedef struct table_ids {
    long rows, distinct;
    long foreign;          /* ids no producer had accepted */
} table_ids;

/* Marks every request id in the table in seen[worker][seq]. */
static void read_table(const char *url, unsigned char *seen[2], unsigned char *accepted[2],
                       table_ids *t)
{
    memset(t, 0, sizeof *t);
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT request_id FROM exchanges");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("select: %s", PQerrorMessage(c));
    t->rows = PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        int w;
        long seq;
        if (sscanf(PQgetvalue(r, i, 0), "w%d-%ld", &w, &seq) != 2 || w < 0 || w > 1 || seq < 0 ||
            seq >= MAX_SEQ) {
            t->foreign++;
            continue;
        }
        if (!accepted[w][seq])
            t->foreign++;
        if (!seen[w][seq])
            t->distinct++;
        seen[w][seq] = 1;
    }
    PQclear(r);
    PQfinish(c);
}

static void wait_for(co_recorder *rec, const char *what,
                     int (*ok)(const co_recorder_counters *c, uint64_t arg), uint64_t arg)
{
    co_recorder_counters c;
    for (int i = 0; i < 6000; i++) { /* up to 60 s */
        co_recorder_stats(rec, &c);
        if (ok(&c, arg))
            return;
        sleep_ms(10);
    }
    fail_msg("waited 60 s for %s: pushed %llu recorded %llu write_errors %llu store_ok %d (%s)", what,
             (unsigned long long)c.pushed, (unsigned long long)c.recorded,
             (unsigned long long)c.write_errors, c.store_ok, c.last_error);
}

static int recorded_at_least(const co_recorder_counters *c, uint64_t n) { return c->recorded >= n; }
static int pushed_at_least(const co_recorder_counters *c, uint64_t n) { return c->pushed >= n; }
static int failed_once(const co_recorder_counters *c, uint64_t n) { return c->write_errors >= n; }
static int store_ok_again(const co_recorder_counters *c, uint64_t n)
{
    return c->store_ok && c->recorded >= n;
}

static void print_counters(const char *name, const co_recorder_counters *c, const table_ids *t)
{
    printf("%s: pushed %llu, recorded %llu, dropped queue_full %llu / write_failed %llu / "
           "invalid %llu, write errors %llu, reopens %llu, queue high-water %llu; table rows %ld "
           "(distinct %ld, duplicates %ld)\n",
           name, (unsigned long long)c->pushed, (unsigned long long)c->recorded,
           (unsigned long long)c->dropped_queue_full, (unsigned long long)c->dropped_write_failed,
           (unsigned long long)c->dropped_invalid, (unsigned long long)c->write_errors,
           (unsigned long long)c->reopens, (unsigned long long)c->queue_high_water, t->rows,
           t->distinct, t->rows - t->distinct);
}

/* ---- tests ------------------------------------------------------------------ */

/* Records flowing from two workers; the database stops and starts again. */
static void test_restart_loses_nothing(void **state)
{
    (void)state;
    char url[512];
    fresh_db(url, sizeof url);
    co_recorder_conf conf = {.queue = 200000, .batch = 256, .flush_interval_ms = 20, .record_text = 1};
    co_recorder_opts opts = {.retry_min_ms = 10, .retry_max_ms = 200, .stop_timeout_ms = 60000};
    co_recorder *rec = NULL;
    assert_int_equal(co_recorder_new_opts(&rec, url, &conf, 2, &opts), 0);

    atomic_int stop = 0;
    unsigned char *accepted[2], *seen[2];
    producer p[2];
    pthread_t t[2];
    for (int w = 0; w < 2; w++) {
        accepted[w] = calloc(MAX_SEQ, 1);
        seen[w] = calloc(MAX_SEQ, 1);
        assert_non_null(accepted[w]);
        assert_non_null(seen[w]);
        p[w] = (producer){.ring = co_recorder_producer(rec, w), .worker = w, .pause_us = 200,
                          .stop = &stop, .accepted = accepted[w]};
        assert_int_equal(pthread_create(&t[w], NULL, produce, &p[w]), 0);
    }

    wait_for(rec, "records landing", recorded_at_least, 1000);
    assert_int_equal(co_pg_cluster_stop(&g_cluster), 0);
    co_recorder_counters c;
    co_recorder_stats(rec, &c);
    uint64_t pushed_at_stop = c.pushed;
    /* A flush while the server is down forces a write attempt: it fails. */
    assert_int_equal(co_recorder_flush(rec, 300), CO_ETIMEDOUT);
    wait_for(rec, "a failed write", failed_once, 1);
    wait_for(rec, "records accepted during the outage", pushed_at_least, pushed_at_stop + 1000);
    co_recorder_stats(rec, &c);
    assert_int_equal(c.store_ok, 0);
    assert_true(c.queue_depth > 0);

    assert_int_equal(co_pg_cluster_restart(&g_cluster), 0);
    co_recorder_stats(rec, &c);
    wait_for(rec, "writing again after the restart", store_ok_again, c.recorded + 1000);
    atomic_store(&stop, 1);
    for (int w = 0; w < 2; w++)
        pthread_join(t[w], NULL);
    assert_int_equal(co_recorder_flush(rec, 60000), 0);
    co_recorder_stats(rec, &c);
    co_recorder_free(rec);

    long ok = p[0].ok + p[1].ok, busy = p[0].busy + p[1].busy;
    assert_int_equal(p[0].other + p[1].other, 0);
    assert_int_equal(c.pushed, (uint64_t)ok);
    assert_int_equal(c.dropped_queue_full, (uint64_t)busy);
    assert_int_equal(c.queue_depth, 0);
    assert_int_equal(c.pushed, c.recorded + c.dropped_write_failed + c.dropped_invalid);
    assert_int_equal(c.dropped_write_failed, 0); /* the queue held the whole outage */
    assert_int_equal(c.dropped_invalid, 0);
    assert_true(c.write_errors >= 1);
    assert_true(c.reopens >= 1);

    table_ids tb;
    read_table(url, seen, accepted, &tb);
    print_counters("restart", &c, &tb);
    assert_int_equal(tb.foreign, 0);
    /* every accepted record is there: as many distinct ids as accepted, all
     * of them accepted ones */
    assert_int_equal(tb.distinct, ok);
    assert_int_equal(tb.distinct, (long)c.recorded);
    for (int w = 0; w < 2; w++) {
        assert_memory_equal(seen[w], accepted[w], MAX_SEQ);
        free(accepted[w]);
        free(seen[w]);
    }
}

/* The database is down and the queue too small for what arrives: the
 * counters say exactly what was lost, and what landed is the newest. */
static void test_small_queue_counts_exactly(void **state)
{
    (void)state;
    char url[512];
    fresh_db(url, sizeof url);
    co_recorder_conf conf = {.queue = 1000, .batch = 100, .flush_interval_ms = 20, .record_text = 1};
    co_recorder_opts opts = {.retry_min_ms = 10, .retry_max_ms = 100, .stop_timeout_ms = 60000};
    co_recorder *rec = NULL;
    assert_int_equal(co_recorder_new_opts(&rec, url, &conf, 1, &opts), 0);

    assert_int_equal(co_pg_cluster_stop(&g_cluster), 0);
    unsigned char *accepted[2] = {calloc(MAX_SEQ, 1), calloc(MAX_SEQ, 1)};
    unsigned char *seen[2] = {calloc(MAX_SEQ, 1), calloc(MAX_SEQ, 1)};
    assert_non_null(accepted[0]);
    assert_non_null(seen[0]);
    producer p = {.ring = co_recorder_producer(rec, 0), .worker = 0, .pause_us = 20,
                  .limit = 6000, .accepted = accepted[0]};
    produce(&p);
    co_recorder_counters c;
    co_recorder_stats(rec, &c);
    assert_int_equal(c.recorded, 0);
    assert_int_equal(co_pg_cluster_restart(&g_cluster), 0);
    int rc = co_recorder_flush(rec, 60000);
    assert_true(rc == 0 || rc == CO_EIO); /* EIO: some were dropped meanwhile */
    co_recorder_stats(rec, &c);
    co_recorder_free(rec);

    assert_int_equal(c.pushed, (uint64_t)p.ok);
    assert_int_equal(c.dropped_queue_full, (uint64_t)p.busy);
    assert_int_equal(c.pushed, c.recorded + c.dropped_write_failed + c.dropped_invalid);
    assert_true(c.dropped_write_failed + c.dropped_queue_full > 0); /* 6000 > queue + ring */
    assert_true(c.recorded <= 1000 + 1024); /* at most the queue and the ring */

    table_ids tb;
    read_table(url, seen, accepted, &tb);
    print_counters("small queue", &c, &tb);
    assert_int_equal(tb.foreign, 0);
    assert_int_equal(tb.distinct, (long)c.recorded);
    /* the newest accepted records: once one is in the table, every later
     * accepted one is too */
    int in_suffix = 0;
    for (long seq = 0; seq < p.limit; seq++) {
        if (!accepted[0][seq])
            continue;
        if (seen[0][seq])
            in_suffix = 1;
        else if (in_suffix)
            fail_msg("accepted record %ld is missing after a newer one was written", seq);
    }
    for (int w = 0; w < 2; w++) {
        free(accepted[w]);
        free(seen[w]);
    }
}

int main(void)
{
    char why[2048];
    int rc = co_pg_cluster_start(&g_cluster, why, sizeof why);
    if (rc == CO_PG_SKIP) {
        printf("SKIPPED: the recorder's PostgreSQL tests need a PostgreSQL server: %s\n", why);
        return 77;
    }
    if (rc != 0) {
        fprintf(stderr, "cannot start a throwaway PostgreSQL cluster: %s\n", why);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_loses_nothing),
        cmocka_unit_test(test_small_queue_counts_exactly),
    };
    int failed = cmocka_run_group_tests_name("recorder on postgres", tests, NULL, NULL);
    co_pg_cluster_destroy(&g_cluster);
    return failed;
}
