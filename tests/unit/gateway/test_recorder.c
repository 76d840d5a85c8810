/* Unit tests of the recorder: concurrent producers land every record in a
 * real SQLite store, batches respect `batch`, a full ring drops and counts
 * exactly the overflow, a failing store keeps records and writes them once it
 * recovers (reopening the handle unless the error was "busy"), overflow while
 * failing drops the oldest, flush and free write everything, text is redacted
 * (and API keys always masked) before storage, record_text off stores no
 * text, invalid rows are isolated, drop logs are rate-limited, a background
 * writer runs SCHED_IDLE and is lifted to nice 10 and then nice 0 by a
 * growing backlog, to nice 0 by a stalled loop, a flush or shutdown (checked
 * in the kernel's view of the thread), and stays at normal priority where it
 * could not come back.
 *
 * Faults are injected deterministically by a wrapping store (opened through
 * the recorder's `open` hook) that can fail with a chosen status or block the
 * writer inside co_store_record until released: no timing assumptions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/store_impl.h"
#include "cutover/error.h"
#include "cutover/recorder.h"
#include "cutover/redact.h"
#include "cutover/store.h"
#include "cutover/util.h"

/* ---- fixture -------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    char url[160];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/co_recorder_test_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof f->url, "sqlite:%s/cutover.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
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

/* ---- a store that fails or blocks on demand ------------------------------- */

#define MAX_SIZES 4096

typedef struct fault_ctl {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fail_status; /* 0: pass through; else what record() returns */
    int block;       /* 1: record() waits until cleared */
    int entered;     /* record() calls that started */
    int opens;
    size_t sizes[MAX_SIZES]; /* n of every record() call that reached the store */
    size_t nsizes;
} fault_ctl;

typedef struct fault_store {
    co_store base;
    co_store *inner;
    fault_ctl *ctl;
} fault_store;

static void fault_init(fault_ctl *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void fault_destroy(fault_ctl *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static int fs_record(co_store *st, const co_exchange *xs, size_t n)
{
    fault_store *f = (fault_store *)st;
    fault_ctl *c = f->ctl;
    pthread_mutex_lock(&c->mu);
    c->entered++;
    pthread_cond_broadcast(&c->cv);
    while (c->block)
        pthread_cond_wait(&c->cv, &c->mu);
    int fail = c->fail_status;
    if (!fail && c->nsizes < MAX_SIZES)
        c->sizes[c->nsizes++] = n;
    pthread_mutex_unlock(&c->mu);
    if (fail)
        return co_error_set(fail, "injected fault: %s",
                            fail == CO_EBUSY ? "database is locked" : "disk I/O error");
    return co_store_record(f->inner, xs, n);
}

static void fs_close(co_store *st)
{
    fault_store *f = (fault_store *)st;
    co_store_close(f->inner);
    free(f);
}

static const struct co_store_ops fault_ops = {.name = "fault", .close = fs_close, .record = fs_record};

static int fault_open(co_store **out, const char *url, void *ud)
{
    fault_ctl *c = ud;
    pthread_mutex_lock(&c->mu);
    c->opens++;
    pthread_mutex_unlock(&c->mu);
    co_store *inner;
    int rc = co_store_open(&inner, url);
    if (rc)
        return rc;
    fault_store *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base.ops = &fault_ops;
    f->inner = inner;
    f->ctl = c;
    *out = &f->base;
    return 0;
}

static void fault_set(fault_ctl *c, int fail_status, int block)
{
    pthread_mutex_lock(&c->mu);
    c->fail_status = fail_status;
    c->block = block;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static int fault_get(fault_ctl *c, const int *field)
{
    pthread_mutex_lock(&c->mu);
    int v = *field;
    pthread_mutex_unlock(&c->mu);
    return v;
}

/* Waits (bounded by a generous 10 s safety net, never asserted as a time)
 * until record() has been entered at least n times. */
static void fault_wait_entered(fault_ctl *c, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&c->mu);
    while (c->entered < n)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
            break;
    int got = c->entered;
    pthread_mutex_unlock(&c->mu);
    assert_true(got >= n);
}

/* A one-ring recorder whose store is the fault store above. */
static co_recorder *new_on_fault(const fixture *f, fault_ctl *fc, const co_recorder_conf *c)
{
    co_recorder_opts o = {.open = fault_open, .open_ud = fc};
    co_recorder *rec = NULL;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, c, 1, &o), 0);
    return rec;
}

/* ---- log capture ---------------------------------------------------------- */

typedef struct logcap {
    pthread_mutex_t mu;
    char *msg[64];
    int level[64];
    int n;
} logcap;

static void log_cb(void *ud, int level, const char *msg)
{
    logcap *l = ud;
    pthread_mutex_lock(&l->mu);
    if (l->n < 64) {
        l->level[l->n] = level;
        l->msg[l->n++] = strdup(msg);
    }
    pthread_mutex_unlock(&l->mu);
}

static void logcap_init(logcap *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

static void logcap_free(logcap *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->msg[i]);
    pthread_mutex_destroy(&l->mu);
}

/* Messages containing `needle`. */
static int logcap_count(logcap *l, const char *needle)
{
    int k = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n; i++)
        if (strstr(l->msg[i], needle))
            k++;
    pthread_mutex_unlock(&l->mu);
    return k;
}

/* ---- helpers -------------------------------------------------------------- */

static void make_x(co_exchange *x, int producer, int seq)
{
    memset(x, 0, sizeof *x);
    snprintf(x->request_id, sizeof x->request_id, "p%d-%06d", producer, seq);
    snprintf(x->pair_id, sizeof x->pair_id, "pair-%d-%d", producer, seq);
    x->ts_ms = 1000 + seq;
    x->workload = "chat";
    x->arm = producer % 2 ? "candidate" : "incumbent";
    x->role = "served";
    x->model = "m1";
    x->api = "openai";
    x->status = 200;
    x->latency_ms = 10 + seq % 7;
    x->ttft_ms = -1;
    x->tokens_in = seq;
    x->tokens_out = producer;
}

/* Every stored exchange, oldest first, with text. */
static void read_rows(const fixture *f, co_exchange_list *l)
{
    co_store *st;
    assert_int_equal(co_store_open(&st, f->url), 0);
    co_window_query q = {.with_text = 1};
    assert_int_equal(co_store_exchanges(st, &q, l), 0);
    co_store_close(st);
}

static size_t count_rows(const fixture *f)
{
    co_exchange_list l;
    read_rows(f, &l);
    size_t n = l.n;
    co_exchange_list_free(&l);
    return n;
}

static co_recorder_counters stats_of(co_recorder *rec)
{
    co_recorder_counters c;
    co_recorder_stats(rec, &c);
    return c;
}

/* Makes the writer run one forced cycle (drain everything, attempt a write
 * even in backoff) and waits until that attempt failed: with the store
 * failing and a long backoff, no other attempt happens meanwhile. */
static void sync_failed_cycle(co_recorder *rec)
{
    uint64_t before = stats_of(rec).write_errors;
    assert_int_equal(co_recorder_flush(rec, 0), CO_ETIMEDOUT);
    for (int i = 0; i < 10000 && stats_of(rec).write_errors == before; i++)
        usleep(1000);
    assert_true(stats_of(rec).write_errors > before);
}

static co_recorder_conf conf_of(int64_t queue, int64_t batch, int64_t flush_ms, int record_text)
{
    co_recorder_conf c = {.queue = queue, .batch = batch, .flush_interval_ms = flush_ms,
                          .record_text = record_text};
    return c;
}

/* ---- concurrency ---------------------------------------------------------- */

#define NPROD 4
#define PER_PROD 2500

typedef struct prod_arg {
    co_recorder_ring *ring;
    int index;
    int failures;
} prod_arg;

static void *producer_main(void *arg)
{
    prod_arg *a = arg;
    char out[64];
    for (int i = 0; i < PER_PROD; i++) {
        co_exchange x;
        make_x(&x, a->index, i);
        snprintf(out, sizeof out, "output %d/%d", a->index, i);
        x.output_text = out;
        x.request_json = "{\"messages\":[]}";
        if (co_recorder_push(a->ring, &x) != 0)
            a->failures++;
    }
    return NULL;
}

typedef struct stats_arg {
    co_recorder *rec;
    int *stop;
    int bad;     /* a snapshot that did not add up (asserted on the main thread) */
    int samples;
} stats_arg;

/* Reads the counters while the producers and the writer run. */
static void *stats_main(void *arg)
{
    stats_arg *a = arg;
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE)) {
        co_recorder_counters c = stats_of(a->rec);
        if (c.recorded > c.pushed || c.queue_depth > c.pushed)
            a->bad = 1;
        a->samples++;
        usleep(200);
    }
    return NULL;
}

static void test_concurrent_producers(void **state)
{
    fixture *f = *state;
    co_recorder *rec;
    co_recorder_conf c = conf_of(65536, 64, 10, 1);
    assert_int_equal(co_recorder_new(&rec, f->url, &c, NPROD), 0);
    assert_null(co_recorder_producer(rec, NPROD));
    assert_null(co_recorder_producer(rec, -1));

    pthread_t th[NPROD], sth;
    prod_arg pa[NPROD];
    int stop = 0;
    stats_arg sa = {rec, &stop, 0, 0};
    assert_int_equal(pthread_create(&sth, NULL, stats_main, &sa), 0);
    for (int i = 0; i < NPROD; i++) {
        pa[i] = (prod_arg){co_recorder_producer(rec, i), i, 0};
        assert_true(co_recorder_ring_capacity(pa[i].ring) >= PER_PROD);
        assert_int_equal(pthread_create(&th[i], NULL, producer_main, &pa[i]), 0);
    }
    for (int i = 0; i < NPROD; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(pa[i].failures, 0);
    }
    assert_int_equal(co_recorder_flush(rec, 60000), 0);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(sth, NULL);
    assert_int_equal(sa.bad, 0);
    assert_true(sa.samples > 0);

    co_recorder_counters s = stats_of(rec);
    assert_int_equal(s.pushed, NPROD * PER_PROD);
    assert_int_equal(s.recorded, NPROD * PER_PROD);
    assert_int_equal(s.dropped_queue_full + s.dropped_write_failed + s.dropped_invalid, 0);
    assert_int_equal(s.write_errors, 0);
    assert_int_equal(s.queue_depth, 0);
    assert_true(s.queue_high_water >= 1);
    assert_true(s.batches >= (NPROD * PER_PROD + 63) / 64);
    assert_int_equal(s.store_ok, 1);
    assert_string_equal(s.last_error, "");
    co_recorder_free(rec);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, NPROD * PER_PROD);
    char *seen = calloc(NPROD * PER_PROD, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < l.n; i++) {
        const co_exchange *x = &l.v[i].x;
        int p = -1, seq = -1;
        assert_int_equal(sscanf(x->request_id, "p%d-%d", &p, &seq), 2);
        assert_true(p >= 0 && p < NPROD && seq >= 0 && seq < PER_PROD);
        assert_int_equal(seen[p * PER_PROD + seq], 0);
        seen[p * PER_PROD + seq] = 1;
        assert_string_equal(x->workload, "chat");
        assert_string_equal(x->arm, p % 2 ? "candidate" : "incumbent");
        assert_int_equal(x->tokens_in, seq);
        assert_int_equal(x->tokens_out, p);
        assert_int_equal(x->ts_ms, 1000 + seq);
        char want[64];
        snprintf(want, sizeof want, "output %d/%d", p, seq);
        assert_string_equal(x->output_text, want);
        assert_string_equal(x->request_json, "{\"messages\":[]}");
    }
    free(seen);
    co_exchange_list_free(&l);
}

/* ---- batching ------------------------------------------------------------- */

static void test_batches_respect_batch(void **state)
{
    fixture *f = *state;
    fault_ctl fc;
    fault_init(&fc);
    co_recorder_conf c = conf_of(4096, 37, 10, 1);
    co_recorder *rec = new_on_fault(f, &fc, &c);
    co_recorder_ring *q = co_recorder_producer(rec, 0);

    /* Hold the writer inside its first write, queue 500 behind it. */
    fault_set(&fc, 0, 1);
    co_exchange x;
    make_x(&x, 0, 0);
    assert_int_equal(co_recorder_push(q, &x), 0);
    fault_wait_entered(&fc, 1);
    for (int i = 1; i <= 500; i++) {
        make_x(&x, 0, i);
        assert_int_equal(co_recorder_push(q, &x), 0);
    }
    fault_set(&fc, 0, 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);

    co_recorder_counters s = stats_of(rec);
    assert_int_equal(s.recorded, 501);
    pthread_mutex_lock(&fc.mu);
    size_t total = 0, full = 0;
    for (size_t i = 0; i < fc.nsizes; i++) {
        assert_true(fc.sizes[i] >= 1 && fc.sizes[i] <= 37);
        total += fc.sizes[i];
        full += fc.sizes[i] == 37;
    }
    assert_int_equal(total, 501);
    assert_int_equal(fc.nsizes, s.batches);
    assert_true(full >= 500 / 37); /* the 500 queued went out in full batches */
    pthread_mutex_unlock(&fc.mu);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), 501);
    fault_destroy(&fc);
}

/* A tick writes what the writer held when it came; records arriving during
 * that write wait for a full batch or the next tick instead of being
 * committed a few at a time right after it. */
static void test_tick_does_not_chase_arrivals(void **state)
{
    fixture *f = *state;
    fault_ctl fc;
    fault_init(&fc);
    co_recorder_conf c = conf_of(4096, 1000, 1000, 1);
    co_recorder *rec = new_on_fault(f, &fc, &c);
    co_recorder_ring *q = co_recorder_producer(rec, 0);

    fault_set(&fc, 0, 1);
    co_exchange x;
    for (int i = 0; i < 10; i++) {
        make_x(&x, 0, i);
        assert_int_equal(co_recorder_push(q, &x), 0);
    }
    fault_wait_entered(&fc, 1); /* the tick's write of the 10, held */
    for (int i = 10; i < 15; i++) {
        make_x(&x, 0, i);
        assert_int_equal(co_recorder_push(q, &x), 0);
    }
    fault_set(&fc, 0, 0);
    for (int i = 0; i < 10000 && stats_of(rec).recorded < 10; i++)
        usleep(1000);
    assert_int_equal(stats_of(rec).recorded, 10);
    /* The next tick is a second away: the 5 are still waiting well before. */
    usleep(200 * 1000);
    co_recorder_counters k = stats_of(rec);
    assert_int_equal(k.recorded, 10);
    assert_int_equal(k.queue_depth, 5);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    pthread_mutex_lock(&fc.mu);
    assert_int_equal(fc.nsizes, 2);
    assert_int_equal(fc.sizes[0], 10);
    assert_int_equal(fc.sizes[1], 5);
    pthread_mutex_unlock(&fc.mu);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), 15);
    fault_destroy(&fc);
}

/* ---- ring full ------------------------------------------------------------ */

static void test_ring_full_counts_overflow(void **state)
{
    fixture *f = *state;
    fault_ctl fc;
    fault_init(&fc);
    logcap lc;
    logcap_init(&lc);
    co_recorder_opts o = {.open = fault_open, .open_ud = &fc, .log = log_cb, .log_ud = &lc,
                          .log_interval_ms = 600000};
    co_recorder_conf c = conf_of(64, 16, 10, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    co_recorder_ring *q = co_recorder_producer(rec, 0);
    size_t cap = co_recorder_ring_capacity(q);
    assert_int_equal(cap, 64);

    fault_set(&fc, 0, 1);
    co_exchange x;
    make_x(&x, 0, 0);
    assert_int_equal(co_recorder_push(q, &x), 0);
    fault_wait_entered(&fc, 1);

    size_t ok = 0, busy = 0;
    for (size_t i = 1; i <= cap + 7; i++) {
        make_x(&x, 0, (int)i);
        int rc = co_recorder_push(q, &x);
        if (rc == 0)
            ok++;
        else if (rc == CO_EBUSY)
            busy++;
    }
    assert_int_equal(ok, cap);
    assert_int_equal(busy, 7);
    assert_non_null(strstr(co_error_last(), "queue full"));
    co_recorder_counters s = stats_of(rec);
    assert_int_equal(s.dropped_queue_full, 7);
    assert_int_equal(s.pushed, cap + 1);
    assert_int_equal(s.queue_depth, cap + 1);

    fault_set(&fc, 0, 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    s = stats_of(rec);
    assert_int_equal(s.recorded, cap + 1);
    assert_int_equal(s.dropped_queue_full, 7);
    assert_int_equal(s.queue_depth, 0);
    assert_true(s.queue_high_water >= cap);

    /* A second episode of drops within the log interval is not logged until
     * shutdown: one message per interval, and a last one at the end. */
    fault_set(&fc, 0, 1);
    int entered = fault_get(&fc, &fc.entered);
    make_x(&x, 0, 1000);
    assert_int_equal(co_recorder_push(q, &x), 0);
    fault_wait_entered(&fc, entered + 1);
    for (size_t i = 0; i < cap + 3; i++) {
        make_x(&x, 0, 2000 + (int)i);
        co_recorder_push(q, &x);
    }
    fault_set(&fc, 0, 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    assert_int_equal(stats_of(rec).dropped_queue_full, 10);
    assert_int_equal(logcap_count(&lc, "NOT recorded"), 1);
    assert_int_equal(logcap_count(&lc, "queue full: 7"), 1);
    co_recorder_free(rec);
    assert_int_equal(logcap_count(&lc, "NOT recorded"), 2);
    assert_int_equal(logcap_count(&lc, "queue full: 3"), 1);
    assert_int_equal(logcap_count(&lc, "totals: 10 / 0 / 0"), 1);
    assert_int_equal(count_rows(f), 2 * cap + 2);
    logcap_free(&lc);
    fault_destroy(&fc);
}

/* ---- store faults --------------------------------------------------------- */

static void run_fault(const fixture *f, int status)
{
    fault_ctl fc;
    fault_init(&fc);
    logcap lc;
    logcap_init(&lc);
    co_recorder_opts o = {.open = fault_open, .open_ud = &fc, .log = log_cb, .log_ud = &lc,
                          .retry_min_ms = 1, .retry_max_ms = 5};
    co_recorder_conf c = conf_of(1024, 32, 5, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 2, &o), 0);
    assert_int_equal(fault_get(&fc, &fc.opens), 1);

    fault_set(&fc, status, 0);
    co_exchange x;
    for (int i = 0; i < 100; i++) {
        make_x(&x, i % 2, i);
        assert_int_equal(co_recorder_push(co_recorder_producer(rec, i % 2), &x), 0);
    }
    /* Let the backoff retry a few times. */
    for (int i = 0; i < 10000 && stats_of(rec).write_errors < 3; i++)
        usleep(1000);
    assert_int_equal(co_recorder_flush(rec, 20), CO_ETIMEDOUT);
    assert_non_null(strstr(co_error_last(), "injected fault"));
    co_recorder_counters s = stats_of(rec);
    assert_true(s.write_errors >= 3);
    assert_int_equal(s.recorded, 0);
    assert_int_equal(s.queue_depth, 100);
    assert_int_equal(s.store_ok, 0);
    assert_non_null(strstr(s.last_error, "injected fault"));
    assert_int_equal(s.dropped_queue_full + s.dropped_write_failed + s.dropped_invalid, 0);
    assert_int_equal(count_rows(f), 0);
    if (status == CO_EBUSY) {
        assert_int_equal(fault_get(&fc, &fc.opens), 1); /* busy: same connection */
        assert_int_equal(s.reopens, 0);
    } else {
        assert_true(fault_get(&fc, &fc.opens) >= 2); /* connection-level: reopened */
    }

    fault_set(&fc, 0, 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    s = stats_of(rec);
    assert_int_equal(s.recorded, 100);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(s.store_ok, 1);
    assert_int_equal(s.dropped_queue_full + s.dropped_write_failed + s.dropped_invalid, 0);
    if (status != CO_EBUSY)
        assert_true(s.reopens >= 1);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), 100);
    /* Told about the failure and the recovery. */
    assert_true(logcap_count(&lc, "injected fault") >= 1);
    assert_int_equal(logcap_count(&lc, "writable again"), 1);
    assert_int_equal(logcap_count(&lc, "NOT recorded"), 0);
    logcap_free(&lc);
    fault_destroy(&fc);
}

static void test_store_failing_then_recovers(void **state) { run_fault(*state, CO_ESTORE); }
static void test_store_busy_then_recovers(void **state) { run_fault(*state, CO_EBUSY); }

static void test_failing_store_drops_oldest_beyond_queue(void **state)
{
    fixture *f = *state;
    fault_ctl fc;
    fault_init(&fc);
    logcap lc;
    logcap_init(&lc);
    /* A long backoff: the only write attempts are the ones flush forces. */
    co_recorder_opts o = {.open = fault_open, .open_ud = &fc, .log = log_cb, .log_ud = &lc,
                          .retry_min_ms = 600000, .retry_max_ms = 600000};
    co_recorder_conf c = conf_of(16, 4, 5, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    co_recorder_ring *q = co_recorder_producer(rec, 0);
    assert_int_equal(co_recorder_ring_capacity(q), 16);

    fault_set(&fc, CO_ESTORE, 0);
    co_exchange x;
    make_x(&x, 0, 0);
    assert_int_equal(co_recorder_push(q, &x), 0);
    /* The first (unforced) attempt fails at the next tick; from then on the
     * backoff allows only the attempts flush forces. */
    for (int i = 0; i < 10000 && stats_of(rec).write_errors == 0; i++)
        usleep(1000);
    assert_int_equal(stats_of(rec).write_errors, 1);
    for (int i = 1; i < 16; i++) {
        make_x(&x, 0, i);
        assert_int_equal(co_recorder_push(q, &x), 0);
    }
    sync_failed_cycle(rec); /* the writer holds all 16 now: the ring is empty */
    for (int i = 16; i < 26; i++) {
        make_x(&x, 0, i);
        assert_int_equal(co_recorder_push(q, &x), 0);
    }
    sync_failed_cycle(rec); /* took 10 more, dropping the 10 oldest */
    co_recorder_counters s = stats_of(rec);
    assert_int_equal(s.dropped_write_failed, 10);
    assert_int_equal(s.dropped_queue_full, 0);
    assert_int_equal(s.queue_depth, 16);
    assert_int_equal(s.pushed, 26);

    fault_set(&fc, 0, 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    s = stats_of(rec);
    assert_int_equal(s.recorded, 16);
    assert_int_equal(s.recorded + s.dropped_write_failed, s.pushed);
    co_recorder_free(rec);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, 16);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(l.v[i].x.tokens_in, 10 + (int64_t)i); /* the newest 16 */
    co_exchange_list_free(&l);
    /* reported, perhaps over two reports when the writer took the ten in two
     * turns: the last report's totals count all ten */
    assert_true(logcap_count(&lc, "totals: 0 / 10 / 0") >= 1);
    logcap_free(&lc);
    fault_destroy(&fc);
}

/* ---- flush and free ------------------------------------------------------- */

static void test_free_writes_everything(void **state)
{
    fixture *f = *state;
    /* A long interval and a big batch: nothing would be written before free. */
    co_recorder_conf c = conf_of(4096, 4096, 60000, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 3), 0);
    co_exchange x;
    for (int i = 0; i < 300; i++) {
        make_x(&x, i % 3, i);
        assert_int_equal(co_recorder_push(co_recorder_producer(rec, i % 3), &x), 0);
    }
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), 300);

    /* And flush writes what was pushed before it, without waiting for the
     * interval. */
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 1), 0);
    for (int i = 0; i < 10; i++) {
        make_x(&x, 0, 1000 + i);
        assert_int_equal(co_recorder_push(co_recorder_producer(rec, 0), &x), 0);
    }
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    assert_int_equal(count_rows(f), 310);
    assert_int_equal(co_recorder_flush(rec, 0), 0); /* nothing pending */
    co_recorder_free(rec);
    co_recorder_free(NULL);
}

static void test_free_with_failing_store_counts_loss(void **state)
{
    fixture *f = *state;
    fault_ctl fc;
    fault_init(&fc);
    logcap lc;
    logcap_init(&lc);
    co_recorder_opts o = {.open = fault_open, .open_ud = &fc, .log = log_cb, .log_ud = &lc,
                          .retry_min_ms = 5, .retry_max_ms = 10, .stop_timeout_ms = 50};
    co_recorder_conf c = conf_of(1024, 64, 60000, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    fault_set(&fc, CO_ESTORE, 0);
    co_exchange x;
    for (int i = 0; i < 5; i++) {
        make_x(&x, 0, i);
        assert_int_equal(co_recorder_push(co_recorder_producer(rec, 0), &x), 0);
    }
    co_recorder_free(rec);
    assert_int_equal(logcap_count(&lc, "5 held exchanges dropped"), 1);
    assert_int_equal(logcap_count(&lc, "store failing: 5"), 1);
    assert_int_equal(count_rows(f), 0);
    logcap_free(&lc);
    fault_destroy(&fc);
}

/* ---- redaction and text --------------------------------------------------- */

static const char REQ[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"I am bob@example.com,\\ncard 4111 1111 1111 "
    "1111, call +44 20 7946 0958; my key is sk-proj-abc123DEF456ghi789JKL012mno\"}]}";
static const char OUT[] = "Sure, I will write to alice@example.org; key AIzaSyA1234567890abcdefghijklmnopqrstu";

static void push_one_text(co_recorder *rec)
{
    co_exchange x;
    make_x(&x, 0, 1);
    x.request_json = REQ;
    x.output_text = OUT;
    assert_int_equal(co_recorder_push(co_recorder_producer(rec, 0), &x), 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
}

static void test_text_redacted_before_storage(void **state)
{
    fixture *f = *state;
    co_redact_conf rc = {.email = 1, .phone = 1, .card = 1};
    co_redactor *red;
    assert_int_equal(co_redactor_new(&red, &rc), 0);
    co_recorder_opts o = {.redactor = red};
    co_recorder_conf c = conf_of(64, 16, 10, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    push_one_text(rec);
    co_recorder_free(rec);
    co_redactor_free(red);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, 1);
    const char *req = l.v[0].x.request_json, *out = l.v[0].x.output_text;
    assert_non_null(req);
    assert_null(strstr(req, "bob@"));
    assert_null(strstr(req, "4111"));
    assert_null(strstr(req, "7946"));
    assert_null(strstr(req, "sk-proj"));
    assert_non_null(strstr(req, "I am [email],\\ncard [card], call [phone]; my key is [api-key]"));
    json_error_t je;
    json_t *j = json_loads(req, 0, &je);
    assert_non_null(j); /* still valid JSON */
    json_decref(j);
    assert_string_equal(out, "Sure, I will write to [email]; key [api-key]");
    co_exchange_list_free(&l);
}

static void test_keys_masked_without_redactor(void **state)
{
    fixture *f = *state;
    co_recorder_conf c = conf_of(64, 16, 10, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 1), 0);
    push_one_text(rec);
    co_recorder_free(rec);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, 1);
    const char *req = l.v[0].x.request_json, *out = l.v[0].x.output_text;
    assert_null(strstr(req, "sk-proj"));
    assert_non_null(strstr(req, "my key is [api-key]"));
    assert_non_null(strstr(req, "bob@example.com")); /* redaction off: only keys */
    assert_string_equal(out, "Sure, I will write to alice@example.org; key [api-key]");
    co_exchange_list_free(&l);
}

static void test_record_text_off(void **state)
{
    fixture *f = *state;
    co_recorder_conf c = conf_of(64, 16, 10, 0);
    co_recorder *rec;
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 1), 0);
    push_one_text(rec);
    co_recorder_free(rec);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, 1);
    assert_null(l.v[0].x.request_json);
    assert_null(l.v[0].x.output_text);
    assert_string_equal(l.v[0].x.request_id, "p0-000001");
    assert_int_equal(l.v[0].x.tokens_in, 1);
    co_exchange_list_free(&l);
}

static void test_text_bounded_on_utf8_boundary(void **state)
{
    fixture *f = *state;
    co_recorder_opts o = {.text_max = 9};
    co_recorder_conf c = conf_of(64, 16, 10, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    co_exchange x;
    make_x(&x, 0, 1);
    x.request_json = "h\xc3\xa9llo w\xc3\xb6rld and more"; /* ö straddles byte 9 */
    x.output_text = "short";
    assert_int_equal(co_recorder_push(co_recorder_producer(rec, 0), &x), 0);
    co_recorder_free(rec);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].x.request_json, "h\xc3\xa9llo w");
    assert_string_equal(l.v[0].x.output_text, "short");
    co_exchange_list_free(&l);
}

/* ---- invalid records ------------------------------------------------------ */

static void test_invalid_records_isolated(void **state)
{
    fixture *f = *state;
    logcap lc;
    logcap_init(&lc);
    co_recorder_opts o = {.log = log_cb, .log_ud = &lc};
    co_recorder_conf c = conf_of(64, 16, 60000, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    co_recorder_ring *q = co_recorder_producer(rec, 0);
    co_exchange x;
    for (int i = 0; i < 10; i++) {
        make_x(&x, 0, i);
        if (i == 4)
            x.arm = "bogus"; /* the store's CHECK refuses it */
        assert_int_equal(co_recorder_push(q, &x), 0);
    }
    make_x(&x, 0, 99);
    x.workload = NULL;
    assert_int_equal(co_recorder_push(q, &x), CO_EINVAL);
    assert_int_equal(co_recorder_push(q, NULL), CO_EINVAL);
    assert_int_equal(co_recorder_push(NULL, &x), CO_EINVAL);

    assert_int_equal(co_recorder_flush(rec, 30000), CO_EIO);
    co_recorder_counters s = stats_of(rec);
    assert_int_equal(s.recorded, 9);
    assert_int_equal(s.dropped_invalid, 2);
    assert_int_equal(s.pushed, 10);
    assert_int_equal(s.queue_depth, 0);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), 9);
    assert_int_equal(logcap_count(&lc, "refused an exchange"), 1);
    logcap_free(&lc);
}

/* ---- priority ------------------------------------------------------------- */

/* The writer's level as the kernel sees this process's "co-recorder"
 * thread (/proc/self/task/TID/stat: nice is field 19, the policy field 41):
 * 2 SCHED_IDLE, 1 SCHED_OTHER at nice 10, 0 SCHED_OTHER at nice 0; -1 for
 * anything else or no such thread. */
static int writer_level(void)
{
    int policy = -1, nice = 0;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *e;
    while (policy < 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[320], buf[1024];
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *fp = fopen(p, "r");
        if (!fp)
            continue;
        int mine = fgets(buf, sizeof buf, fp) && strncmp(buf, "co-recorder", 11) == 0;
        fclose(fp);
        if (!mine)
            continue;
        snprintf(p, sizeof p, "/proc/self/task/%s/stat", e->d_name);
        if (!(fp = fopen(p, "r")))
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        char *t = strrchr(buf, ')');
        assert_non_null(t);
        int field = 2; /* after ") " come fields 3, 4, ... */
        for (char *tok = strtok(t + 1, " "); tok; tok = strtok(NULL, " ")) {
            if (++field == 19)
                nice = atoi(tok);
            if (field == 41) {
                policy = atoi(tok);
                break;
            }
        }
    }
    closedir(d);
    if (policy == SCHED_IDLE)
        return 2;
    if (policy == SCHED_OTHER && (nice == 0 || nice == 10))
        return nice == 10 ? 1 : 0;
    return -1;
}

/* Polls (bounded by a 10 s safety net, never asserted as a time) until the
 * writer's `background` level reads `want`. */
static void wait_background(co_recorder *rec, int want)
{
    for (int i = 0; i < 10000 && stats_of(rec).background != want; i++)
        usleep(1000);
    assert_int_equal(stats_of(rec).background, want);
}

static void *try_leave_idle(void *arg)
{
    struct sched_param sp = {0};
    *(int *)arg = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0 &&
                  pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp) == 0 &&
                  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) == 0 &&
                  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 0) == 0;
    return NULL;
}

static int may_leave_idle(void)
{
    pthread_t t;
    int ok = 0;
    assert_int_equal(pthread_create(&t, NULL, try_leave_idle, &ok), 0);
    pthread_join(t, NULL);
    return ok;
}

static void push_sized(co_recorder *rec, int seq, const char *text)
{
    co_exchange x;
    make_x(&x, 0, seq);
    x.request_json = text;
    assert_int_equal(co_recorder_push(co_recorder_producer(rec, 0), &x), 0);
}

/* Written records go back to their ring and later pushes reuse their memory:
 * what is stored must still be exactly what each push gave, whether its
 * memory was reused, refused as too small, or too large to keep. */
static void push_text(co_recorder *rec, int seq, size_t len, char fill)
{
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, fill, len);
    text[len] = '\0';
    int n = snprintf(text, len, "%06d:", seq);
    text[n] = ':';
    push_sized(rec, seq, text);
    free(text);
}

static void test_written_records_reused(void **state)
{
    fixture *f = *state;
    co_recorder_conf c = conf_of(1024, 64, 60000, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 1), 0);
    for (int i = 0; i < 50; i++)
        push_text(rec, i, 1000, 'a');
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    assert_int_equal(stats_of(rec).recycled, 0);

    /* Same size: every push reuses one of the 50 written records. */
    for (int i = 50; i < 100; i++)
        push_text(rec, i, 1000, 'b');
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    assert_int_equal(stats_of(rec).recycled, 50);

    /* Three times larger: nothing written so far fits, so nothing is reused
     * (the records looked at are freed on the way). */
    for (int i = 100; i < 110; i++)
        push_text(rec, i, 3000, 'c');
    /* Much smaller: a record that would waste more than half is not reused. */
    for (int i = 110; i < 120; i++)
        push_text(rec, i, 100, 'd');
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    assert_int_equal(stats_of(rec).recycled, 50);
    co_recorder_counters k = stats_of(rec);
    assert_int_equal(k.recorded, 120);
    assert_int_equal(k.queue_depth, 0);
    co_recorder_free(rec);

    co_exchange_list l;
    read_rows(f, &l);
    assert_int_equal(l.n, 120);
    for (size_t i = 0; i < l.n; i++) {
        const co_exchange *x = &l.v[i].x;
        int seq = atoi(x->request_id + 3);
        size_t want_len = seq < 100 ? 1000 : seq < 110 ? 3000 : 100;
        char fill = seq < 50 ? 'a' : seq < 100 ? 'b' : seq < 110 ? 'c' : 'd';
        assert_non_null(x->request_json);
        assert_int_equal(strlen(x->request_json), want_len);
        assert_int_equal(atoi(x->request_json), seq);
        assert_int_equal(x->request_json[want_len - 1], fill);
    }
    co_exchange_list_free(&l);
}

static void test_background_lifted_by_backlog_and_flush(void **state)
{
    fixture *f = *state;
    if (!may_leave_idle())
        skip(); /* this process may not leave SCHED_IDLE: see test_background_refused */
    fault_ctl fc;
    fault_init(&fc);
    co_recorder_conf c = conf_of(4096, 16, 60000, 1);
    c.background_backlog = 64 * 1024; /* nice 10 past 32 KiB waiting, nice 0 past 64 */
    co_recorder *rec = new_on_fault(f, &fc, &c);
    wait_background(rec, 2);
    assert_int_equal(writer_level(), 2);
    assert_int_equal(stats_of(rec).lifts, 0);

    /* The writer stuck inside a write stands for a starved one: it cannot
     * lift itself, the producer's backlog must. */
    char text[4096];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    fault_set(&fc, 0, 1);
    int seq = 0;
    for (; seq < 16; seq++) /* a batch of small records (< 8 KiB) */
        push_sized(rec, seq, "{}");
    fault_wait_entered(&fc, 1);
    for (; seq < 21; seq++) /* + 5 of ~4.3 KiB: < 32 KiB waiting */
        push_sized(rec, seq, text);
    assert_int_equal(stats_of(rec).lifts, 0);
    assert_int_equal(stats_of(rec).background, 2);
    assert_int_equal(writer_level(), 2);
    for (; seq < 24; seq++) /* + 3: past 32 KiB, under 64 */
        push_sized(rec, seq, text);
    assert_int_equal(stats_of(rec).lifts, 1);
    assert_int_equal(stats_of(rec).background, 1);
    assert_int_equal(writer_level(), 1);
    for (; seq < 32; seq++) /* + 8: past 64 KiB */
        push_sized(rec, seq, text);
    assert_int_equal(stats_of(rec).lifts, 2);
    assert_int_equal(stats_of(rec).background, 0);
    assert_int_equal(writer_level(), 0);

    /* Caught up, it goes back. */
    fault_set(&fc, 0, 0);
    wait_background(rec, 2);
    assert_int_equal(writer_level(), 2);
    assert_int_equal(stats_of(rec).lifts, 2);

    /* A flush lifts it too: its caller waits. */
    push_sized(rec, seq++, "{}");
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    assert_int_equal(stats_of(rec).lifts, 3);
    assert_int_equal(stats_of(rec).recorded, (uint64_t)seq);
    wait_background(rec, 2);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), (size_t)seq);
    fault_destroy(&fc);
}

/* A starved writer with little waiting: a producer that finds its loop
 * stalled (2 × flush_interval + 500 ms) lifts it. */
static void test_background_lifted_when_stalled(void **state)
{
    fixture *f = *state;
    if (!may_leave_idle())
        skip();
    fault_ctl fc;
    fault_init(&fc);
    co_recorder_conf c = conf_of(4096, 16, 20, 1); /* stalled after 540 ms */
    co_recorder *rec = new_on_fault(f, &fc, &c);
    wait_background(rec, 2);
    fault_set(&fc, 0, 1);
    int seq = 0;
    push_sized(rec, seq++, "{}");
    fault_wait_entered(&fc, 1); /* stuck in the write: its loop no longer turns */
    push_sized(rec, seq++, "{}");
    assert_int_equal(stats_of(rec).lifts, 0);
    usleep(800 * 1000);
    assert_int_equal(stats_of(rec).lifts, 0); /* nobody pushed: nobody looked */
    push_sized(rec, seq++, "{}");
    assert_int_equal(stats_of(rec).lifts, 1);
    assert_int_equal(writer_level(), 0);
    fault_set(&fc, 0, 0);
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), (size_t)seq);
    fault_destroy(&fc);
}

static void test_priority_normal(void **state)
{
    fixture *f = *state;
    co_recorder_conf c = conf_of(4096, 16, 10, 1);
    c.priority = CO_RECORDER_NORMAL;
    co_recorder *rec;
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 1), 0);
    for (int i = 0; i < 100; i++)
        push_sized(rec, i, "{}");
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    usleep(50 * 1000); /* a few more writer cycles: none may go to the background */
    assert_int_equal(stats_of(rec).background, 0);
    assert_int_equal(stats_of(rec).lifts, 0);
    assert_int_equal(writer_level(), 0);
    co_recorder_free(rec);
    assert_int_equal(count_rows(f), 100);
}

/* Without CAP_SYS_NICE (dropped from this thread's effective set, which the
 * writer inherits) and with RLIMIT_NICE 0, a thread could enter SCHED_IDLE
 * but never leave it: the writer stays at normal priority and says why. */
static void test_background_refused(void **state)
{
    fixture *f = *state;
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct saved[2], d[2];
    assert_int_equal(syscall(SYS_capget, &h, saved), 0);
    memcpy(d, saved, sizeof d);
    d[CAP_SYS_NICE / 32].effective &= ~(1u << (CAP_SYS_NICE % 32));
    assert_int_equal(syscall(SYS_capset, &h, d), 0);
    struct rlimit rl_saved, rl;
    assert_int_equal(getrlimit(RLIMIT_NICE, &rl_saved), 0);
    rl = rl_saved;
    rl.rlim_cur = 0;
    assert_int_equal(setrlimit(RLIMIT_NICE, &rl), 0);

    logcap lc;
    logcap_init(&lc);
    co_recorder_opts o = {.log = log_cb, .log_ud = &lc};
    co_recorder_conf c = conf_of(4096, 16, 10, 1);
    co_recorder *rec;
    assert_int_equal(co_recorder_new_opts(&rec, f->url, &c, 1, &o), 0);
    for (int i = 0; i < 50; i++)
        push_sized(rec, i, "{}");
    assert_int_equal(co_recorder_flush(rec, 30000), 0);
    usleep(50 * 1000);
    assert_int_equal(stats_of(rec).background, 0);
    assert_int_equal(writer_level(), 0);
    co_recorder_free(rec);
    assert_int_equal(logcap_count(&lc, "runs at normal priority"), 1);
    assert_int_equal(count_rows(f), 50);
    logcap_free(&lc);

    assert_int_equal(setrlimit(RLIMIT_NICE, &rl_saved), 0);
    assert_int_equal(syscall(SYS_capset, &h, saved), 0);
}

static void test_new_errors(void **state)
{
    fixture *f = *state;
    co_recorder *rec = (co_recorder *)1;
    co_recorder_conf c = conf_of(64, 16, 10, 1);
    assert_int_equal(co_recorder_new(&rec, "mysql://localhost/x", &c, 1), CO_EINVAL);
    assert_null(rec);
    assert_non_null(strstr(co_error_last(), "mysql"));
    assert_int_equal(co_recorder_new(&rec, "sqlite:/nonexistent-dir/x/y.db", &c, 1), CO_ESTORE);
    assert_non_null(strstr(co_error_last(), "does not exist"));
    assert_int_equal(co_recorder_new(&rec, f->url, &c, 0), CO_EINVAL);
    assert_int_equal(co_recorder_new(&rec, NULL, &c, 1), CO_EINVAL);
    co_recorder_conf bad = conf_of(0, 16, 10, 1);
    assert_int_equal(co_recorder_new(&rec, f->url, &bad, 1), CO_EINVAL);
    /* NULL conf: the defaults (65536 / 4 workers = 16384 per ring). */
    assert_int_equal(co_recorder_new(&rec, f->url, NULL, 4), 0);
    assert_int_equal(co_recorder_ring_capacity(co_recorder_producer(rec, 3)), 16384);
    co_recorder_free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_producers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_respect_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_does_not_chase_arrivals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_full_counts_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failing_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_busy_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_store_drops_oldest_beyond_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_writes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_failing_store_counts_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_redacted_before_storage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_masked_without_redactor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_text_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_bounded_on_utf8_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_records_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_records_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_lifted_by_backlog_and_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_lifted_when_stalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_normal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
